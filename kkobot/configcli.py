"""kkobot-config: create, inspect and change the encrypted config from a shell."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from kkobot import config

PROG = "kkobot-config"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus a message and exits 2; we promise one line and 1.
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see {PROG} --help)")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _load(args: argparse.Namespace) -> dict[str, Any]:
    return config.load(args.dir)


def _save(args: argparse.Namespace, data: dict[str, Any]) -> None:
    config.validate(data)
    config.save(args.dir, data)


_SECRET_LEAVES = ("password", "passwd", "secret", "salt", "token", "api_key", "apikey")


def _is_secret_leaf(leaf: str) -> bool:
    # Narrower than config.is_secret_key (which masks generously): `max_tokens` is a number.
    lower = leaf.lower()
    return lower in _SECRET_LEAVES or lower.endswith(tuple("_" + w for w in _SECRET_LEAVES))


def _show_value(key: str, value: Any) -> str:
    leaf = config.split_key(key)[-1]
    shown = config.masked({leaf: value})[leaf]
    return json.dumps(shown, ensure_ascii=False)


# ---------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace) -> int:
    config.init(args.dir)
    key = Path(args.dir) / config.KEY_FILE
    _out(f"created {Path(args.dir) / config.ENC_FILE} and {key}")
    _out(f"back up {key} somewhere safe: without it the config cannot be read")
    return 0


def _withPluginDefaults(data: dict[str, Any]) -> dict[str, Any]:
    # What plugins will see: their declared defaults under plugins.<name>, secrets masked.
    from kkobot.commands.plugin import loadedPluginModules, withDeclaredDefaults

    modules, failures = loadedPluginModules(config.setting(data, "plugins.dropin_dir"))
    for failure in failures:
        sys.stderr.write(f"{PROG}: note: plugin {failure} (its defaults are not shown)\n")
    return withDeclaredDefaults(data, modules)


def cmd_show(args: argparse.Namespace) -> int:
    data: Any = _withPluginDefaults(_load(args))
    if args.key is not None:
        parts = config.split_key(args.key)
        data = config.get_dotted(data, args.key)
        if data is None:
            raise config.ConfigError(f"{args.key} is not set")
        # A secret leaf is masked by its own name, which masked() of the subtree misses.
        if config.is_secret_key(parts[-1]) and data != "":
            data = config.MASK
    _out(json.dumps(config.masked(data), indent=2, ensure_ascii=False))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    data = _load(args)
    value = config.parse_value(args.value)
    leaf = config.split_key(args.key)[-1]
    # A numeric password such as 123456 is still a password: keep what was typed.
    if _is_secret_leaf(leaf) and isinstance(value, (bool, int, float)):
        value = args.value
    config.set_dotted(data, args.key, value)
    _save(args, data)
    from kkobot.commands.plugin import isDeclaredSecret

    shown = json.dumps(config.MASK) if isDeclaredSecret(args.key, data) else _show_value(args.key, value)
    _out(f"{args.key} = {shown}")
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    data = _load(args)
    config.unset_dotted(data, args.key)
    _save(args, data)
    _out(f"{args.key} removed")
    return 0


def _editor() -> list[str]:
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(command)
    except ValueError:
        raise config.ConfigError(f"cannot parse the editor command {command!r}; "
                                 f"fix $VISUAL / $EDITOR") from None
    if not argv:
        raise config.ConfigError("the editor command is empty; set $VISUAL or $EDITOR")
    return argv


def cmd_edit(args: argparse.Namespace) -> int:
    data = _load(args)
    editor = _editor()
    # The plaintext lives only inside the 0700 config dir, mode 0600, and is always
    # removed, so it never lands in /tmp where other users or tmp cleaners see it.
    fd, tmp = tempfile.mkstemp(dir=args.dir, prefix=".kkobot.edit.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        try:
            status = subprocess.call([*editor, tmp])
        except OSError as exc:
            raise config.ConfigError(
                f"cannot run the editor {editor[0]!r} ({exc.strerror}); "
                f"set $VISUAL or $EDITOR; config unchanged") from None
        if status != 0:
            raise config.ConfigError(f"the editor exited with status {status}; config unchanged")
        try:
            with open(tmp, encoding="utf-8") as fh:
                new = json.load(fh)
        except UnicodeDecodeError:
            raise config.ConfigError("the edited file is not UTF-8 text; config unchanged") from None
        except json.JSONDecodeError as exc:
            raise config.ConfigError(
                f"the edited file is not valid JSON ({exc.msg} at line {exc.lineno} column "
                f"{exc.colno}); config unchanged") from None
        if not isinstance(new, dict):
            raise config.ConfigError("the edited file must be a JSON object; config unchanged")
        if new == data:
            _out("no changes")
            return 0
        try:
            _save(args, new)
        except config.ConfigError as exc:
            raise config.ConfigError(f"{exc}; config unchanged") from None
        _out("config saved")
        return 0
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def cmd_add_bot(args: argparse.Namespace) -> int:
    name = args.name
    if not name.strip():
        raise config.ConfigError("the bot name is empty; give the bot's name as the bridge "
                                 "sends it (botName)")
    data = _load(args)
    if data.get("bots") is None:
        data["bots"] = {}
    bots = data["bots"]
    if not isinstance(bots, dict):
        raise config.ConfigError("bots must be an object; fix it with `kkobot-config edit`")
    if name in bots:
        raise config.ConfigError(
            f"bot {name!r} already exists; `{PROG} remove-bot {shlex.quote(name)}` first")
    secret = args.secret if args.secret is not None else secrets.token_urlsafe(32)
    salt = args.salt if args.salt is not None else secrets.token_hex(16)
    if not secret:
        raise config.ConfigError("--secret must not be empty (omit it to generate one)")
    bots[name] = {"secret": secret, "salt": salt}
    _save(args, data)
    # The only place a secret is ever printed; the lines paste straight into the
    # bridge's JavaScript (json.dumps quotes them as valid JS string literals).
    _out(f"// kkobot bot {json.dumps(name, ensure_ascii=False)}: shown only once, "
         f"paste into the bridge script")
    _out(f"SECRET_KEY = {json.dumps(secret, ensure_ascii=False)}")
    _out(f"BOT_SPECIFIC_SALT = {json.dumps(salt, ensure_ascii=False)}")
    return 0


def cmd_remove_bot(args: argparse.Namespace) -> int:
    data = _load(args)
    bots = data.get("bots")
    if not isinstance(bots, dict) or args.name not in bots:
        raise config.ConfigError(f"no bot named {args.name!r} (see `{PROG} show bots`)")
    del bots[args.name]
    _save(args, data)
    _out(f"bot {args.name!r} removed")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    config.rotate_key(args.dir)
    key = Path(args.dir) / config.KEY_FILE
    _out(f"new key written to {key}; config re-encrypted")
    _out(f"back up {key} again: older key backups only open older config backups")
    return 0


# ---------------------------------------------------------------- parser


def _parser() -> _Parser:
    default_dir = os.environ.get("KKOBOT_CONFIG") or config.DEFAULT_DIR
    parser = _Parser(
        prog=PROG,
        description="Manage kkobot's encrypted config (<dir>/.kkobot.enc, key in "
                    "<dir>/.kkobot.key).",
        epilog="Keys are dotted (DBs.kkobot_test.HOST); write a literal dot as \\. . "
               "See docs/configuration.md.",
    )
    parser.add_argument("--dir", default=default_dir,
                        help="config directory (default: $KKOBOT_CONFIG or .cfg)")
    # Accept --dir after the command as well (`kkobot-config show --dir x`).
    common = _Parser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> _Parser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    add("init", cmd_init, "create the directory, a new key and a skeleton config")
    p = add("show", cmd_show, "print the config as JSON, secrets masked")
    p.add_argument("key", nargs="?", help="only this dotted key")
    p = add("set", cmd_set, "set a dotted key to a JSON value or a plain string")
    p.add_argument("key")
    p.add_argument("value")
    p = add("unset", cmd_unset, "remove a dotted key")
    p.add_argument("key")
    add("edit", cmd_edit, "edit the decrypted JSON in $VISUAL / $EDITOR (default vi)")
    p = add("add-bot", cmd_add_bot,
            "add a bot's secret and salt (generated unless given) and print them once")
    p.add_argument("name")
    p.add_argument("--secret", help="use this SECRET_KEY instead of a generated one")
    p.add_argument("--salt", help="use this BOT_SPECIFIC_SALT instead of a generated one")
    p = add("remove-bot", cmd_remove_bot, "remove a bot's credentials")
    p.add_argument("name")
    add("rotate-key", cmd_rotate_key, "generate a new key and re-encrypt the config")
    return parser


def _fail(message: str) -> int:
    line = " ".join(message.split())  # one line, whatever the message held
    try:
        sys.stderr.write(f"{PROG}: {line}\n")
        sys.stderr.flush()
    except OSError:
        pass
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 error)."""
    try:
        args = _parser().parse_args(argv)
        return args.func(args)
    except _UsageError as exc:
        return _fail(str(exc))
    except config.ConfigError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return _fail("interrupted")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc.__class__.__name__}")
    except Exception as exc:  # never a traceback for the operator
        return _fail(f"unexpected {exc.__class__.__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
