"""Several kkobot instances serving as one, coordinated through Redis (docs/cluster.md).

`ClusterNode` is what the server builds; the interfaces in `kkobot.cluster.interfaces`
are what its parts (outbound, registry, auth, limits, dispatch, scheduler, admin web)
talk to. Without `cluster.redis` the same objects work in one process.
"""

from importlib import import_module
from typing import Any

# Imported on first use: the bridge and the dispatcher import small modules of this
# package (kkobot.cluster.fired), which must not pull in the whole of it.
_WHERE = {
    "ClusterNode": "node",
    "ClusterSettings": "settings", "ClusterConfigError": "settings", "RedisAddress": "settings",
    "RedisLink": "link", "RedisUnavailable": "link",
    "RoutedMessage": "message", "SendResult": "message", "MessageStatus": "message",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
