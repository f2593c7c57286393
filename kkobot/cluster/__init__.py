"""Several kkobot instances serving as one, coordinated through Redis (docs/cluster.md).

`ClusterNode` is what the server builds; the interfaces in `kkobot.cluster.interfaces`
are what its parts (outbound, registry, auth, limits, dispatch, scheduler, admin web)
talk to. Without `cluster.redis` the same objects work in one process.
"""

from kkobot.cluster.link import RedisLink, RedisUnavailable
from kkobot.cluster.message import MessageStatus, RoutedMessage, SendResult
from kkobot.cluster.node import ClusterNode
from kkobot.cluster.settings import ClusterConfigError, ClusterSettings, RedisAddress

__all__ = [
    "ClusterNode", "ClusterSettings", "ClusterConfigError", "RedisAddress", "RedisLink",
    "RedisUnavailable", "RoutedMessage", "SendResult", "MessageStatus",
]
