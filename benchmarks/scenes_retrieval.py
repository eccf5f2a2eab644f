"""Retrieval by latent similarity on a scene model: does latent distance rank scenes as graph edit distance does?

    python -m benchmarks.scenes_retrieval [--model checkpoints/clevr] [--queries 200] [--candidates 25]
        [--ged-timeout 0.1] [--write]

1. ``--queries`` query scenes (the first of the 500 real CLEVR validation scenes) and a fixed candidate set of
   ``--candidates`` generator scenes (seed ``--candidate-seed``, never trained on) are encoded once.
2. Latent distance between every query and every candidate, both of :mod:`molgen.retrieval`'s metrics (``set``:
   optimal matching of the tokens; ``mean``: mean-pooled tokens).
3. Graph edit distance of every pair: networkx on the relation digraphs in the model's form
   (:func:`molgen.scenes.metrics.graph_edit_distance`, node and arc match on labels, unit costs), each search
   stopped after ``--ged-timeout`` seconds with the best distance found so far (an upper bound).
4. Spearman rank correlation between the two, pooled over all pairs and per query (mean over queries), beside the
   same correlation for a baseline that knows only the difference in object counts; and how good each query's
   latent nearest neighbour is: its edit distance against the smallest edit distance among the candidates.

Prints a table; ``--write`` also writes it as a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.report import print_rows
from molgen.pipeline import MolgenPipeline
from molgen.retrieval import METRICS, latent_distances
from molgen.scenes import metrics
from molgen.scenes.generator import generate_scenes
from molgen.scenes.io import read_clevr_scenes

CLEVR = "data/clevr/CLEVR_val_scenes_500.json"


def _per_query(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the Spearman correlation of row ``a[q]`` with ``b[q]`` (rows without spread skipped)."""
    values = [spearmanr(x, y)[0] for x, y in zip(a, b, strict=True) if np.ptp(x) > 0 and np.ptp(y) > 0]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="checkpoints/clevr")
    parser.add_argument("--queries", type=int, default=200, help="query scenes: the first N real CLEVR scenes")
    parser.add_argument("--candidates", type=int, default=25, help="size of the fixed candidate set (generator scenes)")
    parser.add_argument("--candidate-seed", type=int, default=5, help="generator seed of the candidate set")
    parser.add_argument("--ged-timeout", type=float, default=0.1, help="seconds per graph edit distance search")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="also write the table into BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu")
    form = pipe.domain.form
    queries = read_clevr_scenes(CLEVR)[: args.queries]
    candidates = generate_scenes(args.candidates, seed=args.candidate_seed)
    query_latents, candidate_latents = pipe.encode(queries), pipe.encode(candidates)

    rows: list[tuple[str, str]] = []
    start = time.perf_counter()
    ged = np.array([[metrics.graph_edit_distance(q, c, form, timeout=args.ged_timeout) for c in candidates] for q in queries])
    ged_seconds = time.perf_counter() - start
    retried = np.argwhere(np.isnan(ged))  # no edit path found in time: searched again, ten times longer
    for q, c in retried.tolist():
        ged[q, c] = metrics.graph_edit_distance(queries[q], candidates[c], form, timeout=10 * args.ged_timeout)
    if np.isnan(ged).any():
        raise RuntimeError(f"{int(np.isnan(ged).sum())} edit distance searches found no edit path within {10 * args.ged_timeout} s; raise --ged-timeout")
    sizes_q = np.array([s.num_objects for s in queries])
    sizes_c = np.array([s.num_objects for s in candidates])
    baseline = np.abs(sizes_q[:, None] - sizes_c[None, :]).astype(float)  # (Q, C)
    best = ged.min(1)  # (Q,) smallest edit distance among the candidates
    for metric in METRICS:
        start = time.perf_counter()
        latent = latent_distances(query_latents, candidate_latents, metric)  # (Q, C)
        seconds = time.perf_counter() - start
        top = ged[np.arange(len(queries)), latent.argmin(1)]  # (Q,) edit distance of the latent nearest neighbour
        rows.append((f"Spearman(latent, edit distance), {metric} distance, all pairs", f"{spearmanr(latent.ravel(), ged.ravel())[0]:.3f}"))
        rows.append((f"  per query, mean over {len(queries)} queries", f"{_per_query(latent, ged):.3f}"))
        rows.append(("  latent nearest neighbour: mean edit distance / the smallest among the candidates", f"{top.mean():.2f} / {best.mean():.2f} (it is a nearest one for {np.mean(top == best):.1%} of queries)"))
        rows.append(("  speed (query-candidate pairs/s, one thread)", f"{latent.size / seconds:,.0f}"))
    rows.append(("baseline: Spearman(|difference in object counts|, edit distance), all pairs / per query", f"{spearmanr(baseline.ravel(), ged.ravel())[0]:.3f} / {_per_query(baseline, ged):.3f}"))
    rows.append(("baseline: a random candidate's mean edit distance", f"{ged.mean():.2f}"))
    rows.append((f"edit distance searches (s each, at most {args.ged_timeout} s)", f"{ged_seconds / ged.size:.3f} ({len(retried)} searched again for {10 * args.ged_timeout:g} s: no path found in time)"))

    print_rows(rows)
    if args.write:
        from benchmarks.report import write_section

        write_section(
            f"Scene retrieval ({args.model}): latent distance against graph edit distance",
            rows,
            notes=(
                "Issue 40's retrieval figure: the rank correlation between latent distance (molgen.retrieval: set = optimal "
                "matching of the per-object tokens, an unmatched token costing the median token distance; mean = mean-pooled "
                "tokens) and graph edit distance (networkx, relation digraphs in the model's form, node and arc match on labels, "
                f"unit costs; each search stopped after {args.ged_timeout} s, so a distance is an upper bound)."
            ),
            sample=f"{len(queries)} queries (the first of the 500 CLEVR v1.0 validation scenes) x {len(candidates)} candidates (generator seed {args.candidate_seed})",
        )


if __name__ == "__main__":
    main()
