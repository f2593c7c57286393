"""kkobot-config end to end: real files, real Fernet, real argv."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kkobot import config

from kkobot.admin import configcli
from tests.support import paths

REPO = Path(paths.REPO)


class Run:
    def __init__(self, capsys: pytest.CaptureFixture[str], d: Path) -> None:
        self.capsys = capsys
        self.dir = d

    def __call__(self, *argv: str, dir: bool = True) -> tuple[int, str, str]:
        self.capsys.readouterr()
        args = (["--dir", str(self.dir)] if dir else []) + list(argv)
        rc = configcli.main(args)
        out, err = self.capsys.readouterr()
        return rc, out, err

    def ok(self, *argv: str) -> str:
        rc, out, err = self(*argv)
        assert (rc, err) == (0, ""), err
        return out

    def warned(self, *argv: str) -> str:
        """A command that works but warns, on one stderr line, of a secret in argv."""
        rc, out, err = self(*argv)
        assert rc == 0, err
        assert err.startswith("kkobot-config: warning: ") and err.count("\n") == 1, err
        assert "visible to other users" in err
        return out

    def fails(self, *argv: str, dir: bool = True) -> str:
        """Runs a command that must fail the way we promise: status 1, one stderr line."""
        rc, out, err = self(*argv, dir=dir)
        assert rc == 1
        assert out == ""
        assert err.startswith("kkobot-config: ") and err.endswith("\n")
        assert err.count("\n") == 1, err
        assert "Traceback" not in err
        return err


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys, tmp_path / "cfg")


@pytest.fixture
def cfg(run: Run) -> Path:
    run.ok("init")
    return run.dir


def make_editor(tmp_path: Path, body: str) -> str:
    """An executable fake $EDITOR; `path` is the file it was asked to edit."""
    script = tmp_path / "fake-editor"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\npath = sys.argv[-1]\n{body}\n")
    script.chmod(0o755)
    return str(script)


class TestInitShow:
    def test_init(self, run: Run) -> None:
        out = run.ok("init")
        assert "back up" in out
        assert stat.S_IMODE((run.dir / config.KEY_FILE).stat().st_mode) == 0o600
        assert stat.S_IMODE(run.dir.stat().st_mode) == 0o700
        assert config.load(run.dir)["auth"]["required"] is True

    def test_init_twice_refused(self, cfg: Path, run: Run) -> None:
        before = (cfg / config.KEY_FILE).read_bytes()
        assert "already exists" in run.fails("init")
        assert (cfg / config.KEY_FILE).read_bytes() == before

    def test_show_masks_secrets(self, cfg: Path, run: Run) -> None:
        data = config.load(cfg)
        data["DBs"]["kkobot_prod"]["PASSWORD"] = "pr0d-pw"
        data["bots"]["LOA.i"] = {"secret": "bot-secret", "salt": "bot-salt"}
        data["SERVER"]["name"] = "테스트"
        config.save(cfg, data)
        out = run.ok("show")
        for secret in ("pr0d-pw", "bot-secret", "bot-salt"):
            assert secret not in out
        shown = json.loads(out)
        assert shown["DBs"]["kkobot_prod"]["PASSWORD"] == "********"
        assert shown["DBs"]["kkobot_test"]["PASSWORD"] == ""
        assert shown["DBs"]["kkobot_prod"]["HOST"] == "127.0.0.1"
        assert "테스트" in out  # not \uXXXX escapes
        assert out.startswith("{\n  ")  # pretty

    def test_show_one_key(self, cfg: Path, run: Run) -> None:
        run.warned("set", "DBs.kkobot_prod.PASSWORD", "pw")
        assert json.loads(run.ok("show", "DBs.kkobot_prod.HOST")) == "127.0.0.1"
        assert json.loads(run.ok("show", "DBs.kkobot_prod.PASSWORD")) == "********"
        assert "pw" not in run.ok("show", "DBs.kkobot_prod")
        assert "not set" in run.fails("show", "nope.nope")

    def test_show_without_config(self, run: Run) -> None:
        assert "init" in run.fails("show")


class TestSet:
    def test_json_vs_plain_string_vs_empty(self, cfg: Path, run: Run) -> None:
        run.ok("set", "DBs.kkobot_test.PORT", "3307")
        run.ok("set", "auth.auto_approve", "true")
        run.ok("set", "DBs.kkobot_test.HOST", "db.example.org")
        run.ok("set", "DBs.kkobot_test.NAME", '"12345"')
        run.ok("set", "DBs.kkobot_test.USER", "")
        run.ok("set", "extra.obj", '{"a": [1, 2]}')
        data = config.load(cfg)
        t = data["DBs"]["kkobot_test"]
        assert t["PORT"] == 3307
        assert data["auth"]["auto_approve"] is True
        assert t["HOST"] == "db.example.org"
        assert t["NAME"] == "12345"
        assert t["USER"] == ""
        assert data["extra"] == {"obj": {"a": [1, 2]}}

    def test_numeric_password_stays_a_string(self, cfg: Path, run: Run) -> None:
        out = run.warned("set", "DBs.kkobot_prod.PASSWORD", "123456")
        assert "123456" not in out
        assert config.load(cfg)["DBs"]["kkobot_prod"]["PASSWORD"] == "123456"
        assert config.db_settings(config.load(cfg), "prod").password == "123456"
        run.warned("set", "bots.b.salt", "42")
        run.ok("set", "limits.max_tokens", "5")  # a count, not a secret
        data = config.load(cfg)
        assert (data["bots"]["b"]["salt"], data["limits"]["max_tokens"]) == ("42", 5)

    def test_dotted_creates_sections(self, cfg: Path, run: Run) -> None:
        out = run.ok("set", "server.ping_interval", "15")
        assert out == "server.ping_interval = 15\n"
        assert config.setting(config.load(cfg), "server.ping_interval") == 15

    def test_through_a_non_object_fails_and_changes_nothing(self, cfg: Path, run: Run) -> None:
        before = config.load(cfg)
        assert "SERVER.server_ip" in run.fails("set", "SERVER.server_ip.x", "1")
        assert config.load(cfg) == before

    def test_wrong_type_for_known_key_rejected(self, cfg: Path, run: Run) -> None:
        before = config.load(cfg)
        err = run.fails("set", "server.ping_interval", "soon")
        assert "server.ping_interval" in err
        assert config.load(cfg) == before

    def test_unset(self, cfg: Path, run: Run) -> None:
        run.ok("set", "a.b", "1")
        run.ok("unset", "a.b")
        assert config.load(cfg)["a"] == {}
        assert "not set" in run.fails("unset", "a.b")

    def test_escaped_dot(self, cfg: Path, run: Run) -> None:
        run.ok("add-bot", "LOA.i")
        run.warned("set", r"bots.LOA\.i.salt", "newsalt")
        assert config.bot_credentials(config.load(cfg), "LOA.i")[1] == "newsalt"


class TestEdit:
    def test_valid_edit(self, cfg: Path, run: Run, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
        seen = tmp_path / "seen.json"
        editor = make_editor(tmp_path, f"""
st = os.stat(path)
data = json.load(open(path, encoding="utf-8"))
folder = os.path.dirname(os.path.abspath(path))
json.dump({{"dir": os.path.dirname(folder), "mode": st.st_mode & 0o777,
           "folder": os.path.basename(folder), "folderMode": os.stat(folder).st_mode & 0o777}},
          open({str(seen)!r}, "w"))
data["SERVER"]["server_ip"] = "10.1.2.3"
data["DBs"]["kkobot_test"]["PASSWORD"] = "비밀"
json.dump(data, open(path, "w", encoding="utf-8"), ensure_ascii=False)
""")
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setenv("EDITOR", editor)
        assert "saved" in run.ok("edit")
        data = config.load(cfg)
        assert data["SERVER"]["server_ip"] == "10.1.2.3"
        assert data["DBs"]["kkobot_test"]["PASSWORD"] == "비밀"
        info = json.loads(seen.read_text())
        # In a private folder inside the config folder, never in /tmp.
        assert info.pop("folder").startswith(".kkobot.edit.")
        assert info == {"dir": str(cfg.resolve()), "mode": 0o600, "folderMode": 0o700}
        assert sorted(p.name for p in cfg.iterdir()) == [config.ENC_FILE, config.KEY_FILE]

    def test_visual_wins_and_takes_arguments(self, cfg: Path, run: Run, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        editor = make_editor(tmp_path, """
data = json.load(open(path))
data["by"] = sys.argv[1]
json.dump(data, open(path, "w"))
""")
        monkeypatch.setenv("VISUAL", f"{editor} --flag")
        monkeypatch.setenv("EDITOR", "/nonexistent/editor")
        run.ok("edit")
        assert config.load(cfg)["by"] == "--flag"

    @pytest.mark.parametrize("body,word", [
        ('open(path, "w").write("{ not json")', "not valid JSON"),
        ('open(path, "w").write("[1, 2]")', "JSON object"),
        ('open(path, "w").write(\'{"auth": {"required": "maybe"}}\')', "auth.required"),
        ("sys.exit(3)", "status 3"),
    ])
    def test_bad_edit_changes_nothing(self, cfg: Path, run: Run, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, body: str, word: str) -> None:
        before = (cfg / config.ENC_FILE).read_bytes()
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setenv("EDITOR", make_editor(tmp_path, body))
        err = run.fails("edit")
        assert word in err and "unchanged" in err
        assert (cfg / config.ENC_FILE).read_bytes() == before
        assert sorted(p.name for p in cfg.iterdir()) == [config.ENC_FILE, config.KEY_FILE]

    def test_missing_editor(self, cfg: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setenv("EDITOR", "/nonexistent/editor")
        assert "EDITOR" in run.fails("edit")
        assert sorted(p.name for p in cfg.iterdir()) == [config.ENC_FILE, config.KEY_FILE]

    def test_no_change(self, cfg: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setenv("EDITOR", "true")
        before = (cfg / config.ENC_FILE).read_bytes()
        assert "no changes" in run.ok("edit")
        assert (cfg / config.ENC_FILE).read_bytes() == before


class TestBots:
    def test_add_generated(self, cfg: Path, run: Run) -> None:
        out = run.ok("add-bot", "LOA.i")
        m = re.search(r'^SECRET_KEY = "([^"]+)"$\n^BOT_SPECIFIC_SALT = "([0-9a-f]{32})"$',
                      out, re.M)
        assert m, out
        secret, salt = m.groups()
        assert len(secret) >= 43  # token_urlsafe(32)
        assert config.bot_credentials(config.load(cfg), "LOA.i") == (secret, salt)
        # shown once: nothing else ever prints it
        assert secret not in run.ok("show") and salt not in run.ok("show")
        out2 = run.ok("add-bot", "other")
        assert secret not in out2 and re.search(r'SECRET_KEY = "([^"]+)"', out2).group(1) != secret

    def test_add_given(self, cfg: Path, run: Run) -> None:
        out = run.warned("add-bot", "kkobot", "--secret", "my secret", "--salt", "my salt")
        assert 'SECRET_KEY = "my secret"' in out and 'BOT_SPECIFIC_SALT = "my salt"' in out
        assert config.bot_credentials(config.load(cfg), "kkobot") == ("my secret", "my salt")

    def test_add_existing_refused(self, cfg: Path, run: Run) -> None:
        run.ok("add-bot", "kkobot")
        before = config.bot_credentials(config.load(cfg), "kkobot")
        assert "remove-bot" in run.fails("add-bot", "kkobot")
        assert config.bot_credentials(config.load(cfg), "kkobot") == before

    def test_default_pair(self, cfg: Path, run: Run) -> None:
        run.warned("add-bot", "default", "--secret", "s", "--salt", "t")
        assert config.bot_credentials(config.load(cfg), "any-bot") == ("s", "t")

    def test_remove(self, cfg: Path, run: Run) -> None:
        run.ok("add-bot", "kkobot")
        run.ok("remove-bot", "kkobot")
        assert config.bot_credentials(config.load(cfg), "kkobot") is None
        assert "kkobot" in run.fails("remove-bot", "kkobot")


class TestRotateKey:
    def test_rotate(self, cfg: Path, run: Run) -> None:
        run.warned("add-bot", "kkobot", "--secret", "s", "--salt", "t")
        before = config.load(cfg)
        old_key = (cfg / config.KEY_FILE).read_bytes()
        out = run.ok("rotate-key")
        assert "back up" in out
        assert (cfg / config.KEY_FILE).read_bytes() != old_key
        assert config.load(cfg) == before


class TestErrors:
    def test_usage_errors_are_one_line(self, run: Run) -> None:
        run.fails()
        run.fails("frobnicate")
        run.fails("set", "only-key")
        run.fails("add-bot")

    def test_help_is_not_an_error(self, run: Run) -> None:
        rc, out, err = run("--help", dir=False)
        assert rc == 0 and "rotate-key" in out and err == ""

    def test_wrong_key(self, cfg: Path, run: Run) -> None:
        from cryptography.fernet import Fernet
        (cfg / config.KEY_FILE).write_bytes(Fernet.generate_key())
        assert "not the key" in run.fails("show")

    def test_corrupt(self, cfg: Path, run: Run) -> None:
        (cfg / config.ENC_FILE).write_bytes(b"!!!")
        assert "corrupt" in run.fails("show")

    def test_group_readable_key(self, cfg: Path, run: Run) -> None:
        os.chmod(cfg / config.KEY_FILE, 0o640)
        assert f"chmod 600 {cfg / config.KEY_FILE}" in run.fails("show")

    def test_dir_under_a_file(self, run: Run, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("x")
        run.dir = tmp_path / "file" / "cfg"
        assert "file" in run.fails("init")

    def test_unexpected_os_error(self, cfg: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        def denied(*a: object, **k: object) -> None:
            raise PermissionError(13, "Permission denied", str(cfg / config.ENC_FILE))

        monkeypatch.setattr(configcli.config, "save", denied)
        assert "Permission denied" in run.fails("set", "a", "1")

    def test_errors_never_show_secrets(self, cfg: Path, run: Run) -> None:
        run.warned("set", "DBs.kkobot_prod.PASSWORD", "pw-xyz")
        err = run.fails("set", "DBs.kkobot_prod.PASSWORD.x", "1")
        assert "pw-xyz" not in err

    def test_env_and_dir_after_command(self, cfg: Path, run: Run,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KKOBOT_CONFIG", str(cfg))
        rc, out, err = run("show", dir=False)
        assert rc == 0 and json.loads(out)["bots"] == {}
        monkeypatch.delenv("KKOBOT_CONFIG")
        rc, out, err = run("show", "--dir", str(cfg), dir=False)
        assert rc == 0 and json.loads(out)["bots"] == {}

    def test_default_dir_is_dot_cfg(self, tmp_path: Path, run: Run,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("KKOBOT_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        rc, _, _ = run("init", dir=False)
        assert rc == 0 and config.exists(tmp_path / ".cfg")


def test_console_script(tmp_path: Path) -> None:
    script = REPO / ".venv" / "bin" / "kkobot-config"
    if not script.exists():
        script = Path(sys.executable).with_name("kkobot-config")
    assert script.exists(), "kkobot-config is not installed: run `make install`"
    d = str(tmp_path / "cfg")
    env = {k: v for k, v in os.environ.items() if k != "KKOBOT_CONFIG"}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), "--dir", d, *argv], capture_output=True,
                              text=True, env=env, timeout=60)

    assert cli("init").returncode == 0
    added = cli("add-bot", "kkobot")
    assert added.returncode == 0 and "SECRET_KEY = " in added.stdout
    shown = cli("show")
    assert shown.returncode == 0 and json.loads(shown.stdout)["bots"]["kkobot"]["secret"] == "********"
    bad = cli("remove-bot", "nobody")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("kkobot-config: ") and bad.stderr.count("\n") == 1


BLOCKING_EDITOR = """
import signal
# What vim does beside the file it edits: a swap file holding the same text.
folder, name = os.path.split(path)
with open(os.path.join(folder, "." + name + ".swp"), "w") as f:
    f.write(open(path).read())
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump({"path": path, "pid": os.getpid()}, f)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    signal.pause()
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signame,whole_group", [
    ("SIGHUP", True),    # the terminal hangs up: editor and kkobot-config both get it
    ("SIGHUP", False),
    ("SIGTERM", False),
    ("SIGINT", False),
    ("SIGQUIT", False),
])
def test_edit_removes_the_decrypted_copy_on_signals(tmp_path: Path, signame: str,
                                                    whole_group: bool) -> None:
    from tests.support import pollUntil

    script = REPO / ".venv" / "bin" / "kkobot-config"
    if not script.exists():
        script = Path(sys.executable).with_name("kkobot-config")
    d = tmp_path / "cfg"
    env = {k: v for k, v in os.environ.items() if k not in ("KKOBOT_CONFIG", "VISUAL")}
    assert configcli.main(["--dir", str(d), "init"]) == 0
    assert configcli.main(["--dir", str(d), "add-bot", "kkobot", "--secret",
                           "plain-secret-0123456789", "--salt", "s"]) == 0
    before = (d / config.ENC_FILE).read_bytes()
    ready = tmp_path / "ready.json"
    env["EDITOR"] = f"{make_editor(tmp_path, BLOCKING_EDITOR)} {ready}"
    proc = subprocess.Popen([str(script), "--dir", str(d), "edit"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        pollUntil(ready.exists, "the editor to start", timeout=30)
        seen = json.loads(ready.read_text())
        # The decrypted config (and the editor's swap file) is on disk now.
        assert "plain-secret-0123456789" in Path(seen["path"]).read_text()
        signum = getattr(signal, signame)
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # kkobot-config ends (and reaps) its editor before it exits.
        editorLeft = ready.exists() and not _gone(json.loads(ready.read_text())["pid"])
        if editorLeft:
            os.kill(json.loads(ready.read_text())["pid"], signal.SIGKILL)
    assert not editorLeft
    assert proc.returncode == 1
    assert err == f"kkobot-config: stopped by {signame}; the decrypted copy was removed\n"
    assert sorted(p.name for p in d.iterdir()) == [config.ENC_FILE, config.KEY_FILE]
    assert (d / config.ENC_FILE).read_bytes() == before


class TestSecretsOffTheCommandLine:
    """Secrets read from standard input or a no-echo prompt, never from argv."""

    def test_set_reads_the_value_from_a_pipe(self, cfg: Path, run: Run,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO("pw from a pipe\n"))
        out = run.ok("set", "DBs.kkobot_prod.PASSWORD", "-")
        assert out == 'DBs.kkobot_prod.PASSWORD = "********"\n'
        assert config.load(cfg)["DBs"]["kkobot_prod"]["PASSWORD"] == "pw from a pipe"
        # Leaving the value out reads it too; a numeric password stays a string.
        monkeypatch.setattr(sys, "stdin", io.StringIO("123456\r\n"))
        run.ok("set", "DBs.kkobot_test.PASSWORD")
        assert config.load(cfg)["DBs"]["kkobot_test"]["PASSWORD"] == "123456"
        monkeypatch.setattr(sys, "stdin", io.StringIO('["a.example", "b.example"]\n'))
        run.ok("set", "admin.allowed_hosts", "-")
        assert config.load(cfg)["admin"]["allowed_hosts"] == ["a.example", "b.example"]

    def test_nothing_on_stdin_changes_nothing(self, cfg: Path, run: Run,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        before = (cfg / config.ENC_FILE).read_bytes()
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        assert "no value of admin.token on standard input" in run.fails("set", "admin.token", "-")
        assert (cfg / config.ENC_FILE).read_bytes() == before

    def test_add_bot_reads_secret_and_salt(self, cfg: Path, run: Run,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO("the secret\nthe salt\n"))
        out = run.ok("add-bot", "kkobot", "--secret-stdin", "--salt-stdin")
        assert 'SECRET_KEY = "the secret"' in out
        assert config.load(cfg)["bots"]["kkobot"] == {"secret": "the secret", "salt": "the salt"}
        monkeypatch.setattr(sys, "stdin", io.StringIO("only the secret\n"))
        run.ok("add-bot", "other", "--secret-stdin")
        entry = config.load(cfg)["bots"]["other"]
        assert entry["secret"] == "only the secret" and re.fullmatch("[0-9a-f]{32}", entry["salt"])
        assert "not both" in run.fails("add-bot", "third", "--secret", "x", "--secret-stdin")

    def test_secrets_in_argv_still_work_with_a_warning(self, cfg: Path, run: Run) -> None:
        run.warned("set", "admin.token", "t" * 20)
        assert config.load(cfg)["admin"]["token"] == "t" * 20
        # Not secrets, or nothing secret: no warning.
        run.ok("set", "SERVER.server_ip", "127.0.0.1")
        run.ok("set", "limits.max_tokens", "5")
        run.ok("set", "DBs.kkobot_prod.PASSWORD", "")


def _talk(master: int, proc: subprocess.Popen[bytes], answers: list[bytes]) -> bytes:
    """What a terminal shows while someone types C{answers} at each prompt."""
    import select

    shown = b""
    answeredAt = -1
    while proc.poll() is None or select.select([master], [], [], 0)[0]:
        ready, _, _ = select.select([master], [], [], 30)
        assert ready, f"no output from kkobot-config; so far: {shown!r}"
        try:
            chunk = os.read(master, 1024)
        except OSError:  # the other side closed (Linux: EIO)
            break
        if not chunk:
            break
        shown += chunk
        # A new prompt ("...: ") is waiting for input: type the next answer.
        if answers and shown.endswith(b": ") and len(shown) > answeredAt:
            answeredAt = len(shown)
            os.write(master, answers.pop(0))
    proc.wait(timeout=30)
    return shown


@pytest.mark.parametrize("argv,answers,stored", [
    (["set", "DBs.kkobot_prod.PASSWORD", "-"], [b"typed-secret-1\n", b"typed-secret-1\n"],
     ("DBs", "kkobot_prod", "PASSWORD")),
    (["set", "admin.token"], [b"typed-secret-2-abcdefgh\n", b"typed-secret-2-abcdefgh\n"],
     ("admin", "token")),
    (["add-bot", "kkobot", "--secret-stdin"], [b"typed-secret-3\n", b"typed-secret-3\n"],
     ("bots", "kkobot", "secret")),
])
def test_prompt_on_a_terminal_does_not_echo(tmp_path: Path, argv: list[str],
                                            answers: list[bytes], stored: tuple[str, ...]) -> None:
    import pty

    script = REPO / ".venv" / "bin" / "kkobot-config"
    if not script.exists():
        script = Path(sys.executable).with_name("kkobot-config")
    d = tmp_path / "cfg"
    assert configcli.main(["--dir", str(d), "init"]) == 0
    secret = answers[0].strip()
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(script), "--dir", str(d), *argv], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True,
                            env={k: v for k, v in os.environ.items() if k != "KKOBOT_CONFIG"})
    os.close(slave)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        shown = _talk(master, proc, list(answers))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, shown
    assert secret not in cmdline
    assert b"(not shown): " in shown and b"again: " in shown
    value = config.load(d)
    for part in stored:
        value = value[part]
    assert value == secret.decode()
    if argv[0] == "set":
        # Typed, not echoed, not printed back.
        assert secret not in shown
        assert b"warning" not in shown


def test_prompt_entries_must_match(tmp_path: Path) -> None:
    import pty

    script = REPO / ".venv" / "bin" / "kkobot-config"
    if not script.exists():
        script = Path(sys.executable).with_name("kkobot-config")
    d = tmp_path / "cfg"
    assert configcli.main(["--dir", str(d), "init"]) == 0
    before = (d / config.ENC_FILE).read_bytes()
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(script), "--dir", str(d), "set", "admin.token", "-"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        shown = _talk(master, proc, [b"first-entry-0123456789\n", b"second-entry-0123456789\n"])
    finally:
        os.close(master)
    assert proc.returncode == 1
    assert b"the two value of admin.token entries differ; nothing changed" in shown
    assert (d / config.ENC_FILE).read_bytes() == before
