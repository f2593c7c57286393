"""Medians of interleaved benchmark rounds: one report per scenario from several runs of it."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any, Callable

Reports = list[dict[str, Any]]

# Figures that say how the round went, not what it measured: taken from the last round.
_KEPT = ("rows_before", "rows_after", "rows_expected", "duplicates_after_stop")


def median_reports(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """
    Per scenario (matched by name), the median of every numeric figure over the
    rounds that ran it; errors are summed, so a round with errors shows. Other
    fields come from the last round. C{rounds}: each round's reports.
    """
    byName: dict[str, list[dict[str, Any]]] = {}
    for reports in rounds:
        for report in reports:
            byName.setdefault(report["scenario"], []).append(report)
    merged = []
    for runs in byName.values():
        out = dict(runs[-1])
        for key, value in runs[-1].items():
            if key in _KEPT or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            if key == "errors":
                out[key] = sum(values)
            elif values and all(type(v) is int for v in values):
                out[key] = statistics.median_low(values)
            elif values:
                out[key] = round(statistics.median(values), 3)
        out["rounds"] = len(runs)
        merged.append(out)
    return merged


def run_rounds(
    a: argparse.Namespace,
    modes: list[bool | None],
    runBare: Callable[[], Reports | None],
    runServer: Callable[[argparse.Namespace, bool | None], tuple[Reports, str, bool] | None],
    present: Callable[..., tuple[int, dict[str, Any]]],
) -> int:
    """
    C{--rounds N}: bare (with C{--with-bare}) and each server (auth mode) in turn, N
    times, a fresh server each time; then the medians, presented as one run's figures.
    """
    out = sys.stderr if a.json else sys.stdout
    bares: list[Reports] = []
    runs: dict[bool | None, list[Reports]] = {m: [] for m in modes}
    labels: dict[bool | None, tuple[str, bool]] = {}
    for i in range(a.rounds):
        print(f"round {i + 1} of {a.rounds}", file=out, flush=True)
        if a.with_bare and a.target != "bare":
            bare = runBare()
            if bare is None:
                return 2
            bares.append(bare)
        for authOn in modes:
            ran = runServer(a, authOn)
            if ran is None:
                return 2
            runs[authOn].append(ran[0])
            labels[authOn] = ran[1:]
    medianBare = median_reports(bares) if bares else None
    status, docs = 0, []
    for n, authOn in enumerate(modes):
        code, doc = present(a, median_reports(runs[authOn]), medianBare, *labels[authOn],
                            showBare=n == 0)
        status = max(status, code)
        docs.append(doc)
    if a.json:
        print(json.dumps(docs[0] if len(docs) == 1 else {"runs": docs}, ensure_ascii=False, indent=2))
    return status
