"""kkobot-config: create, inspect and change the encrypted config from a shell.

This module reads the command line and turns every outcome into an exit status and at
most one line on stderr; the commands themselves are in configcommands (and edit in
configedit).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Callable, NoReturn, Sequence

from kkobot import config
from kkobot.admin.configcommands import (
    cmd_add_bot,
    cmd_init,
    cmd_remove_bot,
    cmd_rotate_key,
    cmd_set,
    cmd_show,
    cmd_unset,
)
from kkobot.admin.configedit import Signalled, cmd_edit
from kkobot.admin.configio import PROG

__all__ = ["PROG", "main"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus a message and exits 2; we promise one line and 1.
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see {PROG} --help)")


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
    except Signalled as exc:
        return _fail(f"stopped by {signal.Signals(exc.signum).name}; the decrypted copy "
                     "was removed")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc.__class__.__name__}")
    except Exception as exc:  # never a traceback for the operator
        return _fail(f"unexpected {exc.__class__.__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
