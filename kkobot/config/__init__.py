"""The encrypted config: a JSON object sealed with Fernet in <dir>/.kkobot.enc.

One name space for everything the rest of kkobot uses (`from kkobot.config import X`);
each job lives in its own module:

- `encrypted`: the files on disk (key file, sealed JSON, init, save, load, rotate_key);
- `permissions`: who may read or swap them (owner and mode checks);
- `schema`: the keys kkobot knows, their defaults (DEFAULTS) and type checks;
- `sections`: typed views of a loaded config (database settings, bot credentials);
- `redaction`: what is a secret, and masking it for display;
- `dotted`: dotted keys (`DBs.kkobot_test.HOST`) and values typed on a shell;
- `errors`: ConfigError, one line saying what is wrong and how to fix it.
"""

from __future__ import annotations

from kkobot.config.dotted import get_dotted, parse_value, set_dotted, split_key, unset_dotted
from kkobot.config.encrypted import (
    DEFAULT_DIR,
    ENC_FILE,
    KEY_FILE,
    exists,
    init,
    load,
    rotate_key,
    save,
)
from kkobot.config.errors import ConfigError
from kkobot.config.redaction import MASK, is_secret_key, masked
from kkobot.config.schema import DEFAULTS, setting, skeleton, validate
from kkobot.config.sections import DBSettings, bot_credentials, db_settings

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
