"""Plugin config (declared defaults, secrets), lifecycle hooks, and triggers: keywords, mentions, flood limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from kkobot import config
from kkobot.command import Cooldown, command
from kkobot.commands.plugin import PluginConfig
from kkobot.testing import CommandTester
from tests.support import captureLogs, forgetDropins, logText, tempDir

WEATHER = '''
from kkobot.command import Plugin, Secret, command

plugin = Plugin("weather", config={"api_key": Secret(), "units": "metric", "days": 3})
events = []


def activate(ctx):
    events.append(("activate", ctx.name, ctx.config["units"]))


def deactivate():
    events.append(("deactivate",))


@command("날씨설정", "설정을 보여 줍니다.")
def show(context):
    return f"{context.config['units']} {context.config['days']} {context.config['api_key']}"


@command("설정로그", "설정의 repr.")
def showRepr(context):
    return repr(context.config)
'''


def writePlugin(folder: str, name: str, source: str) -> str:
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    return path


class PluginConfigTests(SynchronousTestCase):
    def setUp(self):
        self.folder = tempDir(self)
        forgetDropins(self, self.folder)
        writePlugin(self.folder, "kkobot_weather.py", WEATHER)

    def tester(self, **kw):
        bot = CommandTester(dropinDir=self.folder, admins=["boss"], **kw)
        self.addCleanup(bot.stop)
        return bot

    def test_declared_defaults_configured_values_and_masked_repr(self):
        bot = self.tester()
        bot.assertReply("# 날씨설정", "metric 3 None")
        bot = self.tester(config={"plugins": {"weather": {"api_key": "k-123", "units": "imperial",
                                                         "days": "five", "extra": True}}})
        bot.assertReply("# 날씨설정", "imperial 3 k-123")
        shown = bot.send("# 설정로그").text
        self.assertNotIn("k-123", shown)
        self.assertIn("'api_key': '********'", shown)
        self.assertIn("'extra': True", shown)

    def test_a_config_of_the_wrong_type_is_logged_without_the_secret(self):
        events = captureLogs(self)
        bot = self.tester(config={"plugins": {"weather": {"api_key": 12345, "days": "x"}}})
        bot.assertReply("# 날씨설정", "metric 3 None")
        text = logText(events)
        self.assertIn("plugins.weather.days must be a number", text)
        self.assertIn("plugins.weather.api_key must be a string", text)
        self.assertNotIn("12345", text)

    def test_plugin_config_mapping(self):
        c = PluginConfig("x", {"token": "t", "n": 1}, frozenset())
        self.assertEqual((dict(c), len(c), c.get("n")), ({"token": "t", "n": 1}, 2, 1))
        self.assertEqual(str(c), "<PluginConfig plugins.x {'token': '********', 'n': 1}>")
        with self.assertRaises(TypeError):
            c["n"] = 2  # read-only

    def test_kkobot_config_show_lists_declared_defaults_with_secrets_masked(self):
        root = tempDir(self)
        cfg = os.path.join(root, ".cfg")
        config.init(cfg, {"plugins": {"dropin_dir": self.folder, "weather": {"api_key": "s3cret-key"}}})

        def run(*argv):
            return subprocess.run([sys.executable, "-c", "from kkobot.admin.configcli import main; "
                                   "raise SystemExit(main())", "--dir", cfg, *argv],
                                  capture_output=True, text=True, cwd=root, timeout=60)

        shown = run("show", "plugins.weather")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertEqual(json.loads(shown.stdout), {"api_key": "********", "units": "metric", "days": 3})
        self.assertNotIn("s3cret", shown.stdout + shown.stderr)
        setting = run("set", "plugins.weather.api_key", "other-secret")
        self.assertEqual(setting.stdout.strip(), 'plugins.weather.api_key = "********"')
        self.assertEqual(config.load(cfg)["plugins"]["weather"]["api_key"], "other-secret")


class LifecycleTests(SynchronousTestCase):
    def setUp(self):
        self.folder = tempDir(self)
        forgetDropins(self, self.folder)
        self.path = writePlugin(self.folder, "kkobot_weather.py", WEATHER)

    def events(self):
        import kkobot.plugins.kkobot_weather as module

        return module.events

    def test_activate_on_load_deactivate_then_activate_on_change_and_deactivate_on_stop(self):
        bot = CommandTester(dropinDir=self.folder, admins=["boss"])
        first = self.events()
        self.assertEqual(first, [("activate", "weather", "metric")])
        writePlugin(self.folder, "kkobot_weather.py", WEATHER + "\n# changed\n")
        bot.send("# reload", user="boss")
        self.assertEqual(first, [("activate", "weather", "metric"), ("deactivate",)])
        second = self.events()
        self.assertIsNot(second, first)
        self.assertEqual(second, [("activate", "weather", "metric")])
        os.remove(self.path)
        bot.send("# reload", user="boss")
        self.assertEqual(second, [("activate", "weather", "metric"), ("deactivate",)])
        bot.stop()

    def test_failing_and_slow_hooks_are_logged_not_fatal(self):
        writePlugin(self.folder, "kkobot_badhooks.py", '''
from twisted.internet import defer
from kkobot.command import command

def activate(ctx):
    raise RuntimeError("activate broke")

def deactivate():
    return defer.Deferred()  # never fires

@command("살아있음")
def alive(context):
    return "네"
''')
        events = captureLogs(self)
        bot = CommandTester(dropinDir=self.folder)
        self.assertIn("[PLUGIN] badhooks: activate() failed (the server carries on)", logText(events))
        self.assertIn("RuntimeError: activate broke", logText(events))
        bot.assertReply("# 살아있음", "네")
        stopping = bot.parts.service.stopService()
        bot.clock.advance(10)
        self.successResultOf(stopping)
        self.assertIn("[PLUGIN] badhooks: deactivate() failed", logText(events))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError, defer.TimeoutError)), 2)

    def test_an_async_activate_gets_the_plugin_store(self):
        import types

        module = types.ModuleType("kkobot_asyncactivate")
        exec('''
from kkobot.command import command

async def activate(ctx):
    await ctx.store.set("booted", ctx.clock.seconds(), scope="global")

@command("부팅")
async def booted(context):
    return str(await context.store.get("booted", scope="global"))
''', module.__dict__)
        bot = CommandTester(module)
        self.addCleanup(bot.stop)
        bot.assertReply("# 부팅", str(bot.clock.seconds()))


@command("날씨", "날씨 키워드에 답합니다.", keywords=("날씨 어때", "weather"), cooldown=Cooldown(room=30))
def weatherWord(context):
    return f"맑음 ({context.match.group(0) if context.match else '요청'})"


@command("부름", "봇을 부르면 답합니다.", mention=True)
def called(context):
    return f"네, {context.sender}님! ({context.rest})"


@command("ㅋ", "웃음", pattern=r"ㅋ{3,}")
def laugh(context):
    return "ㅎㅎ"


class TriggerTests(SynchronousTestCase):
    def setUp(self):
        self.bot = CommandTester(weatherWord, called, laugh, admins=["boss"],
                                 config={"rooms": {"ch:조용한방": {"disabled_commands": ["부름"]}}})
        self.addCleanup(self.bot.stop)

    def test_keywords_mentions_and_names(self):
        self.bot.assertReply("오늘 날씨 어때?", "맑음 (날씨 어때)")
        self.bot.assertReply("# 날씨", "맑음 (요청)", room="다른방")  # still a command by name
        self.bot.assertReply("@kkobot 안녕", "네, 홍길동님! (@kkobot 안녕)", isMention=True)
        self.bot.assertNoReply("@kkobot 안녕")  # not a mention: no answer
        self.bot.assertNoReply("그냥 이야기")

    def test_trigger_answers_follow_room_rules_and_cooldowns_silently(self):
        self.bot.assertNoReply("@kkobot 안녕", isMention=True, room="조용한방")
        self.bot.assertReply("WEATHER?", "맑음 (WEATHER)")
        self.bot.assertNoReply("날씨 어때", user="u2")  # the room's cooldown, without a notice
        self.bot.advance(30)
        self.bot.assertReply("날씨 어때", "맑음 (날씨 어때)", user="u2")

    def test_a_room_gets_only_so_many_trigger_answers_a_minute(self):
        for i in range(5):
            self.bot.assertReply("ㅋㅋㅋ", "ㅎㅎ", user=f"u{i}")
        self.bot.assertNoReply("ㅋㅋㅋㅋ")
        self.bot.assertNoReply("@kkobot 뭐해", isMention=True)
        self.bot.assertReply("ㅋㅋㅋ", "ㅎㅎ", room="다른방")  # other rooms are not affected
        self.bot.assertReply("# echo 명령은 그대로", "에코: 명령은 그대로")  # commands are not limited
        self.bot.advance(60)
        self.bot.assertReply("ㅋㅋㅋ", "ㅎㅎ")


class OperatorTriggerTableTests(SynchronousTestCase):
    def test_the_matcher_uses_the_tables_rows_with_room_scoping(self):
        from kkobot.commands.triggers import TriggerCommand, TriggerRow

        bot = CommandTester()
        self.addCleanup(bot.stop)

        class Table:
            commands = [TriggerCommand(TriggerRow(1, "keyword", "영업시간", "10시~22시입니다, {sender}님", None, 30)),
                        TriggerCommand(TriggerRow(2, "exact", "공지", "공지방 공지", "ch:공지방", 0)),
                        TriggerCommand(TriggerRow(3, "regex", r"^\d{3}-\d{4}$", "전화번호 같네요", None, 0))]

        bot.router.triggers.table = Table()
        bot.assertReply("영업시간 알려줘", "10시~22시입니다, 홍길동님")
        bot.assertNoReply("영업시간?", user="u2")  # 30 s per room
        bot.assertNoReply("공지")
        bot.assertReply("  공지 ", "공지방 공지", room="공지방")
        bot.assertNoReply("공지 봐주세요", room="공지방")  # exact: the whole message only
        bot.assertReply("123-4567", "전화번호 같네요")
        rows = [(r.message, r.directive) for r in bot.chatlog.rows[-2:]]
        self.assertEqual(rows, [("123-4567", "# trigger-3"), ("전화번호 같네요", "# trigger-3")])


class JobStoreTests(SynchronousTestCase):
    def test_a_scheduled_job_reads_what_its_plugins_commands_stored_for_its_room(self):
        import types

        module = types.ModuleType("kkobot_jobstore")
        exec('''
from kkobot.command import command, every

@command("적기")
async def note(context):
    await context.store.set("note", context.rest)

@every(60, bot="kkobot", room="테스트방", channelId="ch:테스트방")
async def announce(job):
    return f"메모: {await job.store.get('note', '없음')}"
''', module.__dict__)
        bot = CommandTester(module)
        self.addCleanup(bot.stop)
        bot.advance(60)
        bot.send("# 적기 우유 사기")
        bot.advance(60)
        self.assertEqual([m.text for m in bot.outbox], ["메모: 없음", "메모: 우유 사기"])
