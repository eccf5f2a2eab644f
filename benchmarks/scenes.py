"""A scene model's figures against issue 40's bars: tokenizer round trip, and 10,000 samples against the 500 real
CLEVR scenes and against 10,000 generator scenes.

    python -m benchmarks.scenes [--model checkpoints/clevr] [--samples 10000] [--held-out 2000] [--write]

1. Tokenizer: ``scene -> tokens -> scene`` (:meth:`MolgenPipeline.reconstruct`, raw argmax decoding) on
   ``--held-out`` generator scenes of a seed the model never saw (``--held-out-seed``) and on the 500 real scenes;
   exact share, and the mean graph edit distance (networkx, relation digraphs in the model's form) of the failures.
2. Samples: ``--samples`` latents drawn once from the prior (the model's defaults), decoded twice: raw (argmax,
   checked: an invalid graph counts as invalid) and layout-aware (``decoding="valence"``, the domain's
   ``from_scores``). Uniqueness and novelty by WL hash with an isomorphism check (:mod:`molgen.scenes.metrics`), over
   the raw-valid samples; novelty against the training scenes (scenes ``0 .. --train-n - 1`` of ``--train-seed``,
   regenerated, as the model card says they were made).
3. MMD² (Gaussian-TV kernel) of every histogram of :data:`molgen.scenes.metrics.HISTOGRAMS` between the raw-valid
   samples and (a) the 500 real scenes, (b) 10,000 generator scenes of another seed; each divided by the MMD²
   between two random halves of that reference (mean of ``--splits`` splits). The bar is <= 1.5x. Because an MMD²
   estimate carries a bias that shrinks with the sample sizes, the same ratio is also given with the samples cut to
   the size of a half (250 vs a 250-scene real half, averaged over the splits), which compares like with like.
   The generator's own scenes against the real ones give the floor a model of the generator can reach there.

Prints a table; ``--write`` also writes it as a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.report import print_rows
from molgen.pipeline import MolgenPipeline
from molgen.scenes import metrics
from molgen.scenes.generator import generate_scenes
from molgen.scenes.io import read_clevr_scenes, scene_from_json

CLEVR = "data/clevr/CLEVR_val_scenes_500.json"
BAR_EXACT, BAR_VALID, BAR_UNIQUE, BAR_MMD = 0.995, 0.99, 0.99, 1.5


def _round_trip(pipe: MolgenPipeline, scenes, form: str, ged_cases: int) -> tuple[float, float, int]:
    """(exact share, mean graph edit distance of the first ``ged_cases`` failures, failures)."""
    results = list(pipe.reconstruct(scenes, decoding="raw"))
    failures = [r for r in results if not r.exact]
    distances = []
    for r in failures[:ged_cases]:
        if r.canonical is not None and r.reconstructed is not None:
            distances.append(metrics.graph_edit_distance(r.canonical, r.reconstructed, form, timeout=2.0))
    exact = sum(r.exact for r in results) / len(results)
    return exact, float(np.nanmean(distances)) if distances else float("nan"), len(failures)


def _half_mmds(reference, splits: int, rng: np.random.Generator, form: str, size: int | None = None) -> dict[str, float]:
    """Mean MMD² between two random halves of ``reference`` (each ``size`` scenes, default half), per histogram."""
    size = size or len(reference) // 2
    out: dict[str, list[float]] = {}
    for _ in range(splits):
        order = rng.permutation(len(reference))
        first, second = [reference[i] for i in order[:size]], [reference[i] for i in order[size : 2 * size]]
        for name, value in metrics.histogram_mmds(first, second, form).items():
            out.setdefault(name, []).append(value)
    return {name: float(np.mean(v)) for name, v in out.items()}


def _same_size_mmds(samples, reference, splits: int, rng: np.random.Generator, form: str) -> dict[str, float]:
    """Mean MMD² between ``len(reference) // 2`` random samples and a random half of ``reference``, per histogram."""
    size = len(reference) // 2
    out: dict[str, list[float]] = {}
    for _ in range(splits):
        ours = [samples[i] for i in rng.choice(len(samples), size, replace=False)]
        half = [reference[i] for i in rng.permutation(len(reference))[:size]]
        for name, value in metrics.histogram_mmds(ours, half, form).items():
            out.setdefault(name, []).append(value)
    return {name: float(np.mean(v)) for name, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="checkpoints/clevr")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--held-out", type=int, default=2000, help="held-out generator scenes for the round trip")
    parser.add_argument("--held-out-seed", type=int, default=2)
    parser.add_argument("--reference-seed", type=int, default=4, help="seed of the 10,000 generator scenes the samples are compared with")
    parser.add_argument("--train-seed", type=int, default=1, help="the seed the training scenes were generated with")
    parser.add_argument("--train-n", type=int, default=80000, help="how many training scenes (scenes 0 .. N-1 of --train-seed)")
    parser.add_argument("--train-data", default=None, help="a featurized training dataset directory to read the training scenes from instead (its items.txt)")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--ged-cases", type=int, default=50, help="failures whose graph edit distance is computed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="also write the table into BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu")
    form = pipe.domain.form
    real = read_clevr_scenes(CLEVR)
    rows: list[tuple[str, str]] = []

    # 1. tokenizer round trip
    held_out = generate_scenes(args.held_out, seed=args.held_out_seed)
    for label, scenes in ((f"{len(held_out):,} held-out generator scenes (seed {args.held_out_seed})", held_out), ("500 real CLEVR scenes", real)):
        start = time.perf_counter()
        exact, ged, failed = _round_trip(pipe, scenes, form, args.ged_cases)
        rate = len(scenes) / (time.perf_counter() - start)
        mark = "met" if exact >= BAR_EXACT else "NOT met"
        rows.append((f"tokenizer exact reconstruction, {label} (bar >= 99.5%)", f"{exact:.2%} ({mark}; {rate:,.0f} scenes/s)"))
        if failed:
            rows.append((f"  mean graph edit distance of the failures ({min(failed, args.ged_cases)} of {failed})", f"{ged:.2f}"))

    # 2. samples: one draw of latents, decoded raw and layout-aware
    start = time.perf_counter()
    latents = pipe.sample_latents(args.samples, seed=args.seed)
    sample_seconds = time.perf_counter() - start
    start = time.perf_counter()
    raw = pipe.decode(latents, decoding="raw")
    raw_seconds = time.perf_counter() - start
    layout = pipe.decode(latents, decoding="valence")
    valid = [m.smiles for m in raw if m.smiles is not None]
    validity = len(valid) / len(raw)
    rows.append((f"raw validity, {args.samples:,} samples, argmax decoding (bar >= 99%)", f"{validity:.2%} ({'met' if validity >= BAR_VALID else 'NOT met'})"))
    errors: dict[str, int] = {}
    for m in raw:
        if m.smiles is None:
            reason = (m.error or "").split(":")[-1].strip()[:60]
            errors[reason] = errors.get(reason, 0) + 1
    for reason, count in sorted(errors.items(), key=lambda kv: -kv[1])[:3]:
        rows.append((f"  invalid: {reason}", f"{count}"))
    rows.append(("validity, layout-aware decoding", f"{sum(m.smiles is not None for m in layout) / len(layout):.2%}"))
    unique = metrics.uniqueness(valid, form)
    rows.append(("uniqueness of the raw-valid samples (bar >= 99%)", f"{unique:.2%} ({'met' if unique >= BAR_UNIQUE else 'NOT met'})"))
    if args.train_data:
        train = [scene_from_json(json.loads(line)) for line in (Path(args.train_data) / "items.txt").read_text().splitlines()]
    else:
        train = generate_scenes(args.train_n, seed=args.train_seed)
    rows.append((f"novelty against the {len(train):,} training scenes", f"{metrics.novelty(valid, train, form):.2%}"))
    rows.append(("novelty against the 500 real scenes", f"{metrics.novelty(valid, real, form):.2%}"))
    rows.append(("objects per scene, samples / real / training", f"{np.mean([s.num_objects for s in valid]):.2f} / {np.mean([s.num_objects for s in real]):.2f} / {np.mean([s.num_objects for s in train[:10000]]):.2f}"))
    rows.append(("speed: sampling latents / raw decoding (scenes/s, one thread)", f"{args.samples / sample_seconds:,.0f} / {args.samples / raw_seconds:,.0f}"))

    # 3. MMDs against the real scenes and against generator scenes, relative to half-vs-half
    rng = np.random.default_rng(args.seed)
    generator = generate_scenes(10000, seed=args.reference_seed)
    worst = 0.0
    for ref_label, reference in (("500 real", real), ("10,000 generator", generator)):
        halves = _half_mmds(reference, args.splits, rng, form)
        ours = metrics.histogram_mmds(valid, reference, form)
        same = _same_size_mmds(valid, reference, args.splits, rng, form) if len(reference) <= 1000 else None
        for name in ours:
            ratio = ours[name] / halves[name]
            worst = max(worst, ratio)
            text = f"{ours[name]:.5f} / {halves[name]:.5f} = {ratio:.2f}x"
            if same is not None:
                text += f" (250 vs 250: {same[name] / halves[name]:.2f}x)"
            rows.append((f"MMD² {name}: samples vs {ref_label} / half vs half", text))
    rows.append(("largest MMD ratio (bar <= 1.5x)", f"{worst:.2f}x ({'met' if worst <= BAR_MMD else 'NOT met'})"))
    # The training data's own distance to the real scenes: a model of the generator cannot be nearer than this.
    halves = _half_mmds(real, args.splits, rng, form)
    theirs = metrics.histogram_mmds(generator, real, form)
    rows.append((
        "the generator itself (10,000 scenes) vs 500 real: MMD² ratio per histogram",
        ", ".join(f"{name} {theirs[name] / halves[name]:.2f}x" for name in theirs),
    ))
    for ref_label, reference in (("500 real", real), ("10,000 generator", generator)):
        t = metrics.triplet_metrics(valid, reference)
        rows.append((f"triplet TV / novel-triplet share, samples vs {ref_label}", f"{t['triplet_tv']:.3f} / {t['novel_triplets']:.4f}"))

    print_rows(rows)
    if args.write:
        from benchmarks.report import write_section

        card = json.loads((Path(args.model) / "domain.json").read_text())
        write_section(
            f"Scene model ({args.model}, {card['form']} form): tokenizer, samples, MMDs",
            rows,
            notes=(
                "Bars of issue 40. Samples: the model's defaults (temperature, top-p); raw = argmax decoding, checked. "
                "MMD² with the Gaussian total-variation kernel (sigma 1) over the raw-valid samples; half vs half: two "
                f"random halves of the reference, mean of {args.splits} splits."
            ),
            sample=f"{args.samples:,} samples (seed {args.seed}); 500 CLEVR v1.0 validation scenes; generator seeds {args.held_out_seed} (held out), {args.reference_seed} (reference)",
        )


if __name__ == "__main__":
    main()
