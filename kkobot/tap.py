"""`twistd kkobot`: command-line options and the service maker."""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.python import usage

from kkobot import config, files

from kkobot.logs import daemon as daemonlog
from kkobot.service import MODES, KkobotService, Settings, StartupError, resolve


class Options(usage.Options):
    synopsis = "[--port N|ENDPOINT] [--mode test|prod] [--config DIR] [--log-level L] [--admin-port N|ENDPOINT] [--instance NAME]"
    longdesc = (
        "Serve MessengerBotR bridges. With no config directory, runs on the embedded "
        "default: SQLite under ./var/, 127.0.0.1 only, no authentication."
    )
    optParameters = [
        ["port", "p", None, "Port number or Twisted endpoint (default 1490).", str],
        ["mode", "m", "test", "test or prod: picks DBs.kkobot_test / DBs.kkobot_prod."],
        ["config", "c", None,
         "Config directory (.kkobot.key + .kkobot.enc; default .cfg). Named here, it must exist."],
        ["log-level", None, "info", "debug, info, warn or error (chat text is debug)."],
        ["plugins", None, None, "Drop-in plugin folder (default: plugins.dropin_dir or ./plugins)."],
        ["logs", None, "logs", "Directory of server.log."],
        ["var", None, "var", "Directory for the embedded SQLite database."],
        ["admin-port", None, None,
         "Admin web port or endpoint (default: admin.port; off unless set; needs admin.token)."],
        ["instance", None, None,
         "This process's name in a deployment (default: KKOBOT_INSTANCE, cluster.instance, "
         "or host name:port)."],
    ]

    def postOptions(self) -> None:
        if self["mode"] not in MODES:
            raise usage.UsageError("--mode must be test or prod")

    def settings(self) -> Settings:
        return Settings(
            port=self["port"],
            mode=self["mode"],
            configDir=self["config"] or config.DEFAULT_DIR,
            configGiven=self["config"] is not None,
            logLevel=self["log-level"],
            logDir=self["logs"] or None,
            varDir=self["var"],
            dropinDir=self["plugins"],
            adminPort=self["admin-port"],
            instance=self["instance"] or os.environ.get("KKOBOT_INSTANCE") or None,
        )


class TwistdService(KkobotService):
    """
    The server as C{twistd kkobot} runs it. twistd makes the application only after
    L{makeService} returns, and reads its log observer right after adding this
    service to it: that is the moment to give it a capped, 0640 log file.
    """

    twistdOptions: Any = None

    def setServiceParent(self, parent: Any) -> None:
        daemonlog.install(parent, self.twistdOptions)
        KkobotService.setServiceParent(self, parent)


def makeService(options: Options):
    # Before anything is created, twistd's own log file included (it opens that file
    # after this returns): files the operator's shell umask would leave readable to
    # everyone stay the server's.
    files.tightenUmask()
    try:
        service = TwistdService(resolve(options.settings()))
    except StartupError as e:
        # One clear line instead of a traceback from inside twistd.
        sys.stderr.write(f"kkobot: {e}\n")
        raise SystemExit(1)
    # twistd's parsed options (None when called outside twistd).
    service.twistdOptions = options.parent
    return service
