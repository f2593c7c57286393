"""The zope.interface contracts between kkobot's parts (protocol, commands, chat log, auth)."""

from zope.interface import Attribute, Interface


class ICommand(Interface):
    """
    A chat command, found as a plugin through C{twisted.plugin.getPlugins}.

    A module in C{kkobot.plugins} or in the drop-in folder makes a command by holding
    an object that provides both C{IPlugin} and C{ICommand}.
    """

    name = Attribute("Trigger word: 'echo' answers '# echo ...' (case-insensitive).")
    aliases = Attribute("Other trigger words (a sequence of str, may be empty).")
    description = Attribute("One line for '# help'.")
    usage = Attribute("Usage text, e.g. '# echo {내용}'.")

    # Optional declarations, read with getattr (a command may leave any of them out):
    #   examples   sequence of "# name ..." strings, or ("# name ...", "expected reply")
    #   options    sequence of kkobot.commands.options.Option: typed --name=value options
    #   adminOnly  bool: only admins (Permissions.isAdmin) may run it
    #   rooms      None, or room names / channel ids where it may run
    #   cooldown   None, seconds per user, or kkobot.commands.cooldowns.Cooldown(user, room, overall)
    #   timeout    seconds before a slow call is cancelled (None: the server default)
    #   pattern    a regex (str or compiled): a passive trigger matched against any message
    #   keywords   words that, contained in a message (any case), make it a passive trigger
    #   mention    bool: a message that mentions the bot (isMention) is a passive trigger

    def run(context):
        """
        Answer one invocation.

        @param context: an L{ICommandContext}.
        @return: a reply (str or L{kkobot.commands.Reply}), a list of replies, None,
            or a Deferred or coroutine of one of those.
        """


class ICommandContext(Interface):
    """What a command knows about the message that invoked it."""

    room = Attribute("Room name (what the phone addresses replies by).")
    channelId = Attribute("Stable room id, or None.")
    sender = Attribute("Display name of the sender (spoofable: never use for permissions).")
    userHash = Attribute("Stable sender id within the room, or None.")
    botName = Attribute("The bot that saw the message.")
    isGroupChat = Attribute("True in group chats.")
    isMention = Attribute("True when the message mentions the bot.")
    text = Attribute("The whole message text.")
    command = Attribute("The trigger word used (lower-case).")
    args = Attribute("The text after the trigger word, stripped.")
    now = Attribute("Server time, seconds since the epoch (from the service's clock).")
    options = Attribute("Parsed --name=value options by attribute name (dashes as underscores).")
    rest = Attribute("The arguments with the options taken out, stripped.")
    match = Attribute("The re.Match of a passive (pattern) command, else None.")
    isAdmin = Attribute("True when the sender is an admin here (Permissions.isAdmin).")
    client = Attribute(
        "The kkobot.bridge.registry.ClientInfo of the connection that delivered the message "
        "(lastRttMillis, monitoring, version, ...), or None."
    )
    clients = Attribute("The kkobot.bridge.registry.ClientRegistry of every connected bridge.")
    commands = Attribute("The kkobot.commands.CommandRegistry (for help-like commands).")
    store = Attribute(
        "This plugin's stored values (kkobot.commands.store.PluginStore): get/set/delete/incr "
        "with scope 'room', 'user' or 'global'; each returns a Deferred."
    )
    config = Attribute("This plugin's plugins.<name> config section over its declared defaults.")
    http = Attribute("This plugin's HTTP client (kkobot.commands.http.PluginHttp).")
    history = Attribute("This room's chat log (kkobot.commands.history.RoomHistory).")

    def ask(text, timeout=60):
        """
        Say C{text}; a Deferred of this sender's next message text in this room, or of
        None (after a short Korean notice) when C{timeout} seconds pass first.
        """

    def send(text, room=None, channelId=None, mediaWaitTime=None):
        """
        Send a message later, outside the reply (default: to this room), through the
        connection that serves this bot now. Return False when the bot is offline.
        """

    def canUse(command):
        """True when this sender may run C{command} in this room (help filtering)."""


class IJob(Interface):
    """A scheduled message, found as a plugin like L{ICommand} (see kkobot.commands.scheduler)."""

    name = Attribute("Unique name within its module.")
    botName = Attribute("The bot whose connection sends it.")
    room = Attribute("Room name to send to.")
    channelId = Attribute("The room's channel id, or None.")

    def nextAfter(when, tz):
        """The first firing time (epoch seconds) strictly after C{when}."""

    def run(context):
        """Produce the message(s): like L{ICommand.run}, with a L{kkobot.commands.scheduler.JobContext}."""


class IChatLog(Interface):
    """Where chat rows go; never blocks and never fails the caller."""

    def log(row):
        """
        Queue one L{kkobot.chatlog.log.ChatRow} for writing.

        Must return quickly: writing happens later, in batches.
        """

    def flush():
        """Write everything queued so far; return a Deferred that fires when done."""


class IMessageHandler(Interface):
    """What the protocol hands a decoded chat message to."""

    def handleMessage(client, message):
        """
        Log and answer one message.

        @param client: the L{kkobot.bridge.registry.ClientInfo} of the connection.
        @param message: a L{kkobot.bridge.wire.ChatMessage}.
        @return: a Deferred firing with a list of L{kkobot.commands.Reply}.
        """

    def handlePing(client, ping, rttMillis):
        """
        Record one client ping (its C{monitoring} / C{client_status}).

        @param rttMillis: the round trip of our ping it answers, or None.
        """


class IAuthenticator(Interface):
    """Decides who may talk to the server."""

    def checkHello(hello, address):
        """
        Decide about a handshake.

        @return: a Deferred firing with an L{kkobot.bridge.auth.Admission}; one that is not
            C{verified} leaves the connection untrusted until L{verifyEvent} passes.
        """

    def verifyEvent(client, auth):
        """
        Check the C{auth} object of one event on an admitted connection.

        @return: None when it is good, else a human-readable reason.
        """

    def admission(client):
        """
        The real handshake answer for a connection admitted unverified, once one of its
        events verified (or was signed correctly by a refused device).

        @return: an L{kkobot.bridge.auth.Admission}.
        """


class IReplayGuard(Interface):
    """
    Remembers the signatures accepted within the freshness window, so that a captured
    event cannot be used again on another connection (or after a restart).
    """

    def firstUse(signature, connectionId, stampSeconds):
        """
        Record one verified signature (64 lower-case hex digits) seen on connection
        C{connectionId}, signed at C{stampSeconds}.

        @return: True when it is new or was first used on that same connection (two
            events in one millisecond sign the same); False for a replay.
        """
