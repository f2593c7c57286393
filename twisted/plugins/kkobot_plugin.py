"""twistd plugin: makes `twistd kkobot` available (see kkobot.tap)."""

from twisted.application.service import ServiceMaker

kkobot = ServiceMaker(
    "kkobot",
    "kkobot.tap",
    "Server for MessengerBotR KakaoTalk bots",
    "kkobot",
)
