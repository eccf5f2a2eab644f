"""Sampling throughput of a model (default: the shipped one) by network precision, timed with interleaved repeats.

    python -m benchmarks.throughput [--model checkpoints/moses] [--n 1000] [--repeats 5] [--threads 2]
                                    [--precisions fp32,bf16] [--repairs R] [--steps N]

The speed of a shared machine varies from one run to the next (the same run can differ by half within a few
minutes), so one timing per setting says little. Each repeat samples ``--n`` molecules
once with every precision, in turn, and decodes them valence-aware; the table gives the median and the range
over repeats, and the median of the per-repeat speed-ups against the first precision listed. Same seed for
every run, so every precision samples the same molecule sizes. Properties are not computed, nor MOSES metrics
(``benchmarks.sampling`` measures those on 30,000 samples). ``--write`` writes it as a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.report import write_section
from molgen.device import PRECISIONS, fast_bfloat16
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.sampling import SamplingConfig


def _timed_run(pipe: MolgenPipeline, n: int, sampling: SamplingConfig, seed: int) -> tuple[float, float, int]:
    """(prior seconds, decoding seconds, valid unique molecules) of one run of ``n`` samples."""
    start = time.perf_counter()
    latents = pipe.sample_latents(n, sampling, seed=seed)
    prior_seconds = time.perf_counter() - start
    start = time.perf_counter()
    molecules = pipe.decode(latents, batch_size=sampling.batch_size, decoding="valence")
    return prior_seconds, time.perf_counter() - start, len({m.smiles for m in molecules if m.smiles})


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (range {min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default="fp32,bf16", help=f"comma-separated, of {', '.join(PRECISIONS)}; the first is the baseline")
    parser.add_argument("--repairs", type=int, default=None, help="a discrete prior's repair passes (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="a set prior's scheduler steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--title", default="Sampling throughput by precision")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        parser.error(f"--precisions {args.precisions}: each must be one of {', '.join(PRECISIONS)}")
    try:
        sampling = SamplingConfig(repairs=args.repairs, steps=args.steps, batch_size=args.batch_size)
    except ValueError as error:
        parser.error(str(error))
    torch.set_num_threads(args.threads)
    pipes = {p: MolgenPipeline.from_pretrained(args.model, device="cpu", precision=p) for p in precisions}
    for pipe in pipes.values():  # warm-up: first calls allocate and pick kernels
        pipe.sample_latents(100, sampling, seed=args.seed)

    latents_per_s = {p: [] for p in precisions}
    molecules_per_s = {p: [] for p in precisions}
    for _ in range(args.repeats):
        for precision, pipe in pipes.items():
            prior_seconds, decode_seconds, unique = _timed_run(pipe, args.n, sampling, args.seed)
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
    if config.architecture == "discrete":
        repairs = config.default_repairs if args.repairs is None else args.repairs
        setting = f"discrete prior, softmax temperature {config.default_temperature}, {repairs} repair pass(es)"
        if pipe.calibration is not None:
            setting += f", calibrated resampling of {pipe.calibration.config.candidates} candidates (their decoding is in the prior's time)"
    else:
        steps = config.default_steps if args.steps is None else args.steps
        setting = f"set prior, {config.default_sampler} sampler, {steps} steps"
    native = "has" if fast_bfloat16(pipe.device) else "lacks"
    notes = (
        f"The model's sampling defaults otherwise: {setting}; {args.threads} torch threads; this CPU {native} native bfloat16 (AVX512-BF16 or AMX). "
        "Decoding (tokenizer, fp32) and RDKit checks are included in molecules/s, properties are not. Each repeat runs "
        "every precision once, in the order listed, on the same seed."
    )
    sample = f"{args.n:,} samples per run, {args.repeats} repeats per precision, seed {args.seed}"
    print(write_section(args.title, rows, notes, sample=sample))


if __name__ == "__main__":
    main()
