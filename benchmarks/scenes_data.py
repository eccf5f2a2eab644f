"""The scene-graph data: how close the procedural generator is to the 500 real CLEVR scenes, and whether the scene
domain's graphs round-trip exactly.

    python -m benchmarks.scenes_data [--generated 1000] [--splits 10] [--seed 0] [--write]

1. Round trip: ``scene -> SceneDomain.to_graph -> from_graph`` compared with the canonical scene, for the 500 real
   scenes and ``--generated`` generator scenes of a held-out seed, in the dense and the sparse form (vocabulary fitted
   on other generator scenes, so an unseen label would count as a failure).
2. Generator vs real: for each histogram of :mod:`molgen.scenes.metrics`, the squared Gaussian-TV MMD between 250
   generator scenes and a random half (250) of the real scenes, and between the two real halves, averaged over
   ``--splits`` random splits (same sample sizes on both sides, so the two figures are comparable); the same for the
   triplet total-variation distance and novel-triplet share (objects described by all four attributes, and by shape
   only). Uniqueness of the generator scenes and their novelty against the real ones.

Prints a table; ``--write`` also writes it as a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.report import print_rows
from molgen.domains.scene import SceneDomain
from molgen.scenes import metrics
from molgen.scenes.generator import generate_scenes
from molgen.scenes.io import read_clevr_scenes

CLEVR = "data/clevr/CLEVR_val_scenes_500.json"


def _round_trip(domain: SceneDomain, scenes) -> float:
    exact = 0
    for scene in scenes:
        try:
            exact += domain.from_graph(domain.to_graph(scene)) == domain.canonical(scene)
        except ValueError:
            pass
    return exact / len(scenes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=1000, help="generator scenes for the round trip")
    parser.add_argument("--splits", type=int, default=10, help="random splits the MMDs are averaged over")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="also write the table into BENCHMARKS.md")
    args = parser.parse_args()

    real = read_clevr_scenes(CLEVR)
    start = time.perf_counter()
    train = generate_scenes(2000, seed=args.seed + 1)
    generation_rate = 2000 / (time.perf_counter() - start)
    held_out = generate_scenes(args.generated, seed=args.seed + 2)
    rows: list[tuple[str, str]] = [("generator speed (scenes/s, one core)", f"{generation_rate:,.0f}")]

    for form in ("dense", "sparse"):
        domain = SceneDomain.fit(train, form=form)
        start = time.perf_counter()
        real_exact = _round_trip(domain, real)
        rate = len(real) / (time.perf_counter() - start)
        rows.append((f"round trip exact, {form}, 500 real", f"{real_exact:.2%}"))
        rows.append(
            (
                f"round trip exact, {form}, {len(held_out)} generated (held-out seed)",
                f"{_round_trip(domain, held_out):.2%}",
            )
        )
        rows.append((f"round trip speed, {form} (scenes/s)", f"{rate:,.0f}"))

    rng = np.random.default_rng(args.seed)
    pool = generate_scenes(250 * args.splits, seed=args.seed + 3)
    half_mmd: dict[str, list[float]] = {}
    gen_mmd: dict[str, list[float]] = {}
    trip: dict[str, list[float]] = {}
    for k in range(args.splits):
        order = rng.permutation(len(real))
        first, second = [real[i] for i in order[:250]], [real[i] for i in order[250:]]
        gen = pool[250 * k : 250 * (k + 1)]
        for form in ("dense", "sparse"):
            for name, value in metrics.histogram_mmds(first, second, form).items():
                half_mmd.setdefault(f"{name} ({form})", []).append(value)
            for name, value in metrics.histogram_mmds(gen, second, form).items():
                gen_mmd.setdefault(f"{name} ({form})", []).append(value)
        for attributes, label in ((("shape", "color", "material", "size"), "all attributes"), (("shape",), "shape")):
            for who, scenes in (("real half", first), ("generator", gen)):
                for name, value in metrics.triplet_metrics(scenes, second, attributes).items():
                    trip.setdefault(f"{name}, {label}: {who} vs real half", []).append(value)

    for name, halves in half_mmd.items():
        if name.startswith(("shape", "color", "material", "size", "node_count")) and name.endswith("(sparse)"):
            continue  # form-independent histograms: reported once
        half, gen = float(np.mean(halves)), float(np.mean(gen_mmd[name]))
        label = name.replace(" (dense)", "") if not name.startswith(("degree", "edge_label")) else name
        rows.append((f"MMD² {label}: generator / real half-vs-half", f"{gen:.5f} / {half:.5f} ({gen / half:.2f}x)"))
    for name, values in trip.items():
        rows.append((name, f"{np.mean(values):.3f}"))
    rows.append(("uniqueness, generator (1000)", f"{metrics.uniqueness(held_out):.2%}"))
    rows.append(("novelty of generator scenes vs the 500 real", f"{metrics.novelty(held_out, real):.2%}"))

    print_rows(rows)
    if args.write:
        from benchmarks.report import write_section

        write_section(
            "Scene-graph data: generator vs real CLEVR, round trip",
            rows,
            notes="MMD² with the Gaussian total-variation kernel (sigma 1), 250 vs 250 scenes per figure, mean over splits.",
            sample=f"500 CLEVR v1.0 validation scenes; generator seeds {args.seed + 1}..{args.seed + 3}",
        )


if __name__ == "__main__":
    main()
