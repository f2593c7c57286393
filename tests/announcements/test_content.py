"""An announcement's parts: its text and image groups as the media replies the bridges take."""

from __future__ import annotations

import base64
import json
import unittest

from kkobot.announcements.content import imageGroup, partsOf
from kkobot.commands import Reply

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


class Parts(unittest.TestCase):
    def test_text_then_each_image_group_with_its_wait_time(self):
        parts, problems = partsOf({
            "message_text": "공지입니다",
            "message_images_1": json.dumps(["https://img.example/a.png", "https://img.example/b.png"]),
            "media_wait_time_1": 3000,
            "message_images_2": json.dumps([{"base64": PNG}]),
            "media_wait_time_2": 0,
        })
        self.assertEqual(problems, [])
        self.assertEqual([p.name for p in parts], ["text", "images_1", "images_2"])
        self.assertEqual(parts[0].replies, (Reply("공지입니다"),))
        self.assertEqual(parts[1].replies, (Reply(
            "MEDIA_URL:https://img.example/a.png|||https://img.example/b.png", 3000),))
        self.assertEqual(parts[2].replies, (Reply("IMAGE_BASE64:" + PNG, None),))

    def test_empty_parts_are_left_out(self):
        parts, problems = partsOf({"message_text": "  ", "message_images_1": "[]",
                                   "message_images_2": None})
        self.assertEqual((parts, problems), ([], []))

    def test_a_group_mixing_urls_and_inline_images_becomes_two_messages(self):
        replies = imageGroup(["https://x.example/1.jpg", "data:image/png;base64," + PNG], 500, "g")
        self.assertEqual(replies, (Reply("MEDIA_URL:https://x.example/1.jpg", 500),
                                   Reply("IMAGE_BASE64:" + PNG, 500)))

    def test_a_group_that_cannot_be_sent_is_a_problem_not_a_crash(self):
        parts, problems = partsOf({"message_text": "안내", "message_images_1": '["/uploads/a.png"]',
                                   "message_images_2": "{not json"})
        self.assertEqual([p.name for p in parts], ["text"])
        self.assertEqual(len(problems), 2)
        self.assertIn("message_images_1[0] is neither an http(s) URL nor base64", problems[0])
        self.assertIn("message_images_2 is not JSON", problems[1])


class Reachable(unittest.TestCase):
    def test_a_bot_is_reachable_through_a_connection_here_or_the_outbound_router(self):
        from twisted.internet.task import Clock

        from kkobot.announcements.delivery import reachable
        from kkobot.bridge.outbound import Outbound
        from kkobot.bridge.registry import ClientInfo, ClientRegistry
        from kkobot.commands.testing import MemoryChatLog

        registry = ClientRegistry()
        outbound = Outbound(registry, MemoryChatLog(), Clock())
        self.assertFalse(reachable(outbound, "kkobot"))
        phone = ClientInfo(botName="kkobot", version="3.2.0", clientType="MessengerBotR",
                           deviceID="d", address="127.0.0.1", connectedSince=0.0,
                           send=lambda line: None, approved=False)
        registry.add(phone)
        self.assertFalse(reachable(outbound, "kkobot"))  # pending approval
        phone.approved = True
        self.assertTrue(reachable(outbound, "kkobot"))
        self.assertFalse(reachable(outbound, "other"))
        # An outbound path that routes to other instances or queues for absent bots.
        outbound.router = object()
        self.assertTrue(reachable(outbound, "other"))
