"""kkobot.config against real files and real Fernet."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from kkobot import config
from kkobot.config import ConfigError, encrypted

ORIGINAL = {
    "SERVER": {"server_ip": "0.0.0.0"},
    "DBs": {
        "kkobot_test": {"HOST": "127.0.0.1", "PORT": 3306, "USER": "root",
                        "PASSWORD": "", "NAME": "kkobot_test"},
        "kkobot_prod": {"HOST": "10.0.0.5", "PORT": 3307, "USER": "kko",
                        "PASSWORD": "pr0d-pw", "NAME": "kkobot_prod"},
    },
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_pair(d: Path, plaintext: bytes, key: bytes | None = None) -> bytes:
    """Write a key/config pair the way the original server did: raw key, raw token."""
    d.mkdir(mode=0o700, exist_ok=True)
    key = key or Fernet.generate_key()
    (d / config.KEY_FILE).write_bytes(key)
    os.chmod(d / config.KEY_FILE, 0o600)
    (d / config.ENC_FILE).write_bytes(Fernet(key).encrypt(plaintext))
    return key


def one_line(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    config.init(d)
    return d


class TestInit:
    def test_modes_and_skeleton(self, tmp_path: Path) -> None:
        d = tmp_path / "new" / "cfg"
        old = os.umask(0)  # even a permissive umask must not loosen the files
        try:
            config.init(d)
        finally:
            os.umask(old)
        assert mode(d) == 0o700
        assert mode(d / config.KEY_FILE) == 0o600
        assert mode(d / config.ENC_FILE) == 0o600
        assert config.exists(d)
        data = config.load(d)
        assert data["SERVER"]["server_ip"]
        assert set(data["DBs"]) == {"kkobot_test", "kkobot_prod"}
        assert data["DBs"]["kkobot_prod"]["NAME"] == "kkobot_prod"
        assert data["auth"] == {"required": True, "auto_approve": False}
        assert data["bots"] == {}
        # the skeleton is usable as is
        assert config.db_settings(data, "test").port == 3306

    def test_init_with_data(self, tmp_path: Path) -> None:
        config.init(tmp_path / "c", {"a": 1})
        assert config.load(tmp_path / "c") == {"a": 1}

    def test_refuses_existing_config(self, cfg: Path) -> None:
        key_before = (cfg / config.KEY_FILE).read_bytes()
        enc_before = (cfg / config.ENC_FILE).read_bytes()
        with pytest.raises(ConfigError) as exc:
            config.init(cfg)
        assert "already exists" in one_line(exc)
        assert (cfg / config.KEY_FILE).read_bytes() == key_before
        assert (cfg / config.ENC_FILE).read_bytes() == enc_before

    @pytest.mark.parametrize("leftover", [config.KEY_FILE, config.ENC_FILE])
    def test_refuses_half_config(self, tmp_path: Path, leftover: str) -> None:
        # A lone key may still open a backed-up config; a lone config needs its key back.
        (tmp_path / leftover).write_bytes(b"keep me")
        with pytest.raises(ConfigError):
            config.init(tmp_path)
        assert (tmp_path / leftover).read_bytes() == b"keep me"
        assert not config.exists(tmp_path)

    def test_unsavable_data_leaves_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError):
            config.init(tmp_path / "c", {"x": object()})
        assert not (tmp_path / "c" / config.KEY_FILE).exists()
        config.init(tmp_path / "c")  # and a retry works


class TestLoadSave:
    def test_round_trip(self, cfg: Path) -> None:
        data = {"SERVER": {"server_ip": "1.2.3.4"}, "room": "테스트방", "n": [1, 2.5, None],
                "DBs": {"kkobot_test": {"PASSWORD": "s3cr3t"}}}
        config.save(cfg, data)
        assert config.load(cfg) == data
        raw = (cfg / config.ENC_FILE).read_bytes()
        assert b"s3cr3t" not in raw and "테스트방".encode() not in raw
        assert mode(cfg / config.ENC_FILE) == 0o600

    def test_original_server_shape_read_unchanged(self, tmp_path: Path) -> None:
        key = write_pair(tmp_path, json.dumps(ORIGINAL).encode())
        # a key file with a trailing newline (echo > file) is fine too
        (tmp_path / config.KEY_FILE).write_bytes(key + b"\n")
        data = config.load(tmp_path)
        assert data == ORIGINAL
        prod = config.db_settings(data, "prod")
        assert (prod.engine, prod.host, prod.port, prod.user, prod.password, prod.name) == (
            "mysql", "10.0.0.5", 3307, "kko", "pr0d-pw", "kkobot_prod")
        # and what we write back, the original server (plain Fernet + json) can read
        config.save(tmp_path, data)
        token = (tmp_path / config.ENC_FILE).read_bytes()
        assert json.loads(Fernet((tmp_path / config.KEY_FILE).read_bytes()).decrypt(token)) == ORIGINAL

    def test_missing_everything(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as exc:
            config.load(tmp_path / "nope")
        assert "init" in one_line(exc)
        assert not config.exists(tmp_path / "nope")

    def test_missing_key(self, cfg: Path) -> None:
        (cfg / config.KEY_FILE).unlink()
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert "key file" in one_line(exc) and "backup" in str(exc.value)

    def test_missing_config(self, cfg: Path) -> None:
        (cfg / config.ENC_FILE).unlink()
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert config.ENC_FILE in one_line(exc)

    def test_wrong_key(self, cfg: Path) -> None:
        (cfg / config.KEY_FILE).write_bytes(Fernet.generate_key())
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert "not the key" in one_line(exc)

    def test_key_file_garbage(self, cfg: Path) -> None:
        (cfg / config.KEY_FILE).write_bytes(b"not a key")
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert "valid Fernet key" in one_line(exc)

    @pytest.mark.parametrize("content", [b"", b"garbage!!", b"gAAAAA", b"\x00\xff" * 40])
    def test_corrupt_config(self, cfg: Path, content: bytes) -> None:
        (cfg / config.ENC_FILE).write_bytes(content)
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert "corrupt" in one_line(exc)

    def test_tampered_token_is_reported(self, cfg: Path) -> None:
        token = bytearray((cfg / config.ENC_FILE).read_bytes())
        token[-10] = ord("A") if token[-10] != ord("A") else ord("B")
        (cfg / config.ENC_FILE).write_bytes(bytes(token))
        with pytest.raises(ConfigError):
            config.load(cfg)

    @pytest.mark.parametrize("doc,word", [(b"[1, 2]", "array"), (b'"x"', "string"),
                                          (b"null", "null"), (b"42", "number")])
    def test_not_an_object(self, tmp_path: Path, doc: bytes, word: str) -> None:
        write_pair(tmp_path, doc)
        with pytest.raises(ConfigError) as exc:
            config.load(tmp_path)
        assert word in one_line(exc) and "object" in str(exc.value)

    def test_invalid_json_message_has_no_secret(self, tmp_path: Path) -> None:
        write_pair(tmp_path, b'{"PASSWORD": "hunter2",,}')
        with pytest.raises(ConfigError) as exc:
            config.load(tmp_path)
        assert "not valid JSON" in one_line(exc)
        assert "hunter2" not in str(exc.value)

    def test_not_utf8(self, tmp_path: Path) -> None:
        write_pair(tmp_path, b'{"a": "\xff"}')
        with pytest.raises(ConfigError) as exc:
            config.load(tmp_path)
        assert "UTF-8" in one_line(exc)

    @pytest.mark.parametrize("loose", [0o640, 0o604, 0o620, 0o660, 0o644])
    def test_loose_key_refused_with_chmod_hint(self, cfg: Path, loose: int) -> None:
        key = cfg / config.KEY_FILE
        os.chmod(key, loose)
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert f"chmod 600 {key}" in one_line(exc)
        with pytest.raises(ConfigError):
            config.save(cfg, {"a": 1})
        os.chmod(key, 0o600)
        assert config.load(cfg)["bots"] == {}

    def test_read_only_key_is_fine(self, cfg: Path) -> None:
        os.chmod(cfg / config.KEY_FILE, 0o400)
        assert config.load(cfg)["auth"]["required"] is True

    def test_save_leaves_no_temp_files_and_tightens_mode(self, cfg: Path) -> None:
        os.chmod(cfg / config.ENC_FILE, 0o644)
        config.save(cfg, {"a": 1})
        assert sorted(p.name for p in cfg.iterdir()) == [config.ENC_FILE, config.KEY_FILE]
        assert mode(cfg / config.ENC_FILE) == 0o600

    def test_failed_save_keeps_old_config(self, cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        before = config.load(cfg)

        def boom(src: str, dst: str) -> None:
            raise OSError(28, "No space left on device", dst)

        monkeypatch.setattr(encrypted.os, "replace", boom)
        with pytest.raises(ConfigError) as exc:
            config.save(cfg, {"a": 1})
        assert "No space left" in one_line(exc)
        monkeypatch.undo()
        assert config.load(cfg) == before
        assert sorted(p.name for p in cfg.iterdir()) == [config.ENC_FILE, config.KEY_FILE]

    def test_save_rejects_non_json(self, cfg: Path) -> None:
        with pytest.raises(ConfigError):
            config.save(cfg, {"x": float("nan")})
        with pytest.raises(ConfigError):
            config.save(cfg, [1])  # type: ignore[arg-type]


# A user other than the one running the tests: files can be given to it only by root.
OTHER_UID = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


class TestOwnersAndFolder:
    """Who can swap the key or the config, or read it, besides the server's user."""

    @needs_root
    def test_key_owned_by_another_user_refused(self, cfg: Path) -> None:
        key = cfg / config.KEY_FILE
        os.chown(key, OTHER_UID, -1)
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        message = one_line(exc)
        assert f"key file {key} is owned by" in message
        assert f"chown root {key}" in message
        with pytest.raises(ConfigError):
            config.save(cfg, {"a": 1})
        os.chown(key, 0, -1)
        assert config.load(cfg)["bots"] == {}

    @needs_root
    def test_folder_owned_by_another_user_refused(self, cfg: Path) -> None:
        os.chown(cfg, OTHER_UID, -1)
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert f"config folder {cfg} is owned by" in one_line(exc)

    @pytest.mark.parametrize("loose", [0o755, 0o770, 0o701, 0o705, 0o720, 0o777])
    def test_folder_open_to_others_or_group_writable_refused(self, cfg: Path, loose: int) -> None:
        os.chmod(cfg, loose)
        with pytest.raises(ConfigError) as exc:
            config.load(cfg)
        assert f"fix it with: chmod 700 {cfg}" in one_line(exc)
        with pytest.raises(ConfigError):
            config.save(cfg, {"a": 1})

    @pytest.mark.parametrize("fine", [0o700, 0o750, 0o710, 0o500])
    def test_folder_the_group_may_read(self, cfg: Path, fine: int) -> None:
        os.chmod(cfg, fine)
        try:
            assert config.load(cfg)["bots"] == {}
        finally:
            os.chmod(cfg, 0o700)

    def test_init_tightens_an_existing_folder(self, tmp_path: Path) -> None:
        d = tmp_path / "cfg"
        d.mkdir()
        os.chmod(d, 0o755)
        config.init(d)
        assert mode(d) == 0o700
        assert config.load(d)["bots"] == {}


class TestRotateKey:
    def test_keeps_data_changes_key(self, cfg: Path) -> None:
        config.save(cfg, ORIGINAL)
        old_key = (cfg / config.KEY_FILE).read_bytes()
        config.rotate_key(cfg)
        new_key = (cfg / config.KEY_FILE).read_bytes()
        assert new_key != old_key
        assert len(new_key.split()) == 1
        assert config.load(cfg) == ORIGINAL
        with pytest.raises(InvalidToken):
            Fernet(old_key).decrypt((cfg / config.ENC_FILE).read_bytes())
        assert mode(cfg / config.KEY_FILE) == 0o600
        assert mode(cfg / config.ENC_FILE) == 0o600
        assert sorted(p.name for p in cfg.iterdir()) == [config.ENC_FILE, config.KEY_FILE]

    @pytest.mark.parametrize("crash_at", [0, 1, 2])
    @pytest.mark.parametrize("where", ["before-write", "before-replace"])
    def test_crash_at_any_step_leaves_a_readable_pair(
            self, cfg: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int, where: str) -> None:
        config.save(cfg, ORIGINAL)
        calls = {"n": 0}

        class Crash(BaseException):
            pass

        if where == "before-write":
            real = encrypted._atomic_write

            def atomic(path: Path, payload: bytes) -> None:
                if calls["n"] == crash_at:
                    raise Crash
                calls["n"] += 1
                real(path, payload)

            monkeypatch.setattr(encrypted, "_atomic_write", atomic)
        else:
            real_replace = os.replace

            def replace(src: str, dst: str) -> None:
                if calls["n"] == crash_at:
                    raise Crash
                calls["n"] += 1
                real_replace(src, dst)

            monkeypatch.setattr(encrypted.os, "replace", replace)

        with pytest.raises(Crash):
            config.rotate_key(cfg)
        monkeypatch.undo()
        assert config.load(cfg) == ORIGINAL
        config.save(cfg, {**ORIGINAL, "after": True})
        assert config.load(cfg)["after"] is True
        # a later rotation cleans up completely
        config.rotate_key(cfg)
        assert len((cfg / config.KEY_FILE).read_bytes().split()) == 1
        assert config.load(cfg)["after"] is True

    def test_refuses_unreadable_config(self, cfg: Path) -> None:
        key = (cfg / config.KEY_FILE).read_bytes()
        (cfg / config.ENC_FILE).write_bytes(b"junk")
        with pytest.raises(ConfigError):
            config.rotate_key(cfg)
        assert (cfg / config.KEY_FILE).read_bytes() == key


class TestDotted:
    def test_get(self) -> None:
        assert config.get_dotted(ORIGINAL, "DBs.kkobot_test.HOST") == "127.0.0.1"
        assert config.get_dotted(ORIGINAL, "DBs.kkobot_test.NOPE") is None
        assert config.get_dotted(ORIGINAL, "SERVER.server_ip.deeper", "d") == "d"
        assert config.get_dotted(ORIGINAL, "DBs.kkobot_none.HOST", 7) == 7

    def test_set_creates_intermediates(self) -> None:
        data: dict = {}
        config.set_dotted(data, "server.ping_interval", 10)
        config.set_dotted(data, "a.b.c", "x")
        assert data == {"server": {"ping_interval": 10}, "a": {"b": {"c": "x"}}}

    def test_set_through_non_object_is_an_error(self) -> None:
        data = {"SERVER": {"server_ip": "0.0.0.0"}}
        with pytest.raises(ConfigError) as exc:
            config.set_dotted(data, "SERVER.server_ip.x", 1)
        assert "SERVER.server_ip" in one_line(exc) and "string" in str(exc.value)
        assert data == {"SERVER": {"server_ip": "0.0.0.0"}}

    def test_escaped_dot_for_bot_names(self) -> None:
        data: dict = {"bots": {}}
        config.set_dotted(data, r"bots.LOA\.i.secret", "s")
        assert data == {"bots": {"LOA.i": {"secret": "s"}}}
        assert config.get_dotted(data, r"bots.LOA\.i.secret") == "s"

    @pytest.mark.parametrize("bad", ["", "a..b", ".a", "a."])
    def test_invalid_keys(self, bad: str) -> None:
        with pytest.raises(ConfigError):
            config.set_dotted({}, bad, 1)

    def test_unset(self) -> None:
        data = {"a": {"b": 1, "c": 2}}
        config.unset_dotted(data, "a.b")
        assert data == {"a": {"c": 2}}
        with pytest.raises(ConfigError) as exc:
            config.unset_dotted(data, "a.b")
        assert "a.b is not set" in one_line(exc)
        with pytest.raises(ConfigError):
            config.unset_dotted(data, "x.y")


class TestParseValue:
    @pytest.mark.parametrize("text,expected", [
        ("true", True), ("false", False), ("null", None), ("3306", 3306), ("2.5", 2.5),
        ('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), ('"x"', "x"), ('"3306"', "3306"),
        ("", ""), ("hello", "hello"), ("127.0.0.1", "127.0.0.1"), ("0123", "0123"),
        ("NaN", "NaN"), ("Infinity", "Infinity"), ("{oops", "{oops"), ("안녕", "안녕"),
    ])
    def test_values(self, text: str, expected: object) -> None:
        value = config.parse_value(text)
        assert value == expected and type(value) is type(expected)


class TestMasked:
    def test_masks_secrets_everywhere(self) -> None:
        data = {
            "DBs": {"kkobot_prod": {"PASSWORD": "pw", "USER": "kko"},
                    "kkobot_test": {"PASSWORD": ""}},
            "bots": {"b": {"secret": "s", "salt": "t"}, "default": {"Secret": "s2", "SALT": "t2"}},
            "api": [{"access_token": "tok", "db_password_hint": "h"}],
            "plain": "visible",
        }
        out = config.masked(data)
        text = json.dumps(out)
        for secret in ('"pw"', '"s"', '"t"', '"s2"', '"t2"', '"tok"', '"h"'):
            assert secret not in text
        assert out["DBs"]["kkobot_prod"] == {"PASSWORD": config.MASK, "USER": "kko"}
        assert out["DBs"]["kkobot_test"]["PASSWORD"] == ""
        assert out["plain"] == "visible"
        assert data["bots"]["b"]["secret"] == "s"  # a copy, not the original


class TestTypedViews:
    def test_db_settings_repr_hides_password(self) -> None:
        s = config.db_settings(ORIGINAL, "prod")
        assert "pr0d-pw" not in repr(s) and "pr0d-pw" not in str(s)
        with pytest.raises(Exception):
            s.host = "x"  # type: ignore[misc]

    def test_db_defaults(self) -> None:
        s = config.db_settings({"DBs": {"kkobot_test": {"NAME": "t"}}}, "test")
        assert (s.engine, s.host, s.port, s.password, s.name, s.path) == (
            "mysql", "127.0.0.1", 3306, "", "t", None)

    def test_sqlite(self) -> None:
        s = config.db_settings({"DBs": {"kkobot_test": {"ENGINE": "sqlite", "PATH": "x.db"}}}, "test")
        assert (s.engine, s.path) == ("sqlite", "x.db")
        s = config.db_settings({"DBs": {"kkobot_prod": {"ENGINE": "SQLite"}}}, "prod")
        assert s.path == "var/kkobot_prod.sqlite3"

    def test_db_errors_name_the_key(self) -> None:
        with pytest.raises(ConfigError) as exc:
            config.db_settings({}, "prod")
        assert "DBs.kkobot_prod" in one_line(exc)
        with pytest.raises(ConfigError) as exc:
            config.db_settings({"DBs": {"kkobot_test": {"HOST": "h"}}}, "test")
        assert "DBs.kkobot_test.NAME" in one_line(exc)
        with pytest.raises(ConfigError) as exc:
            config.db_settings({"DBs": {"kkobot_test": {"NAME": "n", "PORT": "x"}}}, "test")
        assert "DBs.kkobot_test.PORT" in one_line(exc)
        with pytest.raises(ConfigError):
            config.db_settings({"DBs": {"kkobot_test": {"NAME": "n", "ENGINE": "oracle"}}}, "test")
        with pytest.raises(ConfigError):
            config.db_settings(ORIGINAL, "staging")
        # The fix it suggests for a password keeps the password off the command line.
        with pytest.raises(ConfigError) as exc:
            config.db_settings({"DBs": {"kkobot_test": {"NAME": "n", "PASSWORD": [1]}}}, "test")
        assert "`kkobot-config set DBs.kkobot_test.PASSWORD -`" in one_line(exc)

    def test_db_numeric_password_and_string_port(self) -> None:
        s = config.db_settings({"DBs": {"kkobot_test": {"NAME": "n", "PASSWORD": 1234,
                                                        "PORT": "3307"}}}, "test")
        assert (s.password, s.port) == ("1234", 3307)

    def test_bot_credentials(self) -> None:
        data = {"bots": {"LOA.i": {"secret": "s1", "salt": "t1"},
                         "default": {"secret": "sd", "salt": "td"}}}
        assert config.bot_credentials(data, "LOA.i") == ("s1", "t1")
        assert config.bot_credentials(data, "other") == ("sd", "td")
        assert config.bot_credentials({"bots": {"a": {"secret": "s"}}}, "a") == ("s", "")
        assert config.bot_credentials({"bots": {"a": {"secret": "s"}}}, "b") is None
        assert config.bot_credentials({}, "b") is None
        with pytest.raises(ConfigError) as exc:
            config.bot_credentials({"bots": {"a": {"secret": ""}}}, "a")
        assert "bots.a.secret" in one_line(exc)

    def test_setting(self) -> None:
        assert config.setting({}, "server.ping_interval") == 30
        assert config.setting({}, "server.max_line_bytes") == 1048576
        assert config.setting({}, "plugins.dropin_dir") == "plugins"
        assert config.setting({}, "auth.required") is True
        assert config.setting({}, "custom.thing", 5) == 5
        assert config.setting({"server": {"ping_interval": 10.0}}, "server.ping_interval") == 10
        assert config.setting({"chatlog": {"flush_interval": 2}}, "chatlog.flush_interval") == 2.0
        with pytest.raises(ConfigError) as exc:
            config.setting({"server": {"ping_interval": "30"}}, "server.ping_interval")
        assert "server.ping_interval" in one_line(exc)
        with pytest.raises(ConfigError):
            config.setting({"auth": {"required": "yes"}}, "auth.required")
        with pytest.raises(ConfigError):
            config.setting({"server": {"max_line_bytes": -1}}, "server.max_line_bytes")

    def test_validate(self) -> None:
        config.validate(config.skeleton())
        config.validate(ORIGINAL)
        with pytest.raises(ConfigError):
            config.validate({"auth": {"auto_approve": 1}})
        with pytest.raises(ConfigError):
            config.validate({"server": {"idle_timeout": "long"}})
        config.validate({"admins": ["h1"], "rooms": {"123": {"admins": ["h2"],
                                                             "disabled_commands": ["echo"]}}})
        with pytest.raises(ConfigError) as exc:
            config.validate({"admins": "h1"})
        assert "set admins '[" in one_line(exc)
        with pytest.raises(ConfigError) as exc:
            config.validate({"rooms": {"123": {"disabled_commands": "echo"}}})
        assert "rooms.123.disabled_commands" in one_line(exc)
