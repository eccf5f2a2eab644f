"""The web UI under load, measured from outside with gradio_client on loopback.

    python -m benchmarks.ui                      # writes its section of BENCHMARKS.md
    python -m benchmarks.ui --no-write --n 5 --users 2 --user-n 3    # a quick check, prints only

Starts ``python app.py`` with the shipped model (default settings: one model job at a time, the others
queued), then measures (1) the time from clicking Generate to having the molecules (n = 100, the page's default
steps and repair passes), cold (the first request after start) and warm (median of --repeats), and (2) --users
simultaneous users each asking for --user-n molecules: failures (should be 0) and the slowest response.
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


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": 300})  # a queued user waits; only real errors count


def _generate(client, n: int, steps: int, repairs: int, seed: int, targets: int) -> tuple[float, int]:
    """Seconds for one Generate click (no targets, so no predictor guidance) and the number of table rows that came back."""
    start = time.perf_counter()
    inputs = (n, seed, steps, repairs, 2.0, 0.0, False, "", "", False, None, *([""] * targets))
    _, _, table, _, _ = client.predict(*inputs, api_name="/generate")
    return time.perf_counter() - start, len(table["data"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="molecules for the time-to-first-molecules figure")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps of a set prior (default: the shipped prior's, as the page starts with)")
    parser.add_argument("--repairs", type=int, default=None, help="repair passes of a discrete prior (default: the shipped prior's, as the page starts with)")
    parser.add_argument("--repeats", type=int, default=3, help="warm repeats of the n-molecule request")
    parser.add_argument("--users", type=int, default=10, help="simultaneous users")
    parser.add_argument("--user-n", type=int, default=24, help="molecules each simultaneous user asks for (the page's default)")
    parser.add_argument("--concurrency", type=int, default=1, help="the app's --concurrency (model jobs at once)")
    parser.add_argument("--no-write", action="store_true", help="print the figures, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    prior = json.loads(SHIPPED_PRIOR_CONFIG.read_text())
    discrete = prior.get("architecture") == "discrete"
    if args.steps is None:
        args.steps = prior.get("default_steps", 20)
    if args.repairs is None:
        args.repairs = prior.get("default_repairs", 0) if discrete else 0

    launched = time.perf_counter()
    with running_app("--device", "cpu", "--concurrency", str(args.concurrency), "--queue-size", str(max(64, 2 * args.users))) as url:
        startup = time.perf_counter() - launched
        client = _client(url)
        targets = len(client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]) - FIXED_INPUTS

        # 1. Time to first molecules: the first request after start, then warm repeats.
        cold, rows = _generate(client, args.n, args.steps, args.repairs, 0, targets)
        if rows != args.n:
            raise SystemExit(f"asked for {args.n} molecules, the table has {rows} rows")
        warm = [_generate(client, args.n, args.steps, args.repairs, seed, targets)[0] for seed in range(1, args.repeats + 1)]

        # 2. Simultaneous users, each with their own client, released together.
        barrier = threading.Barrier(args.users)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def user(k: int) -> None:
            try:
                own = _client(url)
                barrier.wait()
                seconds, got = _generate(own, args.user_n, args.steps, args.repairs, 100 + k, targets)
                with lock:
                    latencies.append(seconds)
                    if got != args.user_n:
                        failures.append(f"user {k}: {got} rows instead of {args.user_n}")
            except Exception as exc:  # a failed request is a figure here, not a crash
                with lock:
                    failures.append(f"user {k}: {type(exc).__name__}: {exc}")

        started = time.perf_counter()
        threads = [threading.Thread(target=user, args=(k,)) for k in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started

    rows = [
        ("app start to page served (s)", f"{startup:.1f}"),
        (f"time to first molecules, n = {args.n}, cold: first request (s)", f"{cold:.2f}"),
        (f"time to first molecules, n = {args.n}, warm: median of {len(warm)} (s)", f"{statistics.median(warm):.2f}"),
        (f"{args.users} simultaneous users x {args.user_n} molecules: failures", f"{len(failures)}"),
        (
            f"{args.users} simultaneous users: slowest / median response (s)",
            f"{max(latencies):.2f} / {statistics.median(latencies):.2f}" if latencies else "n/a",
        ),
        (f"{args.users} simultaneous users: all served after (s)", f"{wall:.2f}"),
    ]
    notes = (
        f"gradio_client on loopback against `python app.py` (shipped model, CPU, --concurrency {args.concurrency}: one model job "
        "at a time, the others wait in the queue, so the slowest of the simultaneous users waits for all the others). "
        f"Time to first molecules is the wall time of one Generate request ("
        + (f"{args.repairs} repair passes" if discrete else f"{args.steps} steps")
        + "), valence-aware decoding, properties and alerts of every molecule, depictions, table and CSV/SDF files included."
    )
    if failures:
        notes += "\n\nFailures: " + "; ".join(failures[:5])
    sample = f"n = {args.n} ({len(warm)} warm repeats); {args.users} users x {args.user_n} molecules"
    if args.no_write:
        print("\n".join(f"{k} | {v}" for k, v in rows))
        if failures:
            print("failures:", *failures, sep="\n  ")
        return
    print(write_section("Web UI: time to first molecules and simultaneous users", rows, notes, sample))


if __name__ == "__main__":
    main()
