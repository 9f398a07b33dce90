"""Letter rendering, per kind: `python -m bench.rendering [--rounds 200]`.

A letter is rendered inside the command's transaction (its text is stored with the event's
outbox row), so its cost adds to every command that writes one. For each kind, the median and
p99 time of `notifications.rendering.render` (HTML and text) on the suite's sample context,
beside a floor measured in the same run: `json.dumps` of the same context (touching every value
once). Printed as one JSON object a line. Replaces the timed assertion the test suite used to
carry (no timed assertion in tests)."""
from __future__ import annotations

import argparse
import json
import statistics
import time

from notifications.rendering import render
from tests.test_notifications_rendering import SAMPLES, context_for


def _times(fn, rounds: int) -> list[float]:
    fn()  # warm-up: the template is compiled once
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return sorted(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    for kind in sorted(SAMPLES):
        context = context_for(kind)
        rendered = _times(lambda: render(kind, context), args.rounds)
        floor = _times(lambda: json.dumps(context, default=str), args.rounds)
        p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
        print(json.dumps({"kind": kind, "render_p50_ms": round(statistics.median(rendered) * 1e3, 3),
                          "render_p99_ms": round(p(rendered, 0.99) * 1e3, 3),
                          "floor_p50_ms": round(statistics.median(floor) * 1e3, 4)}))


if __name__ == "__main__":
    main()
