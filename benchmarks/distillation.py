"""A distilled student prior (``molgen train distill``) against its autoguided teacher.

    python -m benchmarks.distillation --student runs/distill/model [--teacher checkpoints/moses] [--n 2000]
                                      [--seed 7] [--threads 2]

1. How much of autoguidance's correction the student has learned, by noise level: on 512 MOSES test molecules
   (encoded, noised with the teacher's sampling temperature, no property conditions), the mean square of the
   autoguided target ``guide + w (teacher - guide)``, and the mean squared error from it of the teacher alone
   and of the student.
2. Sampling: ``--n`` samples from each with its own defaults (same seed), FCD/Test of the valence-aware
   decodings, raw validity, and speed (latents/s from the prior; valid unique molecules/s including decoding).

Writes a section of BENCHMARKS.md. FCD on 2,000 samples is biased upward against 30,000 (``benchmarks.sampling``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.report import training_chain, write_section
from molgen.metrics import moses_references
from molgen.metrics.fcd import FCDStats, frechet_distance
from molgen.pipeline import DEFAULT_PRECISION, MolgenPipeline
from molgen.prior.distillation import GuidanceDistillation

ROOT = Path(__file__).resolve().parent.parent
TIMES = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


@torch.no_grad()
def correction_errors(teacher: MolgenPipeline, student: MolgenPipeline, smiles: list[str], seed: int) -> list[tuple[str, str]]:
    """Rows of the autoguided target's mean square and the teacher's and student's errors from it, by noise level."""
    config = teacher.prior.config
    low, high = config.autoguidance_interval
    target = GuidanceDistillation(config.to_dict(), config.to_dict(), teacher.guide.config.to_dict(), config.default_autoguidance, (low, high))
    target.load_teacher(teacher.prior, teacher.guide)
    latents = teacher.encode(smiles)
    mean, std = torch.tensor(config.latent_mean), torch.tensor(config.latent_std)
    mask = latents.mask.bool()
    real = mask.unsqueeze(-1).float()
    z = (latents.z - mean) / std * real
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed)) * config.default_temperature * real
    none = torch.zeros(len(z), config.num_properties)
    rows = []
    for level in TIMES:
        t = torch.full((len(z),), level)
        x = (1 - level) * z + level * noise
        goal = target.regression_target(x, t, mask, none, none.bool(), None)

        def mse(prediction: torch.Tensor) -> float:
            return float(((prediction.float() - goal) ** 2 * real).sum() / (real.sum() * config.latent_dim))

        alone, ours = mse(teacher.prior(x, t, mask)), mse(student.prior(x, t, mask))
        learned = f"{1 - ours / alone:.0%}" if low <= level <= high else "n/a (outside the interval: the teacher alone)"
        rows.append((f"t = {level}: target mean square / teacher-alone error / student error / correction learned",
                     f"{mse(torch.zeros_like(goal)):.3f} / {alone:.3f} / {ours:.3f} / {learned}"))  # fmt: skip
    return rows


def sampling_rows(name: str, pipe: MolgenPipeline, n: int, seed: int, reference) -> list[tuple[str, str]]:
    start = time.perf_counter()
    latents = pipe.sample_latents(n, seed=seed, batch_size=1000)
    prior_seconds = time.perf_counter() - start
    start = time.perf_counter()
    valence = pipe.decode(latents, decoding="valence")
    decode_seconds = time.perf_counter() - start
    raw = pipe.decode(latents, decoding="raw")
    smiles = [m.smiles for m in valence if m.smiles]
    fcd = frechet_distance(FCDStats.from_smiles(smiles), reference.fcd)
    config = pipe.prior.config
    evaluations = f"{pipe.prior_evaluations()} prior + {pipe.guide_evaluations()} guide evaluations per sample"
    return [
        (f"{name}: FCD/Test (valence-aware)", f"{fcd:.2f}"),
        (f"{name}: valid (raw decoding)", f"{sum(m.smiles is not None for m in raw) / n:.4f}"),
        (f"{name}: latents/s", f"{n / prior_seconds:.1f}"),
        (f"{name}: valid unique molecules/s", f"{len(set(smiles)) / (prior_seconds + decode_seconds):.1f}"),
        (f"{name}: sampling", f"{config.default_sampler} {config.default_steps} steps + {config.default_restarts} restarts, {evaluations}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", required=True, help="model directory of the distilled student")
    parser.add_argument("--teacher", default=str(ROOT / "checkpoints" / "moses_teacher"), help="model directory with the teacher prior and its guide")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default=DEFAULT_PRECISION)
    parser.add_argument("--title", default="Guidance distillation: student against its autoguided teacher")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher = MolgenPipeline.from_pretrained(args.teacher, device="cpu", precision=args.precision)
    student = MolgenPipeline.from_pretrained(args.student, device="cpu", precision=args.precision)
    if teacher.guide is None:
        raise SystemExit(f"--teacher {args.teacher}: no guide/ in it; the student is measured against the autoguided teacher")
    test = pd.read_csv(ROOT / "data" / "moses" / "test.csv.gz")["SMILES"].sample(512, random_state=0).tolist()
    rows = correction_errors(MolgenPipeline.from_pretrained(args.teacher, device="cpu", precision="fp32"),
                             MolgenPipeline.from_pretrained(args.student, device="cpu", precision="fp32"), test, args.seed)  # fmt: skip
    reference = moses_references(n_jobs=2).test
    for name, pipe in (("teacher", teacher), ("student", student)):
        pipe.sample_latents(100, seed=args.seed, steps=2, restarts=0)  # warm-up
        rows += sampling_rows(name, pipe, args.n, args.seed, reference)
    record = json.loads((Path(args.student) / "prior" / "training.json").read_text())
    seconds, steps, runs = training_chain(record)
    notes = (
        f"Student: {args.student} (activation {student.prior.config.activation}; distilled for {seconds / 3600:.2f} h, "
        f"{steps:,} steps of {record['settings']['batch_size']} in {runs} run(s)); teacher: {args.teacher} (autoguidance "
        f"{teacher.prior.config.default_autoguidance} at noise levels {teacher.prior.config.autoguidance_interval}). "
        f"Errors in float32 on 512 MOSES test molecules noised at the sampling temperature {teacher.prior.config.default_temperature}, "
        f"unconditional; 'correction learned' = 1 - student error / teacher-alone error. Sampling with precision "
        f"{args.precision} ({teacher.network_dtype}), seed {args.seed}, each model's own defaults."
    )
    write_section(args.title, rows, notes, sample=f"{args.n:,} samples per model; 512 MOSES test molecules for the errors")


if __name__ == "__main__":
    main()
