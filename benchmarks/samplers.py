"""Sampling settings of one model against each other: steps, restarts and restart strength, over several seeds.

    python -m benchmarks.samplers [--model checkpoints/moses] [--settings 14+2@0.5,10+3@0.6] [--n 2000]
                                  [--seeds 7,1,2] [--temperature T] [--autoguidance W] [--validity-guidance V] [--threads 2]

A setting is ``STEPS+RESTARTS@STRENGTH/TEMPERATURE~RESTART_TEMPERATURE%TOP_P`` (``@STRENGTH`` optional: the model's
``restart_strength``; ``/TEMPERATURE`` optional: ``--temperature``, else the model's noise temperature;
``~RESTART_TEMPERATURE`` optional: the model's ``restart_temperature``, else the temperature; ``%TOP_P`` optional,
a discrete prior's nucleus share, else the model's ``default_top_p``), sampled with the
model's default sampler. For every setting and seed: ``--n`` samples, FCD/Test of the valence-aware
decodings, raw validity, and latents/s of the prior (one run each, on a machine whose speed varies from run to
run: the evaluations per sample are the stable cost figure). The table gives the mean over seeds and each
seed's value, so the noise of FCD at this n can be read off. Writes a section of BENCHMARKS.md; FCD on 2,000
samples is biased upward against 30,000 (``benchmarks.sampling`` measures the chosen default there).

``--recovery-levels 0.3,0.5,...`` adds where along the schedule the prior is accurate: MOSES test molecules
(``--recovery-n``) are encoded, noised to each level (at the model's noise temperature) and denoised with the
model's steps, as a restart from that level would; the table gives how often the raw decoding is the same
molecule, and its raw validity.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from benchmarks.report import write_section
from molgen.metrics import moses_references
from molgen.metrics.fcd import FCDStats, frechet_distance
from molgen.calibration import CALIBRATED
from molgen.pipeline import DEFAULT_PRECISION, MolgenPipeline

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS = "14+2@0.5,10+3@0.6,14+2@0.65,12+2@0.6,10+2@0.6,14+0@0.5,20+0@0.5"


@dataclass(frozen=True)
class Setting:
    steps: int
    restarts: int
    strength: float | None
    temperature: float | None = None
    restart_temperature: float | None = None
    top_p: float | None = None

    @classmethod
    def parse(cls, text: str) -> Setting:
        match = re.fullmatch(r"\s*(\d+)\+(\d+)(?:@([0-9.]+))?(?:/([0-9.]+))?(?:~([0-9.]+))?(?:%([0-9.]+))?\s*", text)
        if not match:
            raise ValueError(
                f"setting {text!r}: write STEPS+RESTARTS[@STRENGTH][/TEMPERATURE][~RESTART_TEMPERATURE][%TOP_P], e.g. 10+3@0.6, 10+3@0.6/0.8~0.5 or 1+0/0.9%0.9"
            )
        strength = float(match[3]) if match[3] else None
        if strength is not None and not 0 < strength < 1:
            raise ValueError(f"setting {text!r}: the restart strength must be strictly between 0 and 1")
        temperature, restart_temperature = (float(m) if m else None for m in (match[4], match[5]))
        if any(t is not None and not t > 0 for t in (temperature, restart_temperature)):
            raise ValueError(f"setting {text!r}: temperatures must be positive")
        top_p = float(match[6]) if match[6] else None
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"setting {text!r}: the nucleus share (top-p) must be in (0, 1]")
        return cls(int(match[1]), int(match[2]), strength, temperature, restart_temperature, top_p)

    def label(self, pipe: MolgenPipeline, temperature: float | None) -> str:
        strength = pipe.prior.config.restart_strength if self.strength is None else self.strength
        label = f"{self.steps} + {self.restarts} @ {strength:g}" if self.restarts else f"{self.steps} + 0"
        temperature = self.temperature if self.temperature is not None else temperature
        if temperature is not None:
            label += f", temperature {temperature:g}"
        top_p = pipe.prior.config.default_top_p if self.top_p is None else self.top_p
        if top_p < 1:
            label += f", top-p {top_p:g}"
        restart = self.restart_temperature if self.restart_temperature is not None else pipe.prior.config.restart_temperature
        return label if restart is None or not self.restarts else f"{label}, restart temperature {restart:g}"


def _shown(path: str) -> str:
    """A model path as written in the report: relative to the repository when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path


def run(
    pipe: MolgenPipeline, setting: Setting, n: int, seed: int, temperature: float | None, reference, autoguidance: float | None = None,
    discriminator: float | None = None, validity: float = 0.0, calibrated: bool | None = None,
) -> tuple[float, float, float]:
    """(FCD/Test valence-aware, raw validity, latents/s) of ``n`` samples."""
    start = time.perf_counter()
    latents = pipe.sample_latents(
        n, seed=seed, batch_size=1000, steps=setting.steps, restarts=setting.restarts, restart_strength=setting.strength,
        temperature=setting.temperature if setting.temperature is not None else temperature, restart_temperature=setting.restart_temperature,
        autoguidance=autoguidance, discriminator_guidance=discriminator, validity_guidance=validity, top_p=setting.top_p, calibrated=calibrated,
    )
    seconds = time.perf_counter() - start
    valence = [m.smiles for m in pipe.decode(latents, decoding="valence") if m.smiles]
    raw = sum(m.smiles is not None for m in pipe.decode(latents, decoding="raw"))
    return frechet_distance(FCDStats.from_smiles(valence), reference.fcd), raw / n, n / seconds


def recovery(pipe: MolgenPipeline, levels: list[float], n: int) -> list[tuple[str, str]]:
    """Rows: share of ``n`` MOSES test molecules that come back unchanged (and raw validity) after noising to
    each level and denoising."""
    smiles = pd.read_csv(ROOT / "data" / "moses" / "test.csv.gz")["SMILES"].sample(n, random_state=1).tolist()
    canonical = [pipe.domain.canonical(s) for s in smiles]
    latents = pipe.encode(smiles)
    rows = []
    for level in levels:
        out = pipe.decode(pipe.sample_latents(n, seed=3, start=latents, strength=level), decoding="raw")
        same = sum(m.smiles == c for m, c in zip(out, canonical, strict=True)) / n
        valid = sum(m.smiles is not None for m in out) / n
        rows.append((f"noised to {level:g} and denoised: same molecule / raw validity", f"{same:.1%} / {valid:.1%}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "moses"), help="a model directory, or several separated by commas (compared)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="comma-separated STEPS+RESTARTS[@STRENGTH]")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", default="7,1,2")
    parser.add_argument("--temperature", type=float, default=None, help="default: the model's")
    parser.add_argument("--autoguidance", default=None, help="weight against the model's guide prior, or several separated by commas (default: the model's; 1: off)")
    parser.add_argument(
        "--discriminator-guidance", default=None,
        help="discriminator guidance weight, or several separated by commas (default: the model's; 0: off; needs discriminator/)",
    )
    parser.add_argument(
        "--validity-guidance", default="0",
        help="validity guidance step size, or several separated by commas (0: off; an autoregressive prior repairs its finished tokens with it)",
    )
    parser.add_argument("--candidates", default=None, help="a discrete prior's resampling: graphs drawn per graph kept, or several separated by commas (default: the discriminator's)")
    parser.add_argument(
        "--calibration", default="auto",
        help="calibrated resampling (molgen.calibration): auto (the model's default), on or off, or several separated by commas",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default=DEFAULT_PRECISION)
    parser.add_argument("--recovery-levels", default="", help="comma-separated noise levels in (0, 1) for the recovery rows (default: none)")
    parser.add_argument("--recovery-n", type=int, default=300, help="MOSES test molecules for the recovery rows")
    parser.add_argument("--title", default="Sampler settings: steps, restarts and restart strength")
    args = parser.parse_args()
    try:
        settings = [Setting.parse(s) for s in args.settings.split(",") if s.strip()]
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        levels = [float(s) for s in args.recovery_levels.split(",") if s.strip()]
        weights = [None] if args.autoguidance is None else [float(s) for s in args.autoguidance.split(",") if s.strip()]
        if any(w is not None and not w > 0 for w in weights):
            raise ValueError(f"--autoguidance {args.autoguidance}: each weight must be > 0 (1: off)")
        pushes = [None] if args.discriminator_guidance is None else [float(s) for s in args.discriminator_guidance.split(",") if s.strip()]
        if any(d is not None and not d >= 0 for d in pushes):
            raise ValueError(f"--discriminator-guidance {args.discriminator_guidance}: each weight must be >= 0 (0: off)")
        groups = [None] if args.candidates is None else [int(s) for s in args.candidates.split(",") if s.strip()]
        if any(k is not None and k < 1 for k in groups):
            raise ValueError(f"--candidates {args.candidates}: each must be a whole number >= 1")
        calibrations = [s.strip() for s in args.calibration.split(",") if s.strip()]
        if not calibrations or any(c not in CALIBRATED for c in calibrations):
            raise ValueError(f"--calibration {args.calibration}: each must be one of {sorted(CALIBRATED)}")
        validities = [float(s) for s in args.validity_guidance.split(",") if s.strip()]
        if any(not v >= 0 for v in validities):
            raise ValueError(f"--validity-guidance {args.validity_guidance}: each step size must be >= 0 (0: off)")
        models = [m.strip() for m in args.model.split(",") if m.strip()]
        if any(not 0 < level < 1 for level in levels):
            raise ValueError(f"--recovery-levels {args.recovery_levels}: each level must be strictly between 0 and 1")
    except ValueError as error:
        parser.error(str(error))
    torch.set_num_threads(args.threads)
    reference = moses_references(n_jobs=2).test
    rows, notes = [], []
    for model in models:
        pipe = MolgenPipeline.from_pretrained(model, device="cpu", precision=args.precision)
        config = pipe.prior.config
        pipe.sample_latents(100, seed=0, steps=2, restarts=0)  # warm-up
        prefix = f"{_shown(model)}: " if len(models) > 1 else ""
        rows += [(prefix + label, value) for label, value in recovery(pipe, levels, args.recovery_n)] if levels else []
        shipped_candidates = None if pipe.discriminator is None else pipe.discriminator.config.candidates
        for weight, push, validity, group, calibration in itertools.product(weights, pushes, validities, groups, calibrations):
            if pipe.discriminator is not None:
                pipe.discriminator.config.candidates = shipped_candidates if group is None else group
            guided = pipe.guide is not None and (config.default_autoguidance if weight is None else weight) != 1
            shown_weight = f", autoguidance {config.default_autoguidance if weight is None else weight:g}" if pipe.guide is not None else ""
            strength = None if pipe.discriminator is None else (pipe.discriminator.config.default_scale if push is None else push)
            resampled = config.architecture == "discrete" and bool(strength)
            if resampled:
                shown_weight += f", discriminator resampling {strength:g} of {pipe.discriminator.config.candidates} candidates"
            elif pipe.discriminator is not None:
                shown_weight += f", discriminator {'resampling' if config.architecture == 'discrete' else 'guidance'} {strength:g}"
            if validity:
                shown_weight += f", validity guidance {validity:g}"
            calibrated = pipe.calibration is not None and CALIBRATED[calibration] is not False and config.architecture == "discrete"
            if calibrated:
                shown_weight += f", calibrated ({max(pipe.calibration.config.candidates, pipe.discriminator.config.candidates if resampled else 1)} candidates)"
            elif pipe.calibration is not None:
                shown_weight += ", uncalibrated"
            for setting in settings:
                results = [run(pipe, setting, args.n, seed, args.temperature, reference, weight, push, validity, CALIBRATED[calibration]) for seed in seeds]
                fcd, valid, speed = zip(*results, strict=True)
                if config.architecture == "autoregressive":  # per token: one causal-transformer pass, then the head's steps
                    evaluations = f"per token 1 + {setting.steps} head"
                elif config.architecture == "discrete":  # per token: one causal-transformer pass and a softmax; R repair passes
                    evaluations = "per token 1" + (f", {setting.restarts} repair passes" if setting.restarts else "")
                else:
                    evaluations = str(pipe.prior_evaluations(setting.steps, setting.restarts, setting.strength))
                if guided and config.architecture == "discrete":
                    evaluations += " + 1 guide per token"
                if resampled:
                    evaluations = f"{pipe.discriminator.config.candidates} graphs x ({evaluations}) + 1 discriminator per graph"
                    if calibrated:
                        evaluations += ", each decoded and its rings counted"
                elif calibrated:
                    evaluations = f"{pipe.calibration.config.candidates} graphs x ({evaluations}), each decoded and its rings counted"
                elif guided and (guide := pipe.guide_evaluations(setting.steps, setting.restarts, weight, setting.strength)):
                    evaluations += f" + {guide} guide"
                rows.append((
                    f"{prefix}{setting.label(pipe, args.temperature)}{shown_weight}: evaluations / FCD/Test mean (per seed) / raw validity / latents/s",
                    f"{evaluations} / {statistics.mean(fcd):.2f} ({', '.join(f'{f:.2f}' for f in fcd)}) / "
                    f"{statistics.mean(valid):.1%} / {statistics.median(speed):.0f}",
                ))  # fmt: skip
                print(rows[-1], flush=True)
        temperature = config.default_temperature if args.temperature is None else args.temperature
        guide_note = (
            f"guide prior {config.autoguidance_interval} noise levels (autoguidance weight in each row; 1: off)" if pipe.guide is not None else "no guide prior"
        )
        if pipe.discriminator is not None:
            record = json.loads((Path(model) / "discriminator" / "training.json").read_text())
            guide_note += (
                f"; a discriminator (molgen.prior.discriminator, d_model {pipe.discriminator.config.d_model}, {pipe.discriminator.config.layers} "
                f"layers, {record['global_step']:,} steps on {record['generated']['samples']:,} of the prior's samples against as many "
                f"MOSES train latents; val accuracy {record['val'].get('val/accuracy', float('nan')):.3f}; guidance weight in each row, 0: off)"
            )
            if config.architecture == "discrete":
                guide_note = guide_note.replace(
                    "guidance weight in each row, 0: off", "it reads finished graphs; resampling: per graph kept, K graphs drawn and one kept "
                    "with probability proportional to exp(weight x logit), weight and K in each row, 0: off",
                )  # fmt: skip
        if pipe.calibration is not None:
            calibration = pipe.calibration.config
            means = "; ".join(f"{name} {data:.2f} in the data, {model:.2f} in its samples" for name, (data, model) in pipe.calibration.means().items())
            guide_note += (
                f"; a calibration (molgen.calibration: histograms of {', '.join(calibration.properties)} over "
                f"{calibration.sampling.get('data_items', 0):,} MOSES train molecules and {calibration.sampling.get('samples', 0):,} uncalibrated samples "
                f"of the prior, per graph: {means}); calibrated rows draw K graphs per graph kept, decode them (valence-aware) and keep one "
                "with probability proportional to p_data / p_model of its counts"
            )
        kind = " (self-conditioned prior)" if config.self_condition else ""
        if config.architecture == "autoregressive":
            kind = (
                f" (autoregressive prior: {config.layers}-layer causal transformer, d_model {config.d_model}, and a per-token flow head of "
                f"width {config.head_width}, {config.head_blocks} blocks; 'S + 0' = S head steps per token, no restarts)"
            )
        if config.architecture == "discrete":
            kind = (
                f" (discrete autoregressive prior: {config.layers}-layer causal transformer, d_model {config.d_model}, a softmax over "
                f"{len(config.vocabulary):,} codes; the temperature divides the log-probabilities; steps and restart strengths do not apply; 'S + R' = R repair passes: "
                "each graph whose argmax decoding breaks a valence or falls apart keeps its tokens before its first atom at fault and draws "
                "the rest again, raw validity and FCD measured after them)"
            )
        notes.append(
            f"Model: {_shown(model)}{kind}, {guide_note}; "
            f"sampler {config.default_sampler} (the model's default), noise temperature {temperature} unless the setting names one, "
            f"precision {args.precision} ({pipe.network_dtype})."
        )
    if any(validities):
        notes.append(
            "Validity guidance (molgen.guidance): a set prior takes it over the last half of the steps; an autoregressive "
            "prior takes as many passes of it as it has head steps over its finished tokens; only graphs whose raw decoding is broken move."
        )
    notes = " ".join(notes) + (
        f" Batches of 1,000. Setting 'S + R @ x' = S scheduler steps, "
        f"then R restarts, each noising the latents back to the scheduler's first noise level at or below x and "
        f"denoising from there (`--steps S --restarts R --restart-strength x`); evaluations = prior network runs per "
        f"sample (the cost; '+ G guide' = the guide prior's runs too). FCD/Test of the valence-aware decodings against MOSES test, per seed in the order "
        f"{', '.join(map(str, seeds))}; raw validity = argmax decoding of the same latents; latents/s = median over "
        f"seeds, prior only (calibrated rows: with the candidates' decoding, which the choice needs)."
    )
    if levels:
        notes += (
            f" Recovery rows: {args.recovery_n} MOSES test molecules (random_state 1), encoded, noised to the level with the "
            f"model's noise temperature and denoised over the model's default-step schedule from there (no "
            f"restarts), raw decoding compared with the canonical input."
        )
    write_section(args.title, rows, notes, sample=f"{args.n:,} samples per setting and seed, seeds {', '.join(map(str, seeds))}")


if __name__ == "__main__":
    main()
