"""kkobot-config's commands that read or change the config (all but edit): one cmd_<name> each."""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

from kkobot import config
from kkobot.admin.configio import PROG, loadConfig, out, readValue, saveConfig, warnArgv

__all__ = ["cmd_init", "cmd_show", "cmd_set", "cmd_unset", "cmd_add_bot", "cmd_remove_bot",
           "cmd_rotate_key"]


_SECRET_LEAVES = ("password", "passwd", "secret", "salt", "token", "api_key", "apikey")


def _is_secret_leaf(leaf: str) -> bool:
    # Narrower than config.is_secret_key (which masks generously): `max_tokens` is a number.
    lower = leaf.lower()
    return lower in _SECRET_LEAVES or lower.endswith(tuple("_" + w for w in _SECRET_LEAVES))


def _show_value(key: str, value: Any) -> str:
    leaf = config.split_key(key)[-1]
    shown = config.masked({leaf: value})[leaf]
    return json.dumps(shown, ensure_ascii=False)


def cmd_init(args: argparse.Namespace) -> int:
    """`init`: a new key and a skeleton config; says which file to back up."""
    config.init(args.dir)
    key = Path(args.dir) / config.KEY_FILE
    out(f"created {Path(args.dir) / config.ENC_FILE} and {key}")
    out(f"back up {key} somewhere safe: without it the config cannot be read")
    return 0


def _withPluginDefaults(data: dict[str, Any]) -> dict[str, Any]:
    # What plugins will see: their declared defaults under plugins.<name>, secrets masked.
    from kkobot.commands.plugin import loadedPluginModules, withDeclaredDefaults

    modules, failures = loadedPluginModules(config.setting(data, "plugins.dropin_dir"))
    for failure in failures:
        sys.stderr.write(f"{PROG}: note: plugin {failure} (its defaults are not shown)\n")
    return withDeclaredDefaults(data, modules)


def cmd_show(args: argparse.Namespace) -> int:
    """`show [KEY]`: the config (or one key) as JSON, with plugin defaults, secrets masked."""
    data: Any = _withPluginDefaults(loadConfig(args))
    if args.key is not None:
        parts = config.split_key(args.key)
        data = config.get_dotted(data, args.key)
        if data is None:
            raise config.ConfigError(f"{args.key} is not set")
        # A secret leaf is masked by its own name, which masked() of the subtree misses.
        if config.is_secret_key(parts[-1]) and data != "":
            data = config.MASK
    out(json.dumps(config.masked(data), indent=2, ensure_ascii=False))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    """`set KEY [VALUE|-]`: one dotted key, checked and saved; a secret's value is not echoed."""
    data = loadConfig(args)
    leaf = config.split_key(args.key)[-1]
    raw = args.value
    if raw is None or raw == "-":
        raw = readValue(f"value of {args.key}")
        if raw.endswith("\r"):
            raw = raw[:-1]
    elif _is_secret_leaf(leaf) and raw:
        warnArgv(f"the value of {args.key}", f"`{PROG} set {args.key} -` (asks for it)")
    value = config.parse_value(raw)
    # A numeric password such as 123456 is still a password: keep what was typed.
    if _is_secret_leaf(leaf) and isinstance(value, (bool, int, float)):
        value = raw
    config.set_dotted(data, args.key, value)
    saveConfig(args, data)
    from kkobot.commands.plugin import isDeclaredSecret

    shown = json.dumps(config.MASK) if isDeclaredSecret(args.key, data) else _show_value(args.key, value)
    out(f"{args.key} = {shown}")
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    """`unset KEY`: remove one dotted key."""
    data = loadConfig(args)
    config.unset_dotted(data, args.key)
    saveConfig(args, data)
    out(f"{args.key} removed")
    return 0


def cmd_add_bot(args: argparse.Namespace) -> int:
    """`add-bot NAME`: a bot's secret and salt, generated unless given, printed once."""
    name = args.name
    if not name.strip():
        raise config.ConfigError("the bot name is empty; give the bot's name as the bridge "
                                 "sends it (botName)")
    data = loadConfig(args)
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
        warnArgv("--secret / --salt", "--secret-stdin / --salt-stdin (asks for them)")
    secret = args.secret
    if args.secret_stdin:
        secret = readValue(f"SECRET_KEY of {name}").rstrip("\r")
    salt = args.salt
    if args.salt_stdin:
        salt = readValue(f"BOT_SPECIFIC_SALT of {name}").rstrip("\r")
    secret = secret if secret is not None else secrets.token_urlsafe(32)
    salt = salt if salt is not None else secrets.token_hex(16)
    if not secret:
        raise config.ConfigError("the secret must not be empty (omit it to generate one)")
    bots[name] = {"secret": secret, "salt": salt}
    saveConfig(args, data)
    # The only place a secret is ever printed; the lines paste straight into the
    # bridge's JavaScript (json.dumps quotes them as valid JS string literals).
    out(f"// kkobot bot {json.dumps(name, ensure_ascii=False)}: shown only once, "
         f"paste into the bridge script")
    out(f"SECRET_KEY = {json.dumps(secret, ensure_ascii=False)}")
    out(f"BOT_SPECIFIC_SALT = {json.dumps(salt, ensure_ascii=False)}")
    return 0


def cmd_remove_bot(args: argparse.Namespace) -> int:
    """`remove-bot NAME`: forget a bot's credentials."""
    data = loadConfig(args)
    bots = data.get("bots")
    if not isinstance(bots, dict) or args.name not in bots:
        raise config.ConfigError(f"no bot named {args.name!r} (see `{PROG} show bots`)")
    del bots[args.name]
    saveConfig(args, data)
    out(f"bot {args.name!r} removed")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """`rotate-key`: re-encrypt the config under a new key."""
    config.rotate_key(args.dir)
    key = Path(args.dir) / config.KEY_FILE
    out(f"new key written to {key}; config re-encrypted")
    out(f"back up {key} again: older key backups only open older config backups")
    return 0
