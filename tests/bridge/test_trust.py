"""A handshake proves nothing: connections are trusted from their first correctly signed event."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.template import flattenString

from kkobot.bridge import protocol
from kkobot.bridge.badlines import UNVERIFIED_BAD_LINES

from kkobot.bridge import wire, wirejson
from kkobot.bridge.devices import applyDeviceStatus
from kkobot.admin.metrics import Metrics
from kkobot.bridge.outbound import Outbound
from kkobot.admin.rates import MessageRates
from kkobot.testing import MemoryChatLog
from kkobot.admin.web.status import StatusPage
from tests.support.adminhelpers import metricValue
from tests.support.authrig import DEVICE, NOW, MemoryDevices, Rig, errors, signedAuth, signedPing
from tests.support import HELLO_290, HELLO_320, analyze, line
from tests.bridge.test_protocol import ProtocolTestCase

OTHER_DEVICE = "0badc0de0badc0de"


def handshakeAnswers(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e["event"] == "handshakeComplete"]


def stamp(offset: int) -> int:
    return int(NOW * 1000) + offset


class ImpostorTests(SynchronousTestCase):
    """Finding 1: a copied handshake took over the bot's outgoing messages."""

    def setUp(self) -> None:
        devices = MemoryDevices(autoApprove=False, statuses={
            ("kkobot", DEVICE): "approved",
            ("kkobot", "pending-device"): "pending",
            ("kkobot", "denied-device"): "denied",
        })
        self.rig = Rig(devices=devices)
        self.addCleanup(self.rig.close)
        self.outbound = Outbound(self.rig.factory.registry, MemoryChatLog(), self.rig.clock)

    def test_copied_handshake_gets_no_outbound_message(self) -> None:
        phone = self.rig.verified(address="198.51.100.1")
        self.rig.clock.advance(1)
        # Newer than the phone's connection, same bot, same device id, from elsewhere.
        impostor = self.rig.connect(address="203.0.113.66", hello=HELLO_320)
        impostor.received()
        self.assertTrue(self.outbound.send("kkobot", "공지방", "점검 안내", "777"))
        self.assertEqual(phone.replies(phone.received()), ["점검 안내"])
        self.assertEqual(impostor.replies(impostor.received()), [])
        self.assertEqual([c.address for c in self.rig.factory.registry], ["198.51.100.1"])

    def test_every_unsigned_peer_gets_the_same_answer(self) -> None:
        hellos = [
            HELLO_320,  # an approved device
            {**HELLO_320, "deviceID": "pending-device"},
            {**HELLO_320, "deviceID": "denied-device"},
            {**HELLO_320, "deviceID": "never-seen"},
            {**HELLO_320, "botName": "no-such-bot"},
            HELLO_290,
            {"event": "handshake", "data": HELLO_320},
        ]
        answers = []
        for hello in hellos:
            conn = self.rig.connect(hello=hello)
            events = conn.received()
            answers.append((handshakeAnswers(events), [e["event"] for e in events]))
            self.assertFalse(conn.closed)
        self.assertEqual(answers, [answers[0]] * len(hellos))
        (answer,), _ = answers[0]
        self.assertEqual((answer["success"], answer["approved"]), (True, False))
        self.assertNotIn("approv", answer["message"])

    def test_the_real_state_follows_the_first_signed_event(self) -> None:
        conn = self.rig.connect(hello=HELLO_320)
        conn.received()
        self.assertEqual(len(self.rig.factory.registry), 0)
        conn.send(signedPing())
        (answer,) = handshakeAnswers(conn.received())
        self.assertEqual((answer["success"], answer["approved"]), (True, True))
        self.assertEqual(len(self.rig.factory.registry), 1)

        pending = self.rig.connect(hello={**HELLO_320, "deviceID": "pending-device"})
        pending.send(signedPing(deviceUUID="pending-device", deviceID="pending-device"))
        answers = handshakeAnswers(pending.received())
        self.assertEqual((answers[-1]["success"], answers[-1]["approved"]), (True, False))
        self.assertIn("kkobot-admin devices approve kkobot pending-device", answers[-1]["message"])

        denied = self.rig.connect(hello={**HELLO_320, "deviceID": "denied-device"})
        denied.send(analyze("# echo 안녕", auth=signedAuth(deviceUUID="denied-device",
                                                         deviceID="denied-device")))
        answers = handshakeAnswers(denied.received())
        self.assertFalse(answers[-1]["success"])
        self.assertIn("denied", answers[-1]["message"])
        self.assertTrue(denied.closed)

    def test_the_signed_device_must_be_the_handshake_device(self) -> None:
        # A key holder (another phone of the bot) cannot borrow an approved phone's id.
        conn = self.rig.connect(hello=HELLO_320)
        conn.received()
        conn.send(signedPing(deviceUUID=OTHER_DEVICE, deviceID=OTHER_DEVICE))
        (refusal,) = errors(conn.received(), "AUTH_FAILED")
        self.assertIn("not the device this connection introduced", refusal["message"])
        self.assertEqual(len(self.rig.factory.registry), 0)

    def test_290_bridge_is_named_by_its_first_signed_event(self) -> None:
        conn = self.rig.connect(hello=HELLO_290)
        conn.received()
        auth = signedAuth(drop=("clientType", "deviceID"), version="2.9.0c")
        conn.send(analyze("# echo 안녕", auth=auth))
        events = conn.received()
        self.assertEqual(conn.replies(events), ["에코: 안녕"])
        (client,) = self.rig.factory.registry
        self.assertEqual(client.deviceID, DEVICE)

    def test_resent_handshake_does_not_keep_the_deadline_alive(self) -> None:
        impostor = self.rig.connect(hello=HELLO_320)
        for _ in range(2):
            self.rig.clock.advance(10)
            impostor.send(HELLO_320)
        self.assertFalse(impostor.closed)
        self.rig.clock.advance(10)
        events = impostor.received()
        self.assertEqual(len(handshakeAnswers(events)), 3)
        (timeout,) = errors(events, wire.HANDSHAKE_TIMEOUT)
        self.assertIn("no signed event", timeout["message"])
        self.assertTrue(impostor.closed)

    def test_unsigned_lines_do_not_keep_it_alive_either(self) -> None:
        impostor = self.rig.connect(hello=HELLO_320)
        for _ in range(5):
            self.rig.clock.advance(5)
            impostor.send({"event": "ping", "data": {"server_timestamp": 1}})
        self.rig.clock.advance(5)
        self.assertTrue(impostor.closed)

    def test_a_signed_connection_idles_out_only_after_the_idle_timeout(self) -> None:
        phone = self.rig.verified()
        self.rig.clock.advance(60)
        self.assertFalse(phone.closed)

    def test_a_few_bad_lines_close_an_unverified_connection(self) -> None:
        conn = self.rig.connect(hello=HELLO_320)
        for i in range(UNVERIFIED_BAD_LINES):
            conn.send(analyze("# echo", auth=signedAuth(secret="wrong")))
            self.assertFalse(conn.closed, i)
        conn.proto.dataReceived(b"not json\n")
        self.assertTrue(conn.closed)
        # A verified connection is not held to that.
        phone = self.rig.verified(address="198.51.100.1")
        for _ in range(3 * UNVERIFIED_BAD_LINES):
            phone.proto.dataReceived(b"not json\n")
        self.assertFalse(phone.closed)

    def test_status_changes_do_not_reach_unverified_connections(self) -> None:
        impostor = self.rig.connect(hello={**HELLO_320, "deviceID": "pending-device"})
        impostor.received()
        self.rig.devices.statuses[("kkobot", "pending-device")] = "approved"
        applyDeviceStatus(self.rig.factory, "kkobot", "pending-device", "approved")
        self.assertEqual(impostor.received(), [])
        applyDeviceStatus(self.rig.factory, "kkobot", "pending-device", "revoked")
        self.assertFalse(impostor.closed)

    def test_replayed_event_of_the_phone_does_not_verify_the_impostor(self) -> None:
        captured = analyze("# echo 안녕", auth=signedAuth(stamp(1)))
        phone = self.rig.verified(address="198.51.100.1")
        phone.send(captured)
        impostor = self.rig.connect(address="203.0.113.66", hello=HELLO_320)
        impostor.send(captured)
        (refusal,) = errors(impostor.received(), "AUTH_FAILED")
        self.assertIn("replayed", refusal["message"])
        self.assertEqual(len(self.rig.factory.registry), 1)


class NotCountedTests(SynchronousTestCase):
    """Unverified connections are no bot: not on the status page, not in the metrics."""

    def test_status_page_and_metrics_count_verified_connections_only(self) -> None:
        rig = Rig()
        self.addCleanup(rig.close)
        rig.verified(address="198.51.100.1")
        for i in range(40):
            rig.connect(address=f"203.0.113.{i}",
                        hello={**HELLO_320, "deviceInfo": "x" * 255, "version": "9" * 32})
        metrics = Metrics(rig.factory.registry)
        body = metrics.render()
        self.assertEqual(
            metricValue(body, "kkobot_clients_connected", bot="kkobot", version="3.2.0"), 1
        )
        self.assertEqual(body.count(b"kkobot_clients_connected{"), 1)
        page = StatusPage(rig.factory.registry, MessageRates(rig.clock), rig.clock)
        text = self.successResultOf(flattenString(None, page.build())).decode("utf-8")
        self.assertEqual(text.count('class="device"'), 1)
        self.assertNotIn("x" * 255, text)


class BoundedHandshakeTests(SynchronousTestCase):
    """Finding 6: handshake fields of any size were kept, logged and shown."""

    def setUp(self) -> None:
        self.rig = Rig()
        self.addCleanup(self.rig.close)

    def test_names_past_their_limit_are_refused(self) -> None:
        for name, limit in wire.HELLO_REFUSED_PAST.items():
            conn = self.rig.connect()
            conn.send({**HELLO_320, name: "a" * (limit + 1)})
            (refusal,) = errors(conn.received(), wire.BAD_FIELD)
            self.assertIn(name, refusal["message"])
            self.assertIsNone(conn.proto.client)

    def test_descriptions_are_clipped(self) -> None:
        conn = self.rig.connect(hello={
            **HELLO_320, "version": "3" * 10_000, "deviceInfo": "i" * 10_000,
            "deviceIP": "1" * 10_000,
        })
        client = conn.proto.client
        self.assertEqual(
            (len(client.version), len(client.deviceInfo)),
            (wire.HELLO_CLIPPED_AT["version"], wire.HELLO_CLIPPED_AT["deviceInfo"]),
        )

    def test_analyze_first_is_bounded_the_same_way(self) -> None:
        conn = self.rig.connect()
        conn.send(analyze("# echo", botName="b" * 1000, auth=signedAuth(botName="b" * 1000)))
        self.assertEqual(len(errors(conn.received(), wire.BAD_FIELD)), 1)
        self.assertIsNone(conn.proto.client)

    def test_unverified_lines_are_short(self) -> None:
        # Every long-line slot taken by connections that keep a long line open.
        hogs = [self.rig.connect(address=f"203.0.113.{i}", hello=HELLO_320)
                for i in range(protocol.LONG_LINE_SLOTS)]
        for hog in hogs:
            hog.proto.dataReceived(b'{"event":"analyze","data":{"text":"' + b"a" * 20_000)
            self.assertFalse(hog.closed)
        conn = self.rig.connect(hello=HELLO_320)
        conn.proto.dataReceived(b"a" * (protocol.UNVERIFIED_LINE_BYTES + 2))
        self.assertEqual(len(errors(conn.received(), wire.LINE_TOO_LONG)), 1)
        self.assertTrue(conn.closed)
        self.assertLessEqual(len(conn.proto._buffer), protocol.UNVERIFIED_LINE_BYTES + 1)

    def test_a_long_first_message_of_a_phone_is_not_lost(self) -> None:
        text = "# echo " + "가" * 20_000  # 60 KB: over the unverified limit
        conn = self.rig.connect(hello=HELLO_320)
        conn.received()
        raw = line(analyze(text, auth=signedAuth()))
        for at in range(0, len(raw), 4096):
            conn.proto.dataReceived(raw[at:at + 4096])
        self.assertEqual(conn.replies(conn.received()), ["에코: " + text[len("# echo "):]])
        self.assertEqual(self.rig.factory._longLines, set())

    def test_a_long_line_slot_is_given_back(self) -> None:
        for i in range(3 * protocol.LONG_LINE_SLOTS):
            conn = self.rig.connect(address=f"203.0.113.{i}", hello=HELLO_320)
            conn.proto.dataReceived(b'{"x":"' + b"a" * 20_000 + b'"}\n')
            self.assertEqual(len(errors(conn.received(), wire.BAD_EVENT)), 1, i)
            if i % 2:
                conn.proto.connectionLost(None)
        self.assertEqual(self.rig.factory._longLines, set())


class CountingParser:
    """A JSON module whose loads() notes every text it is given."""

    def __init__(self, module, parsed: list) -> None:
        self._module = module
        self._parsed = parsed

    def __getattr__(self, name: str):
        return getattr(self._module, name)

    def loads(self, data):
        self._parsed.append(data)
        return self._module.loads(data)


class CheapRefusalTests(SynchronousTestCase):
    """Finding 3: a line of `[],[],...` before the handshake cost half a second to refuse."""

    def setUp(self) -> None:
        self.rig = Rig()
        self.addCleanup(self.rig.close)
        self.parsed: list[bytes | str] = []
        for name in ("orjson", "json"):
            self.patch(wirejson, name, CountingParser(getattr(wirejson, name), self.parsed))

    def test_many_containers_before_a_signed_event_are_refused_unparsed(self) -> None:
        conn = self.rig.connect()
        flat = b'{"a":[' + b"[]," * 5000 + b'[]]}\n'
        conn.proto.dataReceived(flat)
        (refusal,) = errors(conn.received(), wire.BAD_JSON)
        self.assertIn("lists and objects", refusal["message"])
        self.assertEqual(self.parsed, [])

    def test_deep_nesting_is_refused_before_parsing(self) -> None:
        conn = self.rig.verified()
        self.parsed.clear()
        conn.proto.dataReceived(b'{"a":' + b"[" * 65 + b"]" * 65 + b"}\n")
        (refusal,) = errors(conn.received(), wire.BAD_JSON)
        self.assertIn("nested deeper", refusal["message"])
        self.assertEqual(self.parsed, [])

    def test_wide_but_flat_line_takes_the_fast_parser(self) -> None:
        # json.loads plus a walk of every container was the half second.
        raw = json.dumps({"event": "ping", "data": {"x": [[]] * 50_000}}).encode()
        self.assertIsInstance(wire.decode(raw), wire.Ping)
        self.assertEqual(len(self.parsed), 1)
        self.assertIs(type(self.parsed[0]), bytes)  # orjson's; json gets str


class AuthOffTests(ProtocolTestCase):
    def test_trusted_at_the_handshake_as_before(self) -> None:
        conn = self.handshaken()
        self.assertEqual(len(self.registry), 1)
        self.assertEqual(conn.proto.MAX_LENGTH, self.maxLineBytes)
        conn.send(analyze("# echo 안녕"))
        self.assertEqual([e["data"]["text"] for e in conn.received()], ["에코: 안녕"])
        self.clock.advance(60)
        self.assertFalse(conn.closing)
