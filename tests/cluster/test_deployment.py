"""Three twistd instances, one MariaDB, one Redis: routing, shared state, kill -9 and a Redis outage."""

from __future__ import annotations

import threading
import time
import uuid

from twisted.trial.unittest import SynchronousTestCase

from tests.cluster.deployment import COOLDOWN_PLUGIN, SCHEDULE_PLUGIN, Deployment, Phone
from tests.support import pollUntil


class DeploymentTests(SynchronousTestCase):
    def deploy(self, plugin: str | None = None) -> Deployment:
        deployment = Deployment(self, plugin)
        deployment.startAll()
        return deployment

    def phoneOn(self, deployment: Deployment, name: str, device: str) -> Phone:
        phone = Phone(device)
        self.addCleanup(phone.close)
        phone.connect(deployment.port(name))
        pollUntil(lambda: device in deployment.holders("A").get(name, []),
                  f"{device} on {name} in the deployment view")
        return phone

    def test_messageSentToAReachesThePhoneOnC(self) -> None:
        d = self.deploy()
        phone = self.phoneOn(d, "C", "phone-c")
        self.assertEqual(d.holders("B"), {"A": [], "B": [], "C": ["phone-c"]})
        code, answer = d.api("A", "POST", "/api/messages", {"bot": "kkobot", "room": "공지방", "text": "점검 안내"})
        self.assertEqual((code, answer["outcome"], answer["instance"]), (202, "routed", "C"))
        pollUntil(lambda: phone.replies("공지방") == ["점검 안내"], "the message on the phone")
        code, state = d.api("B", "GET", f"/api/messages/{answer['id']}")
        self.assertEqual((code, state["state"], state["delivered_by"]), (200, "delivered", "C"))
        # Written once, by the instance holding the phone.
        pollUntil(lambda: d.rows("message = %s", "점검 안내") == [("점검 안내", 1)], "its row")
        # live_instances is B's view at its last heartbeat: wait for it, a slow beat
        # on a loaded machine may leave an instance out for a moment.
        ready = pollUntil(lambda: (lambda r: r if sorted(r[1]["live_instances"]) == ["A", "B", "C"] else None)(
            d.api("B", "GET", "/readyz")), "B's view of the live instances")
        self.assertEqual((ready[0], ready[1]["cluster"]), (200, "ok"))
        page = d.page("A", "/")
        self.assertIn("인스턴스", page)
        self.assertIn("kkobot (phone-c)", page)

    def test_messageForAnAbsentBotWaitsForItsConnection(self) -> None:
        d = self.deploy()
        code, answer = d.api("B", "POST", "/api/messages", {"bot": "kkobot", "room": "공지방", "text": "늦은 공지"})
        self.assertEqual((code, answer["state"], answer["outcome"]), (202, "queued", "waiting"))
        phone = self.phoneOn(d, "C", "phone-late")
        pollUntil(lambda: phone.replies("공지방") == ["늦은 공지"], "the queued message after the connection")
        self.assertEqual(d.api("A", "GET", f"/api/messages/{answer['id']}")[1]["state"], "delivered")

    def test_cooldownSetThroughAHoldsOnB(self) -> None:
        d = self.deploy(COOLDOWN_PLUGIN)
        first, second = Phone("phone-a"), Phone("phone-b")
        for phone, name in ((first, "A"), (second, "B")):
            self.addCleanup(phone.close)
            phone.connect(d.port(name))
        first.say("# 쿨")
        pollUntil(lambda: first.replies() == ["쿨 실행"], "the command on A")
        second.say("# 쿨")
        reply = second.waitFor(lambda e: e.get("event") == "messageResponse", "B's answer")
        self.assertTrue(reply["data"]["text"].startswith("잠시 후 다시 사용해 주세요."), reply)
        self.assertEqual(second.replies(), [reply["data"]["text"]])

    def test_signedLineReplayedToAnotherInstanceIsRefused(self) -> None:
        d = self.deploy()
        phone = self.phoneOn(d, "A", "phone-r")
        event = phone.say("# echo 원본")
        pollUntil(lambda: phone.replies() == ["에코: 원본"], "the answer on A")
        thief = Phone("phone-r")
        self.addCleanup(thief.close)
        thief.connect(d.port("B"))
        thief.write(event)
        refusal = thief.waitFor(lambda e: e.get("event") == "error", "B's refusal")
        self.assertEqual(refusal["data"]["code"], "AUTH_FAILED")
        self.assertIn("replayed", refusal["data"]["message"])
        self.assertEqual(d.rows("message = %s", "# echo 원본"), [("# echo 원본", 0)])

    def test_scheduleFiresOncePerSlot(self) -> None:
        d = self.deploy(SCHEDULE_PLUGIN)
        phone = self.phoneOn(d, "B", "phone-s")
        pollUntil(lambda: len(phone.replies("알림방")) >= 4, "four ticks", timeout=60)
        ticks = phone.replies("알림방")
        self.assertEqual(len(ticks), len(set(ticks)), ticks)
        slots = sorted(int(t.split()[1]) for t in ticks)
        self.assertEqual(slots, list(range(slots[0], slots[0] + len(slots))))

    def test_killDashNineOfThePhonesInstance(self) -> None:
        d = self.deploy()
        ports = [d.port(n) for n in "ABC"]
        phone = Phone("phone-k")
        self.addCleanup(phone.close)
        self.assertEqual(phone.connectAny(ports), d.port("A"))
        run = uuid.uuid4().hex[:8]
        sending = threading.Event()
        stop = threading.Event()

        def load() -> None:
            # The phone talks all the time; what it says between connections is lost
            # to the test (a real bridge would queue it), never answered.
            i = 0
            while not stop.is_set():
                if sending.is_set():
                    try:
                        phone.say(f"# echo {run}:{i}")
                    except (OSError, AssertionError):
                        pass
                    i += 1
                time.sleep(0.005)

        sender = threading.Thread(target=load, daemon=True)
        self.addCleanup(stop.set)
        sending.set()
        sender.start()
        pollUntil(lambda: len(phone.replies()) >= 50, "answers before the kill")
        d.kill9("A")
        sending.clear()
        # Sent while the phone has no connection: it must arrive after the reconnect.
        code, gap = d.api("C", "POST", "/api/messages", {"bot": "kkobot", "room": "공지방", "text": "틈새 공지"})
        self.assertEqual(code, 202)
        phone.close()
        started = time.monotonic()
        self.assertEqual(phone.connectAny(ports), d.port("B"))
        reconnect = time.monotonic() - started
        sending.set()
        pollUntil(lambda: "틈새 공지" in phone.replies("공지방"), "the gap's message after the reconnect")
        answeredAtReconnect = len(phone.replies())
        pollUntil(lambda: len(phone.replies()) >= answeredAtReconnect + 50, "answers from B")
        stop.set()
        sender.join(10)
        self.assertLess(reconnect, 10)
        answered = {t for t in phone.replies() if t.startswith(f"에코: {run}:")}
        # Every answered message and its answer stored exactly once (A's journal is
        # written when A starts again).
        d.start("A")

        def stored() -> bool:
            rows = d.rows("message LIKE %s", f"%{run}:%")
            return {m for m, _ in rows if m.startswith("에코")} >= answered

        pollUntil(stored, "every answered message stored")
        rows = d.rows("message LIKE %s", f"%{run}:%")
        self.assertEqual(len(rows), len(set(rows)), "a row stored twice")
        asked = {m for m, _ in rows if m.startswith("# echo")}
        self.assertLessEqual({"# echo " + t.split(" ", 1)[1] for t in answered}, asked)
        self.assertEqual(d.api("B", "GET", f"/api/messages/{gap['id']}")[1]["state"], "delivered")
        self.assertEqual(phone.replies("공지방"), ["틈새 공지"])

    def test_redisStoppedForTenSecondsUnderLoad(self) -> None:
        d = self.deploy()
        phones = {}
        for name in "ABC":
            phones[name] = self.phoneOn(d, name, f"phone-{name}")
        run = uuid.uuid4().hex[:8]
        counter = iter(range(100000))
        expected: set[str] = set()

        def burst() -> None:
            for name, phone in phones.items():
                i = next(counter)
                phone.say(f"# echo {run}:{i}")
                expected.add(f"에코: {run}:{i}")

        burst()
        d.redis.stop()
        down = time.monotonic()
        pollUntil(lambda: d.api("A", "GET", "/readyz")[1].get("cluster") == "local-only", "local-only")
        while time.monotonic() - down < 10:
            burst()
            time.sleep(0.02)
        self.assertGreater(len(expected), 300)  # about 150 messages a second for 10 s
        answered = lambda: {t for p in phones.values() for t in p.replies()}  # noqa: E731
        pollUntil(lambda: expected <= answered(), "every message answered during the outage")
        d.redis.start()
        for name in "ABC":
            pollUntil(lambda: d.api(name, "GET", "/readyz")[1].get("cluster") == "ok", f"{name} rejoined")
        pollUntil(lambda: d.holders("B") == {"A": ["phone-A"], "B": ["phone-B"], "C": ["phone-C"]},
                  "every phone in the deployment view again")
        burst()
        pollUntil(lambda: expected <= answered(), "answers after the rejoin")
        code, answer = d.api("A", "POST", "/api/messages", {"bot": "kkobot", "room": "공지방", "text": "복구 공지"})
        self.assertEqual(code, 202)
        pollUntil(lambda: any("복구 공지" in p.replies("공지방") for p in phones.values()), "routing again")
        pollUntil(lambda: len(d.rows("message LIKE %s", f"에코: {run}:%")) == len(expected), "rows")
        rows = d.rows("message LIKE %s", f"%{run}:%")
        self.assertEqual(len(rows), 2 * len(expected))
        self.assertEqual(len(set(rows)), len(rows))
