"""The web UI under load, measured from outside with gradio_client on loopback.

    python -m benchmarks.ui --write                           # writes its section of BENCHMARKS.md
    python -m benchmarks.ui --users 2 --n 4 --repeats 1    # a quick check, prints only

Starts ``python app.py`` with the shipped model (its default settings unless --concurrency / --deadline are given),
then measures (1) the time from clicking Generate to having the molecules (--n molecules, the page's default
steps and repair passes, no targets), cold (the first request after start) and warm (median of --repeats), and
(2) --users simultaneous users, each with their own client, each asking for --n molecules at the same moment:
how many were served in full, and the median (p50) and 95th-percentile (p95) latency of those served. The load is
bounded: at most --max-users users, each request given up after --timeout seconds.
Run it on an otherwise idle machine: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from benchmarks.report import write_section
from molgen.pipeline import DEFAULT_MODEL
from tests.ui.harness import running_app

SHIPPED_PRIOR_CONFIG = DEFAULT_MODEL / "prior" / "config.json"  # what `python app.py` serves by default
# n, seed, steps, repair passes, guidance, predictor guidance, hard limits, must contain, must avoid, alerts, SA ceiling;
# then one target per property
FIXED_INPUTS = 11
MAX_USERS = 64


def _client(url: str, timeout: float):
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": timeout})


def _generate(client, n: int, steps: int, repairs: int, seed: int, targets: int, timeout: float) -> tuple[float, int]:
    """Seconds for one Generate click (no targets, so no predictor guidance) and the number of table rows that came
    back; raises TimeoutError after ``timeout`` seconds."""
    start = time.perf_counter()
    inputs = (n, seed, steps, repairs, 2.0, 0.0, False, "", "", False, "", *([""] * targets))
    job = client.submit(*inputs, api_name="/generate")
    try:
        _, _, table, _, _ = job.result(timeout=timeout)
    except TimeoutError:
        job.cancel()
        raise
    return time.perf_counter() - start, len(table["data"])


def _percentile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method: p50 of two values is their mean; p95 of 20 lies between the 19th and 20th)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def simultaneous(url: str, users: int, n: int, steps: int, repairs: int, targets: int, timeout: float) -> tuple[list[float], list[str], float]:
    """``users`` clients released together, each asking for ``n`` molecules: (latencies of those served in full,
    failures, seconds until the last answer or give-up)."""
    barrier = threading.Barrier(users)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def user(k: int) -> None:
        try:
            own = _client(url, timeout)
            barrier.wait(timeout=timeout)
            seconds, got = _generate(own, n, steps, repairs, 100 + k, targets, timeout)
            with lock:
                if got == n:
                    latencies.append(seconds)
                else:
                    failures.append(f"user {k}: {got} rows instead of {n}")
        except Exception as exc:  # a failed or timed-out request is a figure here, not a crash
            with lock:
                failures.append(f"user {k}: {type(exc).__name__}: {exc}")

    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, 2 * timeout - (time.perf_counter() - started)))  # client setup + request, bounded
    with lock:
        return list(latencies), list(failures), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="molecules per Generate request (time to first molecules, and each user's)")
    parser.add_argument("--users", type=int, default=20, help=f"simultaneous users (at most {MAX_USERS})")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps of a set prior (default: the shipped prior's, as the page starts with)")
    parser.add_argument("--repairs", type=int, default=None, help="repair passes of a discrete prior (default: the shipped prior's, as the page starts with)")
    parser.add_argument("--repeats", type=int, default=3, help="warm repeats of the single request")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after which a request counts as not served")
    parser.add_argument("--concurrency", type=int, default=None, help="the app's --concurrency (default: the app's default)")
    parser.add_argument("--deadline", type=float, default=None, help="the app's --deadline (default: the app's default)")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users {args.users}: give 1 to {MAX_USERS}")
    prior = json.loads(SHIPPED_PRIOR_CONFIG.read_text())
    discrete = prior.get("architecture") == "discrete"
    if args.steps is None:
        args.steps = prior.get("default_steps", 20)
    if args.repairs is None:
        args.repairs = prior.get("default_repairs", 0) if discrete else 0

    import app  # the page's defaults, for the record

    concurrency = args.concurrency or app.CONCURRENCY
    deadline = args.deadline or app.Limits.deadline
    options = ["--device", "cpu", "--concurrency", str(concurrency), "--deadline", str(deadline), "--queue-size", str(max(64, 2 * args.users))]
    launched = time.perf_counter()
    with running_app(*options) as url:
        startup = time.perf_counter() - launched
        client = _client(url, args.timeout)
        targets = len(client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]) - FIXED_INPUTS

        # 1. Time to first molecules: the first request after start, then warm repeats.
        cold, rows = _generate(client, args.n, args.steps, args.repairs, 0, targets, args.timeout)
        if rows != args.n:
            raise SystemExit(f"asked for {args.n} molecules, the table has {rows} rows")
        warm = [_generate(client, args.n, args.steps, args.repairs, seed, targets, args.timeout)[0] for seed in range(1, args.repeats + 1)]

        # 2. Simultaneous users, each with their own client, released together.
        latencies, failures, wall = simultaneous(url, args.users, args.n, args.steps, args.repairs, targets, args.timeout)

    served = f"{args.users} simultaneous users x {args.n} molecules"
    rows = [
        ("app start to page served (s)", f"{startup:.1f}"),
        (f"time to first molecules, n = {args.n}, cold: first request (s)", f"{cold:.2f}"),
        (f"time to first molecules, n = {args.n}, warm: median of {len(warm)} (s)", f"{statistics.median(warm):.2f}" if warm else "n/a"),
        (f"{served}: served in full", f"{len(latencies)} of {args.users}"),
        (f"{served}: latency p50 / p95 (s)", f"{_percentile(latencies, 50):.2f} / {_percentile(latencies, 95):.2f}" if latencies else "n/a"),
        (f"{served}: all answered after (s)", f"{wall:.2f}"),
    ]
    notes = (
        f"gradio_client on loopback against `python app.py --concurrency {concurrency} --deadline {deadline:g}` (shipped model, "
        f"CPU; {concurrency} requests run at once, each in its own thread, the others wait in the queue; torch threads: the "
        f"cores / {concurrency}). Latency is from submitting a request to having its results, queue wait included; a request "
        f"not answered in full within {args.timeout:g} s counts as not served. Time to first molecules is the wall time of one "
        "Generate request ("
        + (f"{args.repairs} repair passes" if discrete else f"{args.steps} steps")
        + ", no targets), valence-aware decoding, properties and alerts of every molecule, depictions, table and CSV/SDF "
        "files included."
    )
    if failures:
        notes += "\n\nNot served: " + "; ".join(failures[:5])
    sample = f"n = {args.n} ({len(warm)} warm repeats); {args.users} simultaneous users x {args.n} molecules"
    if not args.write:
        print("\n".join(f"{k} | {v}" for k, v in rows))
        if failures:
            print("not served:", *failures, sep="\n  ")
        return
    print(write_section("Web UI: time to first molecules and simultaneous users", rows, notes, sample))


if __name__ == "__main__":
    main()
