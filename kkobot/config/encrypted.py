"""The config on disk: a JSON object sealed with Fernet in <dir>/.kkobot.enc, its key beside it."""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kkobot.config.errors import ConfigError, jsonType, osError
from kkobot.config.permissions import checkFolder, checkKeyFile
from kkobot.config.schema import skeleton
from kkobot.files import fsyncDirectory

__all__ = ["DEFAULT_DIR", "KEY_FILE", "ENC_FILE", "exists", "load", "save", "init", "rotate_key"]

DEFAULT_DIR = ".cfg"
KEY_FILE = ".kkobot.key"
ENC_FILE = ".kkobot.enc"


def _paths(directory: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    d = Path(directory)
    return d, d / KEY_FILE, d / ENC_FILE


def exists(directory: str | os.PathLike[str]) -> bool:
    """True when both the key and the encrypted config are present."""
    _, key, enc = _paths(directory)
    return key.is_file() and enc.is_file()


def _atomic_write(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload`: temp file (0600) in the same dir, fsync, rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    except OSError as exc:
        raise osError("write to", exc, path.parent) from None
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
            raise osError("write", exc, path) from None
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
    checkFolder(d)
    checkKeyFile(key)
    try:
        raw = key.read_bytes()
    except OSError as exc:
        raise osError("read", exc, key) from None
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
        raise osError("read", exc, enc) from None
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
            f"decrypted {enc} is a JSON {jsonType(data)}, not an object; "
            f"fix it with `kkobot-config --dir {d} edit`")
    return data


def _dump(data: dict[str, Any]) -> bytes:
    if not isinstance(data, dict):
        raise ConfigError(f"the config must be a JSON object, not {jsonType(data)}")
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
            raise osError("change the mode of", exc, d) from None
    except OSError as exc:
        raise osError("create", exc, d) from None
    new_key = Fernet.generate_key()
    # O_EXCL with the mode up front: the key is never visible with looser permissions,
    # and a concurrent init cannot clobber it.
    try:
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:
        raise ConfigError(f"{key} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise osError("create", exc, key) from None
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
            raise osError("write", exc, key) from None
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
