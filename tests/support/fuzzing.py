"""Shared hypothesis settings and strategies for the abuse-level fuzz tests."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from kkobot.bridge import wire

# Derandomized and bounded: `make test` stays fast and gives the same verdict on every run
# (a failure found once is found again, not only on a lucky seed).
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Any JSON value, strings may hold lone surrogates once escaped (as a bridge that cuts a
# UTF-16 string in half would send them).
jsonScalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
)
jsonValues = st.recursive(
    jsonScalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

# 3.3 lines: `message_positions` of every shape (fitting, not ints, descending, past
# the end, not a list) and raw parts (junk, base64 of anything, base64 of text).
positions33 = st.one_of(
    st.lists(st.integers(min_value=-5, max_value=60), max_size=4),
    st.lists(st.one_of(st.integers(0, 40), st.floats(0, 40), st.booleans(), st.text(max_size=2),
                       st.none()), max_size=3),
    st.sampled_from([None, "0,4", {}, 4, [0, 10**30]]),
)
rawParts33 = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.binary(max_size=30).map(base64.b64encode),
    st.text(max_size=20).map(lambda t: base64.b64encode(t.encode("utf-8", "replace"))),
)

# A value of each JSON type, for "a field of the wrong type".
WRONG = {
    "string": ["", "x", "true", "12a"],
    "number": [0, 1, 2, -1, 1.5, 10**25, 1e300],
    "bool": [True, False],
    "null": [None],
    "list": [[], ["x"], [1, 2]],
    "object": [{}, {"a": 1}],
}


def allWrongValues() -> list[Any]:
    return [v for values in WRONG.values() for v in values]


def jsonLine(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=True).encode("ascii") + b"\n"


def storable(event: wire.Event) -> bool:
    """Every string an event carries can be written as UTF-8 (to MySQL, to a client)."""
    return all(_encodes(value) for value in event)


def _encodes(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodes(k) and _encodes(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodes(v) for v in value)
    return True
