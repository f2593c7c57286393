"""kkobot-config: create, inspect and change the encrypted config from a shell."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Sequence

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


def _warnArgv(what: str, safe: str) -> None:
    # Other users see a process's arguments (ps, /proc/PID/cmdline), and shells keep
    # them in their history: say so, but keep working for existing scripts.
    sys.stderr.write(
        f"{PROG}: warning: {what} on the command line is visible to other users (ps) "
        f"and stays in your shell history; next time use {safe}\n")


def _readValue(label: str) -> str:
    """
    One value from standard input: a prompt that does not echo (asked twice) on a
    terminal, else one line of the input (its line break dropped), for scripts:
    C{printf '%s\\n' "$PW" | kkobot-config set KEY -}.
    """
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            first = getpass.getpass(f"{label} (not shown): ")
            again = getpass.getpass(f"{label} again: ")
        except EOFError:
            raise config.ConfigError(f"no {label} given; nothing changed") from None
        if first != again:
            raise config.ConfigError(f"the two {label} entries differ; nothing changed")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise config.ConfigError(f"no {label} on standard input; nothing changed")
    return line[:-1] if line.endswith("\n") else line


def cmd_set(args: argparse.Namespace) -> int:
    data = _load(args)
    leaf = config.split_key(args.key)[-1]
    raw = args.value
    if raw is None or raw == "-":
        raw = _readValue(f"value of {args.key}")
        if raw.endswith("\r"):
            raw = raw[:-1]
    elif _is_secret_leaf(leaf) and raw:
        _warnArgv(f"the value of {args.key}", f"`{PROG} set {args.key} -` (asks for it)")
    value = config.parse_value(raw)
    # A numeric password such as 123456 is still a password: keep what was typed.
    if _is_secret_leaf(leaf) and isinstance(value, (bool, int, float)):
        value = raw
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


class _Signalled(BaseException):
    """A signal that ends `edit`; raised in the main thread so every `finally` runs."""

    def __init__(self, signum: int) -> None:
        BaseException.__init__(self, signum)
        self.signum = signum


# A hung-up terminal (HUP), kill (TERM), Ctrl-C (INT), Ctrl-\ (QUIT): each would
# otherwise end the process with the decrypted config still on disk.
_CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGHUP", "SIGTERM", "SIGINT", "SIGQUIT")
                         if hasattr(signal, name))


@contextlib.contextmanager
def _signalsRaise() -> Iterator[None]:
    raised: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        # Once: a second signal (a hang-up is often followed by TERM) must not cut
        # the cleanup the first one started.
        if not raised:
            raised.append(signum)
            raise _Signalled(signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (an embedding's worry, not the CLI's)
        return
    previous = {signum: signal.signal(signum, handler) for signum in _CLEANUP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _stopEditor(proc: subprocess.Popen[bytes]) -> None:
    """End the editor before its file is removed, or it could write the file again."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _runEditor(editor: list[str], path: str) -> int:
    try:
        proc = subprocess.Popen([*editor, path])
    except OSError as exc:
        raise config.ConfigError(
            f"cannot run the editor {editor[0]!r} ({exc.strerror}); "
            f"set $VISUAL or $EDITOR; config unchanged") from None
    try:
        return proc.wait()
    except BaseException:
        _stopEditor(proc)
        raise


def cmd_edit(args: argparse.Namespace) -> int:
    data = _load(args)
    editor = _editor()
    # The plaintext lives only in a private (0700) folder inside the 0700 config dir,
    # never in /tmp, and is removed on every exit and on HUP/TERM/INT/QUIT. The
    # folder also catches what editors write beside the file (vim's .swp, emacs's
    # #autosave#, nano's .save), removed with it.
    with _signalsRaise():
        work = tempfile.mkdtemp(dir=args.dir, prefix=".kkobot.edit.")
        try:
            tmp = os.path.join(work, "config.json")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            status = _runEditor(editor, tmp)
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
            shutil.rmtree(work, ignore_errors=True)


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
    if args.secret is not None and args.secret_stdin:
        raise config.ConfigError("give --secret or --secret-stdin, not both")
    if args.salt is not None and args.salt_stdin:
        raise config.ConfigError("give --salt or --salt-stdin, not both")
    if args.secret is not None or args.salt is not None:
        _warnArgv("--secret / --salt", "--secret-stdin / --salt-stdin (asks for them)")
    secret = args.secret
    if args.secret_stdin:
        secret = _readValue(f"SECRET_KEY of {name}").rstrip("\r")
    salt = args.salt
    if args.salt_stdin:
        salt = _readValue(f"BOT_SPECIFIC_SALT of {name}").rstrip("\r")
    secret = secret if secret is not None else secrets.token_urlsafe(32)
    salt = salt if salt is not None else secrets.token_hex(16)
    if not secret:
        raise config.ConfigError("the secret must not be empty (omit it to generate one)")
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
    p = add("set", cmd_set, "set a dotted key to a JSON value or a plain string "
                            "(VALUE - or none: read it from standard input, no echo on a terminal)")
    p.add_argument("key")
    p.add_argument("value", nargs="?",
                   help="the value; - (or leave it out) to read it without putting it on the "
                        "command line, as every secret should be")
    p = add("unset", cmd_unset, "remove a dotted key")
    p.add_argument("key")
    add("edit", cmd_edit, "edit the decrypted JSON in $VISUAL / $EDITOR (default vi)")
    p = add("add-bot", cmd_add_bot,
            "add a bot's secret and salt (generated unless given) and print them once")
    p.add_argument("name")
    p.add_argument("--secret", help="use this SECRET_KEY instead of a generated one "
                                    "(visible in ps: prefer --secret-stdin)")
    p.add_argument("--salt", help="use this BOT_SPECIFIC_SALT instead of a generated one "
                                  "(visible in ps: prefer --salt-stdin)")
    p.add_argument("--secret-stdin", action="store_true",
                   help="read SECRET_KEY from standard input (asked without echo on a terminal)")
    p.add_argument("--salt-stdin", action="store_true",
                   help="read BOT_SPECIFIC_SALT from standard input (after the secret's line)")
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
    except _Signalled as exc:
        return _fail(f"stopped by {signal.Signals(exc.signum).name}; the decrypted copy "
                     "was removed")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc.__class__.__name__}")
    except Exception as exc:  # never a traceback for the operator
        return _fail(f"unexpected {exc.__class__.__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
