"""The encrypted config: a JSON object sealed with Fernet in <dir>/.kkobot.enc."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kkobot.files import fsyncDirectory, userName

__all__ = [
    "ConfigError",
    "DEFAULT_DIR",
    "KEY_FILE",
    "ENC_FILE",
    "DEFAULTS",
    "MASK",
    "DBSettings",
    "exists",
    "load",
    "save",
    "init",
    "rotate_key",
    "skeleton",
    "get_dotted",
    "set_dotted",
    "unset_dotted",
    "split_key",
    "parse_value",
    "is_secret_key",
    "masked",
    "db_settings",
    "bot_credentials",
    "setting",
    "validate",
]

DEFAULT_DIR = ".cfg"
KEY_FILE = ".kkobot.key"
ENC_FILE = ".kkobot.enc"

MASK = "********"

# Defaults of our own lower-case keys (documented in docs/configuration.md).
# `setting()` falls back to these and checks a configured value against their type.
DEFAULTS: dict[str, Any] = {
    "SERVER.server_ip": "127.0.0.1",
    "auth.required": True,
    "auth.auto_approve": False,
    "auth.window_seconds": 300,
    "auth.max_failures": 10,
    "auth.failure_window": 60,
    "auth.ban_seconds": 300,
    "auth.device_refresh_interval": 2.0,
    "server.max_connections": 5000,
    "server.max_connections_per_address": 100,
    "server.ping_interval": 30,
    "server.max_line_bytes": 1048576,
    "server.handshake_timeout": 30,
    "plugins.dropin_dir": "plugins",
    "chatlog.batch_size": 500,
    "chatlog.flush_interval": 0.05,
    "log.summary_interval": 60,
    # Several instances behind one Redis (docs/cluster.md); "" means one process, no Redis.
    "cluster.redis": "",
    "cluster.instance": "",
    "cluster.key_prefix": "",
    "cluster.outbound_wait_seconds": 60.0,
    "cluster.heartbeat_interval": 1.0,
    "cluster.instance_timeout": 5.0,
    # Room approval (kb_rooms) and data retention; 0 days keeps rows for ever.
    "rooms.approval": False,
    "rooms.refresh_interval": 2.0,
    "retention.chat_logs_days": 0,
    "retention.ping_days": 30,
    "retention.schedule_logs_days": 180,
    "retention.interval": 3600.0,
    "retention.batch_size": 1000,
    "retention.batch_pause": 0.2,
}

# Keys under `rooms` that are settings, not channel ids.
ROOM_SETTING_KEYS = frozenset({"approval", "refresh_interval"})

_SECRET_WORDS = ("password", "passwd", "secret", "token", "salt", "api_key", "apikey",
                 "private_key", "credential")

_MISSING: Any = object()


class ConfigError(Exception):
    """A config problem; str() is one line saying what is wrong and how to fix it."""


# ---------------------------------------------------------------- files


def _paths(directory: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    d = Path(directory)
    return d, d / KEY_FILE, d / ENC_FILE


def _os_error(action: str, exc: OSError, path: Path | None = None) -> ConfigError:
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or exc.__class__.__name__
    return ConfigError(f"cannot {action} {where}: {reason}")


def exists(directory: str | os.PathLike[str]) -> bool:
    """True when both the key and the encrypted config are present."""
    _, key, enc = _paths(directory)
    return key.is_file() and enc.is_file()


def _atomic_write(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload`: temp file (0600) in the same dir, fsync, rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    except OSError as exc:
        raise _os_error("write to", exc, path.parent) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _os_error("write", exc, path) from None
        raise
    fsyncDirectory(path.parent)


def _read_keys(directory: str | os.PathLike[str]) -> list[bytes]:
    """The Fernet keys in the key file, newest first, after the permission check."""
    d, key, enc = _paths(directory)
    if not key.exists():
        if enc.exists():
            raise ConfigError(
                f"key file {key} is missing; restore it from your backup "
                f"(the config cannot be read without it)")
        raise ConfigError(f"no config in {d}: create one with `kkobot-config --dir {d} init`")
    _check_folder(d)
    try:
        st = key.stat()
    except OSError as exc:
        raise _os_error("read", exc, key) from None
    me = os.geteuid()
    if st.st_uid != me:
        # Also refuses `sudo kkobot-config` on the server's config: a file written
        # back as root would be unreadable to the server.
        raise ConfigError(
            f"key file {key} is owned by {userName(st.st_uid)}, not by {userName(me)} "
            f"(the user reading it); run as {userName(st.st_uid)}, or fix it with: "
            f"chown {userName(me)} {key}")
    if st.st_mode & 0o077:
        raise ConfigError(
            f"key file {key} is accessible to group or others "
            f"(mode {st.st_mode & 0o777:04o}); fix it with: chmod 600 {key}")
    try:
        raw = key.read_bytes()
    except OSError as exc:
        raise _os_error("read", exc, key) from None
    # More than one key only while rotate_key runs (or after it crashed): see there.
    keys = raw.split()
    if not keys:
        raise ConfigError(f"key file {key} is empty; restore it from your backup")
    for k in keys:
        try:
            Fernet(k)
        except (ValueError, binascii.Error):
            raise ConfigError(
                f"key file {key} does not hold a valid Fernet key; "
                f"restore it from your backup") from None
    return keys


def _check_folder(d: Path) -> None:
    """The config folder: owned by us or root; group may list it, nobody else may enter
    it, and nobody else may write to it (who can, can swap the key and the config)."""
    try:
        st = d.stat()
    except OSError as exc:
        raise _os_error("read", exc, d) from None
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise ConfigError(
            f"config folder {d} is owned by {userName(st.st_uid)}, not by {userName(me)} "
            f"(the user reading it) or root; fix it with: chown {userName(me)} {d}")
    if st.st_mode & 0o027:
        raise ConfigError(
            f"config folder {d} is writable by group or open to others "
            f"(mode {st.st_mode & 0o777:04o}); fix it with: chmod 700 {d}")


def _fernet(keys: list[bytes]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def _looks_like_token(token: bytes) -> bool:
    """Fernet's framing (version 0x80, 16-byte blocks, HMAC) without the key."""
    try:
        raw = base64.urlsafe_b64decode(token)
    except (ValueError, binascii.Error):
        return False
    body = len(raw) - 1 - 8 - 16 - 32
    return len(raw) > 0 and raw[0] == 0x80 and body >= 16 and body % 16 == 0


def load(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Decrypt and parse the config; any problem is one ConfigError line."""
    d, key, enc = _paths(directory)
    keys = _read_keys(d)
    if not enc.exists():
        raise ConfigError(
            f"config file {enc} is missing; restore it from your backup, or remove {key} "
            f"and run `kkobot-config --dir {d} init`")
    try:
        token = enc.read_bytes().strip()
    except OSError as exc:
        raise _os_error("read", exc, enc) from None
    try:
        plain = _fernet(keys).decrypt(token)
    except InvalidToken:
        if _looks_like_token(token):
            raise ConfigError(
                f"{key} is not the key {enc} was encrypted with; "
                f"restore the matching key (or both files) from your backup") from None
        raise ConfigError(
            f"{enc} is corrupt (not a Fernet token); restore it from your backup") from None
    try:
        data = json.loads(plain.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"decrypted {enc} is not UTF-8 text; restore it from your backup") from None
    except json.JSONDecodeError as exc:
        # exc.msg and the position only: the document may hold secrets.
        raise ConfigError(
            f"decrypted {enc} is not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); fix it with `kkobot-config --dir {d} edit`") from None
    except RecursionError:
        raise ConfigError(f"decrypted {enc} nests too deeply; restore it from your backup") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"decrypted {enc} is a JSON {_json_type(data)}, not an object; "
            f"fix it with `kkobot-config --dir {d} edit`")
    return data


def _dump(data: dict[str, Any]) -> bytes:
    if not isinstance(data, dict):
        raise ConfigError(f"the config must be a JSON object, not {_json_type(data)}")
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the config cannot be stored as JSON: {exc}") from None


def save(directory: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Encrypt `data` with the directory's key and atomically replace the config."""
    d, _, enc = _paths(directory)
    payload = _dump(data)
    keys = _read_keys(d)
    _atomic_write(enc, _fernet(keys).encrypt(payload))


def skeleton() -> dict[str, Any]:
    """The config `init` writes: the original server's shape plus auth and bots."""
    def db(name: str) -> dict[str, Any]:
        return {"HOST": "127.0.0.1", "PORT": 3306, "USER": "kkobot", "PASSWORD": "",
                "NAME": name}

    return {
        "SERVER": {"server_ip": "0.0.0.0"},
        "DBs": {"kkobot_test": db("kkobot_test"), "kkobot_prod": db("kkobot_prod")},
        "auth": {"required": True, "auto_approve": False},
        "bots": {},
    }


def init(directory: str | os.PathLike[str], data: dict[str, Any] | None = None) -> None:
    """Create the directory (0700), a new key (0600) and the config; never overwrites."""
    d, key, enc = _paths(directory)
    for existing in (key, enc):
        if existing.exists() or existing.is_symlink():
            raise ConfigError(
                f"{existing} already exists; refusing to overwrite it "
                f"(use `kkobot-config --dir {d} edit`, or move the old files away first)")
    payload = _dump(skeleton() if data is None else data)
    try:
        d.mkdir(mode=0o700, parents=True)
        os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
    except FileExistsError:
        if not d.is_dir():
            raise ConfigError(f"{d} exists and is not a directory; choose another --dir") from None
        # An existing folder becomes the config folder: load() refuses it otherwise.
        try:
            if d.stat().st_uid == os.geteuid() and d.stat().st_mode & 0o077:
                os.chmod(d, 0o700)
        except OSError as exc:
            raise _os_error("change the mode of", exc, d) from None
    except OSError as exc:
        raise _os_error("create", exc, d) from None
    new_key = Fernet.generate_key()
    # O_EXCL with the mode up front: the key is never visible with looser permissions,
    # and a concurrent init cannot clobber it.
    try:
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:
        raise ConfigError(f"{key} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise _os_error("create", exc, key) from None
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, new_key)
            os.fsync(fd)
        finally:
            os.close(fd)
        _atomic_write(enc, Fernet(new_key).encrypt(payload))
    except BaseException as exc:
        # Leave nothing half-made, so running init again just works.
        try:
            key.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _os_error("write", exc, key) from None
        raise
    fsyncDirectory(d)


def rotate_key(directory: str | os.PathLike[str]) -> None:
    """Generate a new key and re-encrypt the config under it.

    Two files cannot be replaced in one atomic step, so the key file briefly holds
    the new key *and* the old one(s) (one per line; load() tries each, newest first):

    1. key file := new + old keys   -> the old config still decrypts (old key)
    2. config   := encrypted with new key -> decrypts (new key)
    3. key file := new key only

    Each step is an atomic replace, so a crash between any two leaves a pair that
    loads. A leftover two-key file keeps working (save encrypts with the newest key);
    the next rotate_key trims it.
    """
    d, key, enc = _paths(directory)
    old_keys = _read_keys(d)
    data = load(d)
    payload = _dump(data)
    new_key = Fernet.generate_key()
    _atomic_write(key, b"\n".join([new_key, *old_keys]) + b"\n")
    _atomic_write(enc, Fernet(new_key).encrypt(payload))
    _atomic_write(key, new_key)


# ---------------------------------------------------------------- dotted keys


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def split_key(key: str) -> list[str]:
    r"""`"a.b.c"` -> `["a", "b", "c"]`; `\.` is a literal dot (`bots.LOA\.i.secret`)."""
    parts: list[str] = []
    cur: list[str] = []
    it = iter(key)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "")
            if nxt not in (".", "\\"):
                cur.append("\\")
            cur.append(nxt)
        elif ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    if any(p == "" for p in parts):
        raise ConfigError(f"invalid key {key!r}: use dotted names like DBs.kkobot_test.HOST")
    return parts


def _join(parts: list[str]) -> str:
    return ".".join(p.replace("\\", "\\\\").replace(".", "\\.") for p in parts)


def get_dotted(data: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key, or `default` when any part of the path is absent."""
    node: Any = data
    for part in split_key(key):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key, creating missing intermediate objects."""
    parts = split_key(key)
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = _join(parts[: i + 1])
            raise ConfigError(
                f"cannot set {key}: {where} is a {_json_type(child)}, not an object "
                f"(unset {where} first to replace it)")
        node = child
    node[parts[-1]] = value


def unset_dotted(data: dict[str, Any], key: str) -> None:
    """Remove a dotted key; ConfigError when it is not set."""
    parts = split_key(key)
    node: Any = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{key} is not set")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ConfigError(f"{key} is not set")
    del node[parts[-1]]


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def parse_value(text: str) -> Any:
    """A JSON value when `text` parses as one (`true`, `3306`, `{"a":1}`), else `text`."""
    if text == "":
        return ""
    try:
        # NaN/Infinity are not JSON and could not be saved again: keep them as text.
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return text


# ---------------------------------------------------------------- secrets


def is_secret_key(name: str) -> bool:
    """Whether a key's last segment names a secret (password, secret, salt, token...)."""
    lower = name.lower()
    return any(word in lower for word in _SECRET_WORDS)


def masked(data: Any) -> Any:
    """A deep copy with every secret value replaced by MASK (empty ones stay visible)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            if isinstance(k, str) and is_secret_key(k) and v not in ("", None):
                out[k] = MASK
            else:
                out[k] = masked(v)
        return out
    if isinstance(data, list):
        return [masked(v) for v in data]
    if isinstance(data, str) and "://" in data:
        # A password inside a URL (cluster.redis = redis://:password@host/0).
        return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", data)
    return copy.deepcopy(data)


_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)[^@/]+@", re.IGNORECASE)


# ---------------------------------------------------------------- typed views


@dataclass(frozen=True)
class DBSettings:
    """One `DBs.kkobot_<mode>` section, with defaults filled in."""

    engine: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    name: str
    path: str | None = None


def _db_str(section: dict[str, Any], where: str, name: str, default: str) -> str:
    value = section.get(name)
    if value is None:
        return default
    # A hand-edited `"PASSWORD": 1234` means the string; ints convert without loss.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}.{name} must be a string, not a {_json_type(value)}; "
            f"fix it with `kkobot-config set {where}.{name} "
            f"{'-' if is_secret_key(name) else 'VALUE'}`")
    return value


def db_settings(data: dict[str, Any], mode: str) -> DBSettings:
    """The database settings for mode "test" or "prod" (section DBs.kkobot_<mode>)."""
    if mode not in ("test", "prod"):
        raise ConfigError(f"unknown mode {mode!r}: use 'test' or 'prod'")
    where = f"DBs.kkobot_{mode}"
    section = get_dotted(data, where)
    if section is None:
        raise ConfigError(
            f"no database settings for {mode} mode: set {where} "
            f"(e.g. `kkobot-config set {where}.NAME kkobot_{mode}`)")
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be an object with HOST, PORT, USER, PASSWORD, NAME; "
                          f"fix it with `kkobot-config edit`")
    engine = _db_str(section, where, "ENGINE", "mysql").strip().lower()
    if engine not in ("mysql", "sqlite"):
        raise ConfigError(f"{where}.ENGINE must be \"mysql\" or \"sqlite\", not {engine!r}")
    port = section.get("PORT")
    if port is None:
        port = 3306
    elif isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}.PORT must be a port number (1-65535); "
                          f"fix it with `kkobot-config set {where}.PORT 3306`")
    name = _db_str(section, where, "NAME", "")
    path = section.get("PATH")
    if engine == "mysql":
        if not name:
            raise ConfigError(f"{where}.NAME is not set: `kkobot-config set {where}.NAME "
                              f"kkobot_{mode}`")
        path = None
    else:
        path = _db_str(section, where, "PATH", f"var/kkobot_{mode}.sqlite3")
        name = name or f"kkobot_{mode}"
    return DBSettings(
        engine=engine,
        host=_db_str(section, where, "HOST", "127.0.0.1"),
        port=port,
        user=_db_str(section, where, "USER", "root"),
        password=_db_str(section, where, "PASSWORD", ""),
        name=name,
        path=path,
    )


def bot_credentials(data: dict[str, Any], bot_name: str) -> tuple[str, str] | None:
    """(secret, salt) for a bot: its own entry, else `bots.default`, else None."""
    bots = data.get("bots")
    if bots is None:
        return None
    if not isinstance(bots, dict):
        raise ConfigError("bots must be an object of {name: {secret, salt}}; "
                          "fix it with `kkobot-config edit`")
    label = bot_name if bots.get(bot_name) is not None else "default"
    entry = bots.get(label)
    if entry is None:
        return None
    where = f"bots.{_join([label])}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with secret and salt; "
                          f"fix it with `kkobot-config edit`")
    secret = entry.get("secret")
    salt = entry.get("salt", "")
    if salt is None:
        salt = ""
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"{where}.secret is not set; `kkobot-config remove-bot {label}` "
                          f"then `kkobot-config add-bot {label}`")
    if not isinstance(salt, str):
        raise ConfigError(f"{where}.salt must be a string; fix it with `kkobot-config edit`")
    return secret, salt


def setting(data: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    """A config value with its default (from DEFAULTS unless given), type-checked.

    A value whose type does not match the default's is a ConfigError: booleans must
    be true/false, numbers must be non-negative numbers, strings must be strings.
    """
    if default is _MISSING:
        if key not in DEFAULTS:
            raise KeyError(f"no default known for {key}; pass one")
        default = DEFAULTS[key]
    value = get_dotted(data, key)
    if value is None:
        return default
    fix = f"fix it with `kkobot-config set {key} {json.dumps(default)}`"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, not a {_json_type(value)}; {fix}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{key} must be a non-negative number; {fix}")
        if isinstance(default, int) and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(default, float):
            value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, not a {_json_type(value)}; {fix}")
    return value


def validate(data: dict[str, Any]) -> None:
    """Check the keys kkobot knows (DEFAULTS) so a typo fails now, not at startup."""
    for key in DEFAULTS:
        setting(data, key)
    # Its default follows ping_interval (3x), so it has no fixed entry in DEFAULTS.
    setting(data, "server.idle_timeout", 0)
    dbs = data.get("DBs")
    if dbs is not None and not isinstance(dbs, dict):
        raise ConfigError("DBs must be an object; fix it with `kkobot-config edit`")
    bots = data.get("bots")
    if bots is not None and not isinstance(bots, dict):
        raise ConfigError("bots must be an object of {name: {secret, salt}}; "
                          "fix it with `kkobot-config edit`")
    # A lone string here would be silently ignored by the permission checks.
    _check_list(data.get("admins"), "admins", '["a1b2c3"]')
    rooms = data.get("rooms")
    if rooms is not None:
        if not isinstance(rooms, dict):
            raise ConfigError("rooms must be an object keyed by channelId; "
                              "fix it with `kkobot-config edit`")
        for room, entry in rooms.items():
            where = f"rooms.{_join([str(room)])}"
            if entry is None or room in ROOM_SETTING_KEYS:
                continue
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} must be an object with admins / disabled_commands; "
                                  f"fix it with `kkobot-config edit`")
            _check_list(entry.get("admins"), f"{where}.admins", '["a1b2c3"]')
            _check_list(entry.get("disabled_commands"), f"{where}.disabled_commands",
                        '["echo"]')


def _check_list(value: Any, key: str, example: str) -> None:
    if value is not None and not isinstance(value, list):
        raise ConfigError(f"{key} must be a JSON array; fix it with "
                          f"`kkobot-config set {key} '{example}'`")
