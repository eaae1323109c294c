"""Open-loop load: requests arrive at a fixed rate whatever the server's latency, and the
sustained rate is the highest at which p95 stays within a bound.

A closed-loop test (locust users with no wait) lets a slow server slow its own load
down; here every request has a scheduled send time, and its latency counts from that
time, so a request the generator could not send on time (the server's backlog) is charged
the wait (no coordinated omission). Rates go up a ladder (x1.5 a step) until a step
fails: p95 over the bound, any error, or fewer answers than requests sent; then the
interval between the last rate that held and the first that failed is bisected.

    locust/.venv/bin/python locust/openloop.py --host http://127.0.0.1:8765 --out OUT.json

Every request is ``GET /api/search?q=<a query never asked before>&k=10`` (locust/queries.py).
Runs from locust's venv (gevent); the selection logic is pure Python and tested.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

_QUERIES = Path(__file__).with_name("queries.py")


@dataclass(frozen=True)
class Step:
    """One rate held for a while: what was offered and what came back."""

    rate: float
    sent: int
    answered: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_late_ms: float  # how far behind its schedule the generator sent a request

    @property
    def achieved(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0..100) of ``values`` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize_step(
    rate: float, seconds: float, latencies_ms: list[float], errors: int, late_ms: list[float]
) -> Step:
    return Step(
        rate=rate,
        sent=len(latencies_ms) + errors,
        answered=len(latencies_ms),
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(latencies_ms, 50),
        p95_ms=percentile(latencies_ms, 95),
        p99_ms=percentile(latencies_ms, 99),
        max_late_ms=max(late_ms, default=0.0),
    )


def holds(step: Step, p95_ms: float) -> bool:
    """Whether a step sustained its rate: p95 within the bound, no errors, every request
    answered."""
    return step.errors == 0 and step.answered == step.sent > 0 and step.p95_ms <= p95_ms


def search_rates(
    run: Callable[[float], Step],
    *,
    start: float,
    p95_ms: float,
    factor: float = 1.5,
    refine: int = 3,
    max_rate: float = 2000.0,
) -> tuple[list[Step], float | None]:
    """Run ``run(rate)`` up a ladder from ``start`` until a step fails, then bisect
    ``refine`` times; the steps in order and the highest rate that held (None: none)."""
    steps: list[Step] = []
    good: float | None = None
    bad: float | None = None
    rate = start
    while rate <= max_rate:
        step = run(rate)
        steps.append(step)
        if not holds(step, p95_ms):
            bad = rate
            break
        good = rate
        rate = round(rate * factor, 1)
    for _ in range(refine if good is not None and bad is not None else 0):
        assert good is not None and bad is not None
        rate = round((good + bad) / 2, 1)
        if rate in (good, bad):
            break
        step = run(rate)
        steps.append(step)
        if holds(step, p95_ms):
            good = rate
        else:
            bad = rate
    return steps, good


def _queries() -> Iterator[str]:
    spec = importlib.util.spec_from_file_location("load_queries", _QUERIES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pool = module.query_pool(28_800)  # all it can build
    while True:  # a run at 100 requests/s for 4.8 minutes asks each once
        yield from pool


def _runner(host: str, seconds: float, warmup_s: float, k: int, timeout_s: float) -> Any:
    import gevent
    from geventhttpclient import HTTPClient
    from geventhttpclient.url import URL

    client = HTTPClient.from_url(URL(host), concurrency=512, network_timeout=timeout_s)
    queries = _queries()

    def run(rate: float) -> Step:
        latencies: list[float] = []
        late: list[float] = []
        errors = 0

        def one(scheduled: float, q: str, counted: bool) -> None:
            nonlocal errors
            sent = time.perf_counter()
            try:
                response = client.get("/api/search?" + urlencode({"q": q, "k": k}))
                response.read()
                ok = response.status_code == 200
            except Exception:  # a timeout or a refused connection: an error either way
                ok = False
            done = time.perf_counter()
            if not counted:
                return
            if ok:
                latencies.append((done - scheduled) * 1000)
                late.append((sent - scheduled) * 1000)
            else:
                errors += 1

        total = int(rate * (warmup_s + seconds))
        warm = int(rate * warmup_s)
        start = time.perf_counter() + 0.05
        pending = []
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            pending.append(gevent.spawn(one, scheduled, next(queries), i >= warm))
        gevent.joinall(pending, timeout=timeout_s + 5)
        gevent.killall(pending)
        errors = (total - warm) - len(latencies)  # failed, or still unanswered
        step = summarize_step(rate, seconds, latencies, errors, late)
        print(
            f"{rate:7.1f}/s offered: {step.achieved:7.1f}/s answered, p50 {step.p50_ms:.0f} "
            f"p95 {step.p95_ms:.0f} p99 {step.p99_ms:.0f} ms, {errors} errors, sent up to "
            f"{step.max_late_ms:.0f} ms late",
            file=sys.stderr,
            flush=True,
        )
        return step

    return run


def main(argv: list[str] | None = None) -> int:
    from gevent import monkey

    monkey.patch_all()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", required=True, help="e.g. http://127.0.0.1:8765")
    p.add_argument("--out", required=True, help="the summary JSON")
    p.add_argument("--p95-ms", type=float, default=100.0, help="the bound (default 100)")
    p.add_argument("--start", type=float, default=10.0, help="first rate, requests/s")
    p.add_argument("--step-s", type=float, default=20.0, help="seconds measured per rate")
    p.add_argument("--warmup-s", type=float, default=3.0, help="seconds not measured per rate")
    p.add_argument("--refine", type=int, default=3, help="bisections after the ladder")
    p.add_argument("--timeout-s", type=float, default=10.0, help="a request's time limit")
    p.add_argument("-k", type=int, default=10, help="results per request")
    p.add_argument("--system", default="clipsearch", help="a name for the summary")
    args = p.parse_args(argv)
    run = _runner(args.host, args.step_s, args.warmup_s, args.k, args.timeout_s)
    steps, sustained = search_rates(run, start=args.start, p95_ms=args.p95_ms, refine=args.refine)
    summary = {
        "system": args.system,
        "sustained_rps": sustained,
        "criterion": f"p95 <= {args.p95_ms:g} ms from the scheduled send time, no errors, "
        "every request answered",
        "step_s": args.step_s,
        "warmup_s": args.warmup_s,
        "steps": [asdict(s) | {"achieved": round(s.achieved, 2)} for s in steps],
    }
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{args.system}: sustained {sustained} requests/s at p95 <= {args.p95_ms:g} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
