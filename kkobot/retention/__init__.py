"""Deleting old rows (retention.*): chat logs, ping rows and schedule send logs, in small batches."""

from kkobot.retention.service import RetentionService
from kkobot.retention.targets import Target

__all__ = ["RetentionService", "Target"]
