"""kkobot: the server MessengerBotR KakaoTalk bridges talk to."""

__version__ = "1.0.0"
