"""resultNow: the synchronous fast path over an already-fired Deferred."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from kkobot.cluster.fired import resultNow


class ResultNowTests(unittest.SynchronousTestCase):
    def test_firedAndPending(self):
        self.assertEqual(resultNow(defer.succeed(3)), (True, 3))
        with self.assertRaises(ZeroDivisionError):
            resultNow(defer.fail(ZeroDivisionError()))
        pending: defer.Deferred[int] = defer.Deferred()
        self.assertEqual(resultNow(pending), (False, None))
        later = []
        pending.addCallback(later.append)
        pending.callback(4)
        self.assertEqual(later, [4])
