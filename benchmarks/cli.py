"""What a user sees: `molgen sample` and `molgen evaluate` timed end to end as commands, from process start to exit.

    python -m benchmarks.cli [--n 30000] [--model checkpoints/moses] [--out-dir /tmp/molgen-cli-bench]

Runs ``molgen sample -n N --out samples.csv`` (the model's defaults: properties computed, progress bar off) and then
``molgen evaluate samples.csv`` (the MOSES metrics against MOSES test and test scaffolds) as subprocesses, with the
environment a user has, and records wall time, CPU time and the figures the two commands print. The speed is valid
unique molecules per second of the whole `molgen sample` command (loading the model included). ``--write`` writes it as a
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import write_section


def _run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the child's) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    parser.add_argument("--out-dir", default="/tmp/molgen-cli-bench")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples, metrics = out / "samples.csv", out / "metrics.json"
    molgen = [sys.executable, "-m", "molgen.cli"]
    model = [] if args.model is None else ["--model", args.model]
    sample_wall, sample_cpu = _run([*molgen, "sample", "-n", str(args.n), "--out", str(samples), "--overwrite", "--no-progress", *model])
    evaluate_wall, evaluate_cpu = _run([*molgen, "evaluate", str(samples), "--out", str(metrics)])
    figures = json.loads(metrics.read_text())["metrics"]
    lines = samples.read_text().splitlines()[1:]
    valid_unique = len({line.split(",")[1] for line in lines if ",valid," in line})
    rows = [
        ("`molgen sample` wall time (s)", f"{sample_wall:.0f}"),
        ("`molgen sample` CPU time (s)", f"{sample_cpu:.0f}"),
        ("valid unique molecules per second, whole command", f"{valid_unique / sample_wall:.0f}"),
        ("`molgen evaluate` wall time (s)", f"{evaluate_wall:.0f}"),
        ("`molgen evaluate` CPU time (s)", f"{evaluate_cpu:.0f}"),
    ]
    for name in ("valid", "unique@1000", "unique@10000", "FCD/Test", "FCD/TestSF", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "Filters", "Novelty"):
        if name in figures:
            value = figures[name]
            rows.append((name, f"{value:.4f}" if isinstance(value, float) else str(value)))
    notes = (
        "Both commands as a user runs them (defaults of the shipped model: valence-aware decoding, 2 repair passes, "
        "calibrated resampling with 2 candidates, properties computed and written), timed from process start to exit."
    )
    print(write_section("Command line end to end: molgen sample and molgen evaluate", rows, notes, sample=f"{args.n:,} samples, seed 0"))


if __name__ == "__main__":
    main()
