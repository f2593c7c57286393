"""Assembles the running server from settings: config, database, chat log, commands, port."""

from kkobot.service.parts import BridgeServerService, DatabaseService
from kkobot.service.server import KkobotService, makeService
from kkobot.service.settings import (
    DEFAULT_PORT, MODES, Resolved, Settings, StartupError, endpointFor, refuseUnsafe, resolve,
)

__all__ = [
    "BridgeServerService", "DatabaseService", "KkobotService", "makeService", "DEFAULT_PORT",
    "MODES", "Resolved", "Settings", "StartupError", "endpointFor", "refuseUnsafe", "resolve",
]
