"""Admin web refusals: per-address backoff on wrong tokens, and a log that sums refusals up."""

from __future__ import annotations

import ipaddress
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from kkobot.logs import Logger

log = Logger()

# An operator mistyping the token a few times is never held up.
FREE_FAILURES = 5
# From the fifth wrong token on, each one doubles the wait before the next guess is
# heard: 1 s, 2 s, 4 s ... at most 5 minutes, so an address gets about a dozen
# guesses an hour.
FIRST_WAIT = 1.0
MAX_WAIT = 300.0
# An address with no wrong token for this long starts again from zero.
FORGET_AFTER = 900.0
# Bounded memory, whatever number of addresses guess (the quietest are forgotten).
MAX_ADDRESSES = 10_000


def _bucket(address: str) -> str:
    """The unit of backoff: an IPv4 address, or an IPv6 /64 (one host usually has a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    blockedUntil: float = 0.0


class LoginThrottle:
    """Per-address backoff on wrong admin tokens (login form and Bearer header alike)."""

    def __init__(self, clock: IReactorTime, freeFailures: int = FREE_FAILURES,
                 firstWait: float = FIRST_WAIT, maxWait: float = MAX_WAIT,
                 forgetAfter: float = FORGET_AFTER, maxAddresses: int = MAX_ADDRESSES) -> None:
        self.clock = clock
        self.freeFailures = freeFailures
        self.firstWait = firstWait
        self.maxWait = maxWait
        self.forgetAfter = forgetAfter
        self.maxAddresses = maxAddresses
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retryAfter(self, address: str) -> float:
        """Seconds until a token from C{address} is looked at again (0: now)."""
        record = self._records.get(_bucket(address))
        if record is None:
            return 0.0
        return max(0.0, record.blockedUntil - self.clock.seconds())

    def failed(self, address: str) -> float:
        """Count a wrong token; return how long this address must now wait (0: not at all)."""
        now = self.clock.seconds()
        key = _bucket(address)
        record = self._records.pop(key, None)
        if record is None or now - record.last > self.forgetAfter:
            record = _Record()
        record.failures += 1
        record.last = now
        over = record.failures - self.freeFailures
        if over >= 0:
            wait = min(self.maxWait, self.firstWait * 2 ** min(over, 32))
            record.blockedUntil = now + wait
        self._records[key] = record  # most recent last
        while len(self._records) > self.maxAddresses:
            self._records.popitem(last=False)
        return self.retryAfter(address)

    def succeeded(self, address: str) -> None:
        self._records.pop(_bucket(address), None)


@dataclass
class _Window:
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class RefusalLog:
    """
    One log line for the first refusal from an address in each interval (up to
    C{maxImmediate} addresses), then one summary line at the end of the interval
    for everything else: a flood of bad requests costs a line a minute, not a
    line a request.
    """

    def __init__(self, clock: IReactorTime, interval: float = 60.0, maxImmediate: int = 10,
                 maxAddresses: int = 1000) -> None:
        self.clock = clock
        self.interval = interval
        self.maxImmediate = maxImmediate
        self.maxAddresses = maxAddresses
        self._seen: set[str] = set()
        self._later: dict[str, _Window] = {}
        self._others = _Window()
        self._call: IDelayedCall | None = None

    def refused(self, address: str, status: int, method: str, path: str, why: str) -> None:
        if self._call is None:
            self._call = self.clock.callLater(self.interval, self.flush)
        if address not in self._seen and len(self._seen) < self.maxImmediate:
            self._seen.add(address)
            log.warn("[ADMIN] {status} {method} {path} from {address}: {why}",
                     status=status, method=method, path=path, address=address, why=why)
            return
        window = self._later.get(address)
        if window is None:
            window = self._others if len(self._later) >= self.maxAddresses else _Window()
            if window is not self._others:
                self._later[address] = window
        window.count += 1
        window.reasons[why] += 1

    def flush(self) -> None:
        """Log the summary of the interval now (the reactor calls this; so does stop)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        later, others = self._later, self._others
        self._seen, self._later, self._others = set(), {}, _Window()
        total = sum(w.count for w in later.values()) + others.count
        if not total:
            return
        busiest = sorted(later.items(), key=lambda item: -item[1].count)
        parts = [f"{address} {window.count} ({_reasons(window)})"
                 for address, window in busiest[:5]]
        rest = len(busiest) - 5
        if rest > 0:
            parts.append(f"{rest} more address(es)")
        if others.count:
            parts.append(f"{others.count} from further addresses ({_reasons(others)})")
        log.warn(
            "[ADMIN] {total} more refused request(s) in the last {interval:.0f} s: {parts}",
            total=total, interval=self.interval, parts="; ".join(parts),
        )

    def stop(self) -> None:
        self.flush()


def _reasons(window: _Window) -> str:
    return ", ".join(f"{why} {n}" for why, n in window.reasons.most_common(3))


def clientAddress(request: Any) -> str:
    return getattr(request.getClientAddress(), "host", "?")
