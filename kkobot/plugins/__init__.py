"""Command plugins: modules here (and in the drop-in folder) provide ICommand."""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))  # type: ignore[name-defined]
__all__: list[str] = []
