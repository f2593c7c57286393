"""The contracts between the cluster package and the server that plugs it in."""

from zope.interface import Attribute, Interface


class IRedisLink(Interface):
    """One reconnecting Redis connection that knows whether it is usable."""

    up = Attribute("True while commands can be sent.")
    state = Attribute("'connecting', 'up', 'down' or 'stopped'.")

    def execute(*args, timeout=True):
        """
        Send one command; a Deferred of its reply. Fails at once with
        L{kkobot.cluster.link.RedisUnavailable} while the link is not up.
        """

    def eval(script, keys=(), args=()):
        """Run a Lua script (EVALSHA, loading it once per connection)."""

    def whenUp():
        """A Deferred that fires (with the link) once the link is up."""

    def subscribe(listener):
        """Call C{listener.redisUp()} / C{listener.redisDown(reason)} on each change."""

    def status():
        """A JSON-able dict for /readyz: state, since, the address (no password), last error."""


class IDeliver(Interface):
    """The server's local send, given to the cluster router (integration passes Outbound)."""

    def __call__(message):
        """
        Write C{message} (a L{kkobot.cluster.message.RoutedMessage}) to a local
        connection of its bot; True when it went out, False when no local connection
        serves that bot (the router then routes it elsewhere or lets it wait).
        """


class IPresence(Interface):
    """Which instances are alive and which phones each of them holds."""

    instance = Attribute("This instance's name.")

    def add(client):
        """A handshaken connection (a ClientInfo) is now held here."""

    def update(client):
        """A held connection changed (approval, ping figures)."""

    def remove(client):
        """A held connection is gone."""

    def deployment():
        """
        A Deferred list of L{kkobot.cluster.presence.InstanceView}: every instance
        (this one first), its connections and its last heartbeat. While Redis is down:
        this instance only.
        """

    def liveInstances():
        """Names of the instances seen alive at the last heartbeat (this one included)."""


class IOutboundRouter(Interface):
    """Messages the bot sends on its own, to a phone wherever it is connected."""

    def send(botName, room, text, channelId=None, isGroupChat=True, scheduled=False,
             mediaWaitTime=None, messageId=None, waitSeconds=None):
        """
        Send one message; a Deferred of a L{kkobot.cluster.message.SendResult}
        (its id and whether it was delivered here, routed, or waits for the bot).
        A message whose bot is not connected anywhere waits up to C{waitSeconds}
        (default C{cluster.outbound_wait_seconds}), then is reported undelivered.
        Sending the same C{messageId} again never delivers it twice.
        """

    def status(messageId):
        """A Deferred L{kkobot.cluster.message.MessageStatus} (or None when unknown)."""


class ICooldownStore(Interface):
    """
    When each (command, scope) may next be used (the semantics of
    L{kkobot.commands.cooldowns.Cooldowns}), in one process or across a deployment.
    """

    def acquire(name, cooldown, context):
        """
        Check the cooldowns of one call and, when it may go ahead, start them, as one
        step; a Deferred of None (go ahead) or a L{kkobot.commands.cooldowns.Refusal}.
        The in-process store answers with an already-fired Deferred.
        """


class IReplayCheck(Interface):
    """'A signature is a replay when it shows up on a different connection.'"""

    def firstUse(sig, connectionId, stampSeconds):
        """
        A Deferred of True when C{sig} is new or was first used on this connection
        (of this instance), False when it was first used elsewhere.
        """


class IAddressBans(Interface):
    """Addresses refused for a while after too many auth failures."""

    def refusal(address):
        """Why a new connection from C{address} is refused (a ban), or None. Synchronous."""

    def failed(address):
        """Count one auth failure; a Deferred of True when the address is now banned."""

    def forget():
        """Drop expired bookkeeping."""


class ISlotClaims(Interface):
    """One firing per scheduled slot across the deployment."""

    def claim(jobKey, slotTime):
        """A Deferred of True when this instance is the one to fire C{jobKey} at C{slotTime}."""
