"""The reference command: `# echo 안녕하세요` answers `에코: 안녕하세요`."""

from kkobot.logs import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from kkobot.interfaces import ICommand

log = Logger()


@implementer(IPlugin, ICommand)
class Echo:
    name = "echo"
    aliases = ()
    description = "받은 내용을 그대로 돌려줍니다."
    usage = "# echo {내용}"
    examples = (("# echo 안녕하세요", "에코: 안녕하세요"),)

    def run(self, context):
        if not context.args:
            return f"사용법: {self.usage}"
        log.debug("[ECHO] {room}: {text}", room=context.room, text=context.args)
        return f"에코: {context.args}"


echo = Echo()
