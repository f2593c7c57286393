"""/metrics: the Prometheus text exposition, rendered by prometheus_client."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from kkobot.admin.metrics import Metrics


class MetricsPage(Resource):
    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        Resource.__init__(self)
        self.metrics = metrics

    def render_GET(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return self.metrics.render()
