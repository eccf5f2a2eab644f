"""Sampling throughput of the shipped model by network precision, timed with interleaved repeats.

    python -m benchmarks.throughput [--model checkpoints/moses] [--n 1000] [--repeats 5] [--threads 2]
                                    [--precisions fp32,bf16] [--steps N] [--restarts R]

The speed of these machines varies from one run to the next (the same bf16 run measured 37 to 57 latents/s
here within a few minutes), so one timing per setting says little. Each repeat samples ``--n`` molecules
once with every precision, in turn, and decodes them valence-aware; the table gives the median and the range
over repeats, and the median of the per-repeat speed-ups against the first precision listed. Same seed for
every run, so every precision samples the same molecule sizes. Properties are not computed. MOSES metrics
are not measured here (``benchmarks.sampling`` does that on 30,000 samples). Writes a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.report import write_section
from molgen.pipeline import MolgenPipeline, fast_bfloat16

ROOT = Path(__file__).resolve().parent.parent


def _timed_run(pipe: MolgenPipeline, args: argparse.Namespace) -> tuple[float, float, int]:
    """(prior seconds, decoding seconds, valid unique molecules) of one run of ``args.n`` samples."""
    start = time.perf_counter()
    latents = pipe.sample_latents(args.n, seed=args.seed, batch_size=args.batch_size, steps=args.steps, restarts=args.restarts)
    prior_seconds = time.perf_counter() - start
    start = time.perf_counter()
    molecules = pipe.decode(latents, batch_size=args.batch_size, decoding="valence")
    return prior_seconds, time.perf_counter() - start, len({m.smiles for m in molecules if m.smiles})


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (range {min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "moses"))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated molgen.pipeline.PRECISIONS; the first is the baseline")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's")
    parser.add_argument("--restarts", type=int, default=None, help="default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--title", default="Sampling throughput by precision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    pipes = {p: MolgenPipeline.from_pretrained(args.model, device="cpu", precision=p) for p in precisions}
    for pipe in pipes.values():  # warm-up: first calls allocate and pick kernels
        pipe.sample_latents(100, seed=args.seed, steps=2, restarts=0)

    latents_per_s = {p: [] for p in precisions}
    molecules_per_s = {p: [] for p in precisions}
    for _ in range(args.repeats):
        for precision, pipe in pipes.items():
            prior_seconds, decode_seconds, unique = _timed_run(pipe, args)
            latents_per_s[precision].append(args.n / prior_seconds)
            molecules_per_s[precision].append(unique / (prior_seconds + decode_seconds))

    baseline = precisions[0]
    rows = []
    for precision, pipe in pipes.items():
        label = f"{precision} ({str(pipe.network_dtype).removeprefix('torch.')})"
        rows.append((f"latents/s, {label}", _spread(latents_per_s[precision])))
        rows.append((f"valid unique molecules/s, valence-aware, {label}", _spread(molecules_per_s[precision])))
        if precision != baseline:
            ratios = [a / b for a, b in zip(latents_per_s[precision], latents_per_s[baseline], strict=True)]
            rows.append((f"speed-up of the prior, {precision} against {baseline} (median of paired repeats)", f"{statistics.median(ratios):.2f}x"))
    pipe = pipes[baseline]
    config = pipe.prior.config
    steps = args.steps or config.default_steps
    restarts = config.default_restarts if args.restarts is None else args.restarts
    native = "has" if fast_bfloat16(pipe.device) else "lacks"
    notes = (
        f"The model's sampling defaults otherwise: {steps} {config.default_sampler} steps + "
        f"{restarts} restart(s) = {pipe.prior_evaluations(steps, restarts)} prior evaluations per sample, "
        f"{pipe.guide_evaluations(steps, restarts)} "
        f"of them also of the guide; {args.threads} torch threads; this CPU {native} native bfloat16 (AVX512-BF16 or AMX). "
        "Decoding (tokenizer, fp32) and RDKit checks are included in molecules/s, properties are not. Each repeat runs "
        "every precision once, in the order listed, on the same seed."
    )
    sample = f"{args.n:,} samples per run, {args.repeats} repeats per precision, seed {args.seed}"
    print(write_section(args.title, rows, notes, sample=sample))


if __name__ == "__main__":
    main()
