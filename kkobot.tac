"""Run kkobot with `twistd -ny kkobot.tac`; settings come from KKOBOT_* variables."""

import sys

from twisted.application.service import Application

from kkobot.logs import daemon as daemonlog
from kkobot.files import tightenUmask
from kkobot.service import Settings, StartupError, makeService

tightenUmask()
application = Application("kkobot")
try:
    makeService(Settings.fromEnvironment()).setServiceParent(application)
except StartupError as e:
    sys.stderr.write(f"kkobot: {e}\n")
    raise SystemExit(1)
# `twistd -y kkobot.tac` (a daemon) or --logfile: a capped 0640 log file.
daemonlog.install(application, daemonlog.optionsFromArgv(sys.argv))
