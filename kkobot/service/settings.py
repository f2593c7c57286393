"""What the server is built from: the command line's settings combined with the config file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from kkobot import config, logs
from kkobot.admin.web.settings import AdminConfigError, AdminSettings, adminSettings
from kkobot.cluster.settings import ClusterConfigError, ClusterSettings
from kkobot.commands.loader import untrusted as untrustedPlugins
from kkobot.endpoints import isLoopback

DEFAULT_PORT = 1490
MODES = ("test", "prod")


@dataclass
class Settings:
    """What the command line (or the environment, for the .tac) asked for."""

    port: str | None = None
    mode: str = "test"
    configDir: str = config.DEFAULT_DIR
    logLevel: str = "info"
    logDir: str | None = "logs"
    varDir: str = "var"
    dropinDir: str | None = None
    adminPort: str | None = None
    # This process's name in a deployment (--instance, KKOBOT_INSTANCE); None: the
    # config's cluster.instance, else host name and port.
    instance: str | None = None
    # Named on purpose (--config, KKOBOT_CONFIG): a missing config is then an error,
    # not the embedded default.
    configGiven: bool = False

    @classmethod
    def fromEnvironment(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            port=env.get("KKOBOT_PORT") or None,
            mode=env.get("KKOBOT_MODE") or "test",
            configDir=env.get("KKOBOT_CONFIG") or config.DEFAULT_DIR,
            configGiven=bool(env.get("KKOBOT_CONFIG")),
            logLevel=env.get("KKOBOT_LOG_LEVEL") or "info",
            dropinDir=env.get("KKOBOT_PLUGINS") or None,
            adminPort=env.get("KKOBOT_ADMIN_PORT") or None,
            instance=env.get("KKOBOT_INSTANCE") or None,
        )


class StartupError(Exception):
    """The server cannot start; the message says why and what to do."""


@dataclass
class Resolved:
    """Settings combined with the config file: everything the parts are built from."""

    settings: Settings
    cfg: dict[str, Any] | None = field(repr=False)
    endpoint: str
    db: Any
    dropinDir: str
    authRequired: bool
    notes: list[str] = field(default_factory=list)
    admin: AdminSettings | None = None
    cluster: ClusterSettings | None = None

    def __post_init__(self) -> None:
        if self.cluster is None:
            # Built without resolve() (tests, tools): one process unless the config says.
            self.cluster = ClusterSettings.fromConfig(
                self.cfg, self.settings.port, self.settings.mode, self.settings.instance)

    @property
    def journalDir(self) -> str:
        """chatlog.journal_dir (default <var>/journal), one subdirectory per mode."""
        base = self.get("chatlog.journal_dir", os.path.join(self.settings.varDir, "journal"))
        return os.path.join(base, self.settings.mode)

    @property
    def devicesFile(self) -> str:
        """Every known device status, kept locally: <var>/devices/<mode>.json."""
        return os.path.join(self.settings.varDir, "devices", f"{self.settings.mode}.json")

    @property
    def outboxDir(self) -> str:
        """Outbound messages waiting for their bot, kept across restarts: <var>/outbox/<mode>."""
        return os.path.join(self.settings.varDir, "outbox", self.settings.mode)

    @property
    def replayDir(self) -> str:
        """Where accepted signatures are remembered across restarts: <var>/replay/<mode>."""
        return os.path.join(self.settings.varDir, "replay", self.settings.mode)

    def get(self, key: str, default: Any) -> Any:
        if self.cfg is None:
            return default
        return config.setting(self.cfg, key, default)


def endpointFor(port: str | None, interface: str) -> str:
    """A port number becomes a TCP endpoint on C{interface}; endpoint strings pass."""
    port = (port or str(DEFAULT_PORT)).strip()
    if port.isdigit():
        return f"tcp:{port}:interface={interface}"
    return port


def _halfConfig(directory: str) -> bool:
    """One of the two config files without the other: load() says how to repair it."""
    return any(os.path.lexists(os.path.join(directory, name))
               for name in (config.KEY_FILE, config.ENC_FILE))


def resolve(settings: Settings) -> Resolved:
    """Read the config (if any) and decide every setting; raise L{StartupError}."""
    if settings.mode not in MODES:
        raise StartupError(f"unknown mode {settings.mode!r}: use --mode test or --mode prod")
    try:
        logs.setLevel(settings.logLevel)
    except ValueError as e:
        raise StartupError(str(e))
    notes: list[str] = []
    try:
        if settings.configGiven and not config.exists(settings.configDir):
            # A mistyped --config must not quietly become the no-auth default.
            orDefault = "" if settings.mode == "prod" else (
                ", or leave out --config to run on the embedded default "
                "(loopback only, no authentication)")
            raise StartupError(
                f"no config in {settings.configDir}/ (given with --config or KKOBOT_CONFIG): "
                f"check the path, or create one with `kkobot-config --dir "
                f"{settings.configDir} init`{orDefault}"
            )
        if config.exists(settings.configDir) or _halfConfig(settings.configDir):
            cfg = config.load(settings.configDir)
            config.validate(cfg)
            db = config.db_settings(cfg, settings.mode)
            interface = config.setting(cfg, "SERVER.server_ip", "127.0.0.1") or "127.0.0.1"
            dropin = settings.dropinDir or config.setting(cfg, "plugins.dropin_dir", "plugins")
            authRequired = settings.mode == "prod" or config.setting(cfg, "auth.required", True)
            if authRequired:
                notes.extend(_checkCredentials(cfg, settings.mode))
            notes.append(f"[CONFIG] loaded {os.path.abspath(settings.configDir)}")
        elif settings.mode == "prod":
            raise StartupError(
                f"prod mode needs a config, and {settings.configDir}/ has none: create it "
                f"with `kkobot-config --dir {settings.configDir} init`, then set "
                "DBs.kkobot_prod"
            )
        else:
            cfg = None
            db = config.DBSettings(
                engine="sqlite",
                host="",
                port=0,
                user="",
                password="",
                name="kkobot_test",
                path=os.path.join(settings.varDir, "kkobot_test.sqlite3"),
            )
            interface = "127.0.0.1"
            dropin = settings.dropinDir or "plugins"
            authRequired = False
            notes.append(
                f"[CONFIG] no config in {settings.configDir}/: embedded default "
                f"(SQLite at {db.path}, loopback only, no authentication)"
            )
        admin = adminSettings(cfg, settings.adminPort)
        cluster = ClusterSettings.fromConfig(cfg, settings.port, settings.mode, settings.instance)
    except ClusterConfigError as e:
        raise StartupError(f"config {settings.configDir}: {e}")
    except config.ConfigError as e:
        raise StartupError(f"config {settings.configDir}: {e}")
    except AdminConfigError as e:
        raise StartupError(f"config {settings.configDir}: {e}")
    return Resolved(
        settings=settings,
        cfg=cfg,
        endpoint=endpointFor(settings.port, interface),
        db=db,
        dropinDir=dropin,
        authRequired=authRequired,
        notes=notes,
        admin=admin,
        cluster=cluster,
    )


def refuseUnsafe(resolved: Resolved) -> None:
    """
    What the server will not serve with (tools that only read the settings, such as
    kkobot-admin, do not care): no authentication beyond loopback, plugin code that
    others could have written. Raises L{StartupError}.
    """
    settings = resolved.settings
    if not resolved.authRequired and not isLoopback(resolved.endpoint):
        cli = f"kkobot-config --dir {settings.configDir}"
        turnOn = (f"`{cli} init`, then `{cli} add-bot NAME`" if resolved.cfg is None
                  else f"`{cli} set auth.required true`, and `{cli} add-bot NAME`")
        raise StartupError(
            f"refusing to listen on {resolved.endpoint} without authentication: anyone who "
            "can reach it would be answered. Listen on loopback only (interface=127.0.0.1), "
            f"or turn authentication on: {turnOn}"
        )
    problems = untrustedPlugins(os.path.abspath(resolved.dropinDir))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StartupError(f"refusing to run plugins: {problems[0]}{more}")


def _checkCredentials(cfg: dict[str, Any], mode: str) -> list[str]:
    """Fail now on a malformed bot entry; notes for what the operator should know."""
    notes = []
    if mode == "prod" and config.setting(cfg, "auth.required", True) is False:
        notes.append("[AUTH] auth.required=false is ignored in prod mode")
    bots = cfg.get("bots") or {}
    for name in bots:
        config.bot_credentials(cfg, name)
    if not bots:
        notes.append(
            "[AUTH] no bot credentials configured: every bridge will be refused; "
            "add one with `kkobot-config add-bot NAME`"
        )
    else:
        notes.append(f"[AUTH] authentication on for bot(s): {', '.join(sorted(bots))}")
    return notes
