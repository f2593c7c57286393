"""Fast checks that the benchmark tooling signs, speaks and counts exactly as intended."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import selectors
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.support import paths

REPO = Path(paths.REPO)
sys.path.insert(0, str(REPO))

from benchmarks import loadgen, run, signing, targets  # noqa: E402

# Copied verbatim from PROTOCOL.md, "Lines exactly as a 3.2.0 bridge sends them".
DOC_HELLO = (
    '{"clientType":"MessengerBotR","botName":"kkobot","version":"3.2.0",'
    '"deviceID":"5f3c2a1b9d8e7f60","deviceIP":"127.0.0.1",'
    '"deviceInfo":"samsung SM-S911N (Android 14, API 34)"}'
)
DOC_ANALYZE = (
    '{"event":"analyze","data":{"room":"테스트방","text":"# echo 안녕하세요","sender":"홍길동",'
    '"isGroupChat":true,"channelId":"18398338829933568","logId":"3371984461207437313",'
    '"userHash":"a1b2c3","isMention":false,"timestamp":"2026-11-25 19:25:10","botName":"kkobot",'
    '"clientType":"MessengerBotR","auth":{"clientType":"MessengerBotR","botName":"kkobot",'
    '"deviceUUID":"5f3c2a1b9d8e7f60","deviceID":"5f3c2a1b9d8e7f60",'
    '"macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1","timestamp":1795602310517,'
    '"version":"3.2.0","signature":"…64 hex…"}}}'
)
DOC_PING = (
    '{"event":"ping","data":{"bot_name":"kkobot","server_timestamp":1795602311302,'
    '"monitoring":{"total_memory":6028,"memory_usage":8,"memory_percent":0.1,'
    '"message_queue_size":0,"active_rooms":1},"auth":{"clientType":"MessengerBotR",'
    '"botName":"kkobot","deviceUUID":"5f3c2a1b9d8e7f60","deviceID":"5f3c2a1b9d8e7f60",'
    '"macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1","timestamp":1795602311310,'
    '"version":"3.2.0","signature":"…64 hex…"}}}'
)
SECRET, SALT = "secret-비밀", "salt-솔트"
DEVICE = "5f3c2a1b9d8e7f60"


def _independent_signature(fields: list[str], secret: str, salt: str) -> str:
    msg = "|".join(fields + [salt]).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def _with_signature(doc_line: str, signature: str) -> str:
    return doc_line.replace("…64 hex…", signature)


def test_sign_matches_known_vector() -> None:
    fields = ["MessengerBotR", "kkobot", DEVICE, "02:00:00:00:00:00", "127.0.0.1", "1795602310517"]
    expected = _independent_signature(fields, SECRET, SALT)
    assert expected == "28fb68909b322bf6c773622f6d95c4418f5f412d947ae34b7d05c599387f8eba"
    assert signing.sign(SECRET, SALT, *fields[:5], 1795602310517) == expected


def test_make_auth_shape_and_signature() -> None:
    auth = signing.make_auth("kkobot", DEVICE, SECRET, SALT, 1795602310517)
    doc_auth = json.loads(DOC_ANALYZE)["data"]["auth"]
    assert list(auth) == list(doc_auth)
    assert {k: v for k, v in auth.items() if k != "signature"} == {
        k: v for k, v in doc_auth.items() if k != "signature"
    }
    assert len(auth["signature"]) == 64
    assert auth["signature"] == _independent_signature(
        ["MessengerBotR", "kkobot", DEVICE, "02:00:00:00:00:00", "127.0.0.1", "1795602310517"],
        SECRET, SALT,
    )


def test_hello_is_the_3_2_0_line() -> None:
    assert signing.hello("kkobot", DEVICE) == DOC_HELLO + "\n"


def test_analyze_is_the_3_2_0_line() -> None:
    line = signing.analyze(
        "kkobot", DEVICE, SECRET, SALT, "테스트방", "# echo 안녕하세요", 1795602310517,
        log_id="3371984461207437313", timestamp="2026-11-25 19:25:10",
    )
    assert line.endswith("\n") and "\n" not in line[:-1]
    sig = json.loads(line)["data"]["auth"]["signature"]
    assert line == _with_signature(DOC_ANALYZE, sig) + "\n"
    parsed, doc = json.loads(line), json.loads(DOC_ANALYZE)
    assert list(parsed["data"]) == list(doc["data"])
    assert list(parsed["data"]["auth"]) == list(doc["data"]["auth"])


def test_analyze_default_timestamp_is_local_phone_time() -> None:
    line = signing.analyze("b", DEVICE, SECRET, SALT, "r", "t", 1795602310517)
    stamp = json.loads(line)["data"]["timestamp"]
    assert len(stamp) == 19 and stamp[4] == "-" and stamp[10] == " " and stamp[13] == ":"


def test_ping_is_the_3_2_0_line() -> None:
    line = signing.ping("kkobot", DEVICE, SECRET, SALT, 1795602311302, 1795602311310)
    sig = json.loads(line)["data"]["auth"]["signature"]
    assert line == _with_signature(DOC_PING, sig) + "\n"


def test_doc_lines_still_match_protocol_md() -> None:
    for candidate in (REPO.parent / "shared" / "PROTOCOL.md", Path("/work/shared/PROTOCOL.md")):
        if candidate.exists():
            doc = candidate.read_text(encoding="utf-8")
            break
    else:
        pytest.skip("PROTOCOL.md is not beside this checkout")
    for line in (DOC_HELLO, DOC_ANALYZE, DOC_PING):
        assert line in doc


def test_loadgen_refuses_non_loopback() -> None:
    for host in ("10.0.0.1", "192.168.1.10", "8.8.8.8", "example.com"):
        with pytest.raises(loadgen.LoopbackOnly):
            loadgen.check_loopback(host)
    for host in ("127.0.0.1", "127.3.2.1", "::1", "localhost"):
        loadgen.check_loopback(host)


def test_source_addresses_stay_on_loopback() -> None:
    assert loadgen.source_address("127.0.0.1", 0, 40) == "127.0.0.1"
    assert loadgen.source_address("127.0.0.1", 40, 40) == "127.0.0.2"
    assert loadgen.source_address("127.0.0.1", 254 * 40, 40) == "127.0.1.1"
    assert loadgen.source_address("localhost", 500, 40) is None
    assert loadgen.source_address("127.0.0.1", 500, 0) is None


@pytest.fixture
def bare_server():
    pytest.importorskip("twisted")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "bare_echo.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(30), "bare_echo.py printed nothing in 30 s"
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on "), line
        yield int(line.split()[-1])
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_loadgen_against_bare_echo(bare_server: int) -> None:
    report = loadgen.run(
        loadgen.LoadConfig(port=bare_server, conns=2, messages=20, window=4, timeout=30)
    )
    assert report["errors"] == 0, report
    assert report["replies"] == 40
    assert report["messages"] == 40
    assert report["latency_ms"]["max"] >= report["latency_ms"]["p50"] > 0
    assert report["db_text_like"] == f"# echo {report['run_id']}:%"


def test_bare_echo_answers_like_kkobot(bare_server: int) -> None:
    async def talk() -> list[dict]:
        reader, writer = await loadgen.open_bridge("127.0.0.1", bare_server, "kkobot", DEVICE)
        for text in ("# echo 안녕하세요", "# echo", "그냥 잡담"):
            writer.write(signing.analyze("kkobot", DEVICE, SECRET, SALT, "테스트방", text,
                                         loadgen.now_ms()).encode())
        writer.write(signing.ping("kkobot", DEVICE, SECRET, SALT, None, loadgen.now_ms()).encode())
        await writer.drain()
        got = [json.loads(await asyncio.wait_for(reader.readline(), 10)) for _ in range(3)]
        writer.close()
        return got

    echo, usage, pong = asyncio.run(talk())
    assert echo == {"event": "messageResponse", "data": {
        "room": "테스트방", "text": "에코: 안녕하세요", "channel_id": "18398338829933568"}}
    assert usage["data"]["text"] == "사용법: # echo {내용}"
    assert pong["event"] == "ping" and pong["data"]["bot_name"] == "kkobot"


def test_loadgen_counts_missing_and_wrong_replies() -> None:
    """A server that drops every 5th reply and garbles every 7th is caught, within the timeout."""

    async def scenario() -> dict:
        count = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal count
            await reader.readline()
            writer.write(b'{"event":"handshakeComplete","data":{"success":true}}\n')
            while line := await reader.readline():
                count += 1
                data = json.loads(line)["data"]
                reply = {"room": data["room"], "text": "에코: " + data["text"][len("# echo "):],
                         "channel_id": data["channelId"]}
                if count % 5 == 0:
                    continue
                if count % 7 == 0:
                    reply["room"] = "elsewhere"
                writer.write(signing.encode({"event": "messageResponse", "data": reply}).encode())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await loadgen.run_load(
                loadgen.LoadConfig(port=port, conns=1, messages=35, window=35, timeout=1.0)
            )

    report = asyncio.run(scenario())
    detail = report["error_detail"]
    assert detail["missing"] == 7  # 5, 10, ..., 35
    assert detail["wrong"] == 4  # 7, 14, 21, 28 (35 was dropped)
    assert report["replies"] == 24
    assert report["errors"] == 11
    assert detail["timed_out"] is True


def test_loadgen_command_mode_sends_the_commands_in_turn_and_counts_error_replies() -> None:
    """--command: each text in turn, one reply each in order; kkobot's failure texts are errors."""
    seen: list[str] = []

    async def scenario() -> dict:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.write(b'{"event":"handshakeComplete","data":{"success":true}}\n')
            while line := await reader.readline():
                data = json.loads(line)["data"]
                seen.append(data["text"])
                text = "명령을 처리하는 중 오류가 발생했습니다. 잠시 후 다시 시도해 주세요." \
                    if len(seen) == 3 else f"답 {len(seen)}"
                reply = {"room": data["room"], "text": text, "channel_id": data["channelId"]}
                writer.write(signing.encode({"event": "messageResponse", "data": reply}).encode())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await loadgen.run_load(loadgen.LoadConfig(
                port=port, conns=1, messages=5, window=2, timeout=5.0,
                commands=("# 출석", "# 출석순위")))

    report = asyncio.run(scenario())
    assert seen == ["# 출석", "# 출석순위", "# 출석", "# 출석순위", "# 출석"]
    assert report["error_detail"]["wrong"] == 1 and report["error_detail"]["missing"] == 0
    assert report["replies"] == 4 and report["errors"] == 1


def test_driver_runs_a_scenario_against_bare() -> None:
    pytest.importorskip("twisted")
    with targets.bare_target() as target:
        report = run.run_scenario(
            target, run.Scenario(conns=2, window=2, messages=10), loadgen.LoadConfig(timeout=30)
        )
    assert report["errors"] == 0 and report["replies"] == 20
    assert report["server_peak_rss_bytes"] > 0 and report["server_cpu_s"] >= 0
    busy = report["machine_busy_pct"]  # None if the run was shorter than a clock tick
    assert busy is None or 0 <= busy <= 100
    assert target.proc is not None and target.proc.returncode is not None


def test_cpu_budget_puts_the_database_on_top_of_the_bare_run() -> None:
    bare = {"server_cpu_us_per_msg": 21.0, "client_cpu_us_per_msg": 27.0}
    kk = {"scenario": "50c W=1", "server_cpu_us_per_msg": 53.0, "client_cpu_us_per_msg": 31.0,
          "db_cpu_us_per_msg": 16.0}
    line = run.cpu_budget(kk, bare)
    assert kk["cpu_ceiling_vs_bare"] == 0.75  # 48 / (48 + 16)
    assert line is not None and "bare run 48 us" in line and "kkobot run 100 us" in line
    assert "at most 0.75" in line
    # Without the database's figure there is no budget to state.
    assert run.cpu_budget({"scenario": "x", "server_cpu_us_per_msg": 1.0,
                           "client_cpu_us_per_msg": 1.0}, bare) is None


def test_machine_cpu_and_the_database_process() -> None:
    busy, total = targets.machine_cpu()
    assert 0 < busy < total
    pid = targets.local_db_pid()
    if pid is None:
        pytest.skip("no mariadbd/mysqld process on this machine")
    assert Path(f"/proc/{pid}/comm").read_text().strip() in ("mariadbd", "mysqld")
    assert targets.cpu_seconds(pid) > 0


def test_kkobot_target_failure_is_reported_not_raised_raw(tmp_path: Path) -> None:
    target = targets.kkobot_target(
        f"{sys.executable} -c 'import sys; sys.exit(3)' {{port}}", cwd=str(tmp_path),
        startup_timeout=10,
    )
    try:
        with pytest.raises(targets.TargetError, match="exited with status 3"):
            target.start()
    finally:
        # A failed start keeps its log for the post-mortem; the test needs no post-mortem.
        shutil.rmtree(target.log_dir, ignore_errors=True)


# Copied verbatim from PROTOCOL.md, "v3.3.x: JSON header + raw content" (the pong's auth
# written out like the message's).
DOC_HELLO_33 = (
    '{"event":"handshake","data":{"clientType":"MessengerBotR","botName":"kkobot",'
    '"version":"3.3.3","deviceID":"5f3c2a1b9d8e7f60","deviceIP":"127.0.0.1",'
    '"deviceInfo":"samsung SM-S911N (Android 14, API 34)","timestamp":"2026-12-02T19:43:32.858Z",'
    '"timezone":"Asia/Seoul","message_positions":[0,0]}}'
)
DOC_MESSAGE_33 = (
    '{"event":"message","data":{"room":"테스트방","channel_id":"18398338829933568",'
    '"message_type":"text","content_encoding":"base64","message_positions":[0,32],'
    '"timestamp":"2026-12-02T19:43:33.221Z","timezone":"Asia/Seoul","sender":"홍길동",'
    '"is_group_chat":true,"log_id":"3371984461207437313","user_hash":"a1b2c3",'
    '"is_mention":false,"bot_name":"kkobot","client_type":"MessengerBotR",'
    '"auth":{"clientType":"MessengerBotR","botName":"kkobot","deviceUUID":"5f3c2a1b9d8e7f60",'
    '"deviceID":"5f3c2a1b9d8e7f60","macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1",'
    '"timestamp":1796240613166,"version":"3.3.3","signature":"…64 hex…"}}}'
    'IyBlY2hvIOyViOuFle2VmOyEuOyalA=='
)
DOC_PONG_33_START = (
    '{"event":"pong","data":{"bot_name":"kkobot","server_timestamp":1796240613869,'
    '"monitoring":{"total_memory":6028,"memory_usage":8,"memory_percent":0.1,'
    '"message_queue_size":0,"active_rooms":1},"auth":'
)
DOC_PONG_33_END = '"timestamp":"2026-12-02T19:43:33.878Z","timezone":"Asia/Seoul","message_positions":[0,0]}}'


def test_hello33_is_the_3_3_3_line() -> None:
    assert signing.hello33("kkobot", DEVICE, 1796240612858) == DOC_HELLO_33 + "\n"


def test_message33_is_the_3_3_3_line() -> None:
    line = signing.message33(
        "kkobot", DEVICE, SECRET, SALT, "테스트방", "# echo 안녕하세요", 1796240613221,
        log_id="3371984461207437313", auth_ms=1796240613166,
    )
    sig = json.loads(line[: line.rindex("}") + 1])["data"]["auth"]["signature"]
    assert line == _with_signature(DOC_MESSAGE_33, sig) + "\n"
    assert sig == _independent_signature(
        ["MessengerBotR", "kkobot", DEVICE, "02:00:00:00:00:00", "127.0.0.1", "1796240613166"],
        SECRET, SALT)


def test_pong33_is_the_3_3_3_line() -> None:
    line = signing.pong33("kkobot", DEVICE, SECRET, SALT, 1796240613869, 1796240613878)
    assert line.startswith(DOC_PONG_33_START) and line.endswith("," + DOC_PONG_33_END + "\n")
    assert json.loads(line)["data"]["auth"]["version"] == "3.3.3"


def test_doc_33_lines_still_match_protocol_md() -> None:
    for candidate in (REPO.parent / "shared" / "PROTOCOL.md", Path("/work/shared/PROTOCOL.md")):
        if candidate.exists():
            doc = candidate.read_text(encoding="utf-8")
            break
    else:
        pytest.skip("PROTOCOL.md is not beside this checkout")
    for line in (DOC_HELLO_33, DOC_MESSAGE_33, DOC_PONG_33_START, DOC_PONG_33_END):
        assert line in doc


def test_loadgen_speaks_33() -> None:
    """In 3.3 form every line is read as a 3.3.3 bridge reads it: header up to the last '}', base64."""

    async def scenario() -> dict:
        seen: list[str] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            hello = json.loads(await reader.readline())
            seen.append(hello["event"])
            writer.write(signing.header_line("handshakeComplete", {"success": True, "message_positions": [0, 0]}).encode())
            writer.write(signing.header_line("ping", {"server_timestamp": 5, "message_positions": [0, 0]}).encode())
            while line := await reader.readline():
                text = line.decode().rstrip("\n")
                end = text.rindex("}") + 1
                header = json.loads(text[:end])
                seen.append(header["event"])
                if header["event"] != "message":
                    continue
                data = header["data"]
                said = base64.b64decode(text[end:]).decode()
                raw = base64.b64encode(("에코: " + said[len("# echo "):]).encode()).decode()
                writer.write(signing.header_line("messageResponse", {
                    "room": data["room"], "channel_id": data["channel_id"], "message_type": "text",
                    "content_encoding": "base64", "message_positions": [0, len(raw)]}, raw).encode())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            report = await loadgen.run_load(loadgen.LoadConfig(
                port=port, conns=1, messages=10, window=3, timeout=10, form="3.3"))
        report["seen"] = seen
        return report

    report = asyncio.run(scenario())
    assert report["errors"] == 0, report
    assert report["replies"] == 10 and report["form"] == "3.3"
    assert report["seen"][0] == "handshake" and report["seen"].count("message") == 10
    assert "pong" in report["seen"]


def _report(name: str, msgs: int, rate: float, p99: float, errors: int, rowsAfter: int) -> dict:
    return {"scenario": name, "base_scenario": name, "msgs": msgs, "throughput_msg_s": rate,
            "p99_ms": p99, "errors": errors, "rows_after": rowsAfter, "auth": "off"}


def test_roundsReportTheMedianOfEachFigure():
    from benchmarks.rounds import median_reports

    rounds = [
        [_report("50c W=1", 100, 9000.0, 12.0, 0, 200), _report("1c W=1", 10, 3000.0, 0.5, 0, 220)],
        [_report("50c W=1", 100, 13000.0, 9.0, 2, 420), _report("1c W=1", 10, 3100.0, 0.9, 0, 440)],
        [_report("50c W=1", 100, 12000.0, 30.0, 0, 640), _report("1c W=1", 10, 2000.0, 0.4, 0, 660)],
    ]
    merged = {r["scenario"]: r for r in median_reports(rounds)}
    fifty = merged["50c W=1"]
    # One slow round (9,000 msg/s) and one p99 outlier (30 ms) do not decide the figures.
    assert fifty["throughput_msg_s"] == 12000.0 and fifty["p99_ms"] == 12.0
    assert fifty["msgs"] == 100 and type(fifty["msgs"]) is int
    # Errors of any round show; the row counts are the last round's own.
    assert fifty["errors"] == 2 and fifty["rows_after"] == 640
    assert merged["1c W=1"]["throughput_msg_s"] == 3000.0 and merged["1c W=1"]["rounds"] == 3


def test_main_thread_cpu_leaves_out_the_other_threads() -> None:
    # A helper thread burns CPU while the main thread waits: the process's figure
    # grows by it, the main thread's does not.
    pid = os.getpid()
    tick = 1 / os.sysconf("SC_CLK_TCK")
    mainBefore, wholeBefore = targets.main_thread_cpu_seconds(pid), targets.cpu_seconds(pid)

    def burn() -> None:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass

    helper = threading.Thread(target=burn)
    helper.start()
    helper.join()
    mainSpent = targets.main_thread_cpu_seconds(pid) - mainBefore
    wholeSpent = targets.cpu_seconds(pid) - wholeBefore
    assert wholeSpent >= 0.25
    assert mainSpent <= 0.05 + 2 * tick
