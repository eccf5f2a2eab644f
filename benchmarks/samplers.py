"""Sampling settings of one model against each other, over several seeds: FCD/Test, raw validity and speed.

    python -m benchmarks.samplers [--model checkpoints/moses] [--settings 'default;repairs=0;calibrated=false']
                                  [--n 2000] [--seeds 7,1,2] [--threads 2] [--precision auto]

A setting is a list of :class:`molgen.sampling.SamplingConfig` fields, ``name=value`` separated by commas
(``repairs=0``, ``temperature=0.8,top_p=0.9``, ``candidates=4``, ``calibrated=false``; ``steps=10,sampler=heun``
for a set prior); settings are separated by semicolons, and ``default`` is the model's own defaults. For every
setting and seed: ``--n`` samples, FCD/Test of the valence-aware decodings, raw validity (the argmax decoding of the
same latents) and latents/s of the prior (one run each, on a machine whose speed varies from run to run). The table
gives the mean over seeds and each seed's value, so the noise of FCD at this n can be read off. ``--write`` writes it as a
section of BENCHMARKS.md; FCD on 2,000 samples is biased upward against 30,000 (``benchmarks.sampling`` measures the model's
defaults there).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import fields
from pathlib import Path

import torch

from benchmarks.report import write_section
from molgen.device import DEFAULT_PRECISION, PRECISIONS
from molgen.metrics import moses_references
from molgen.metrics.fcd import FCDStats, frechet_distance
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.sampling import SamplingConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS = "default;repairs=0;calibrated=false"
BATCH_SIZE = 1000
_BOOLEANS = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}


def parse_setting(text: str) -> dict[str, object]:
    """``"repairs=2,temperature=0.9"`` -> {"repairs": 2, "temperature": 0.9}; ``"default"`` -> {}. Values are read by
    the field's type (whole number, number, true/false, text; ``none``: the model's default); the fields are checked
    by :class:`SamplingConfig`."""
    text = text.strip()
    if text == "default":
        return {}
    types = {f.name: str(f.type) for f in fields(SamplingConfig)}
    options: dict[str, object] = {}
    for part in text.split(","):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"setting {text!r}: write name=value pairs separated by commas (e.g. repairs=2,temperature=0.9) or 'default'")
        if name not in types:
            raise ValueError(f"setting {text!r}: {name!r} is not a sampling option; the options are {sorted(types)}")
        kind = types[name]
        try:
            if value.lower() == "none" and "None" in kind:
                options[name] = None
            elif kind.startswith("bool"):
                options[name] = _BOOLEANS[value.lower()]
            elif kind.startswith("int"):
                options[name] = int(value)
            elif kind.startswith("float"):
                options[name] = float(value)
            else:
                options[name] = value
        except (KeyError, ValueError):
            raise ValueError(f"setting {text!r}: {name}={value!r} is not a {kind.split(' ')[0]}") from None
    try:
        SamplingConfig().replace(**options)  # every value checked before any sampling
    except ValueError as exc:
        raise ValueError(f"setting {text!r}: {exc}") from None
    return options


def _label(options: dict[str, object]) -> str:
    return ", ".join(f"{name}={value}" for name, value in options.items()) or "the model's defaults"


def _shown(path: str) -> str:
    """A model path as written in the report: relative to the repository when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path


def run(pipe: MolgenPipeline, options: dict[str, object], n: int, seed: int, reference) -> tuple[float, float, float]:
    """(FCD/Test valence-aware, raw validity, latents/s) of ``n`` samples."""
    start = time.perf_counter()
    latents = pipe.sample_latents(n, seed=seed, **{"batch_size": BATCH_SIZE, **options})
    seconds = time.perf_counter() - start
    valence = [m.smiles for m in pipe.decode(latents, decoding="valence") if m.smiles]
    raw = sum(m.smiles is not None for m in pipe.decode(latents, decoding="raw"))
    return frechet_distance(FCDStats.from_smiles(valence), reference.fcd), raw / n, n / seconds


def _defaults(pipe: MolgenPipeline) -> str:
    """The model's sampling defaults, as the notes give them."""
    config = pipe.prior.config
    if config.architecture != "discrete":
        return (
            f"set prior (flow matching, {config.layers} layers, d_model {config.d_model}): sampler {config.default_sampler}, "
            f"{config.default_steps} steps, noise temperature {config.default_temperature}"
        )
    text = (
        f"discrete autoregressive prior ({config.layers}-layer causal transformer, d_model {config.d_model}, a softmax over "
        f"{len(config.vocabulary):,} codes): softmax temperature {config.default_temperature}"
        + ("" if config.default_top_p == 1 else f", top-p {config.default_top_p}")
        + f", {config.default_repairs} repair pass(es) (each graph whose argmax decoding breaks a valence or falls apart keeps its "
        "tokens before its first atom at fault and draws the rest again; raw validity and FCD are measured after them)"
    )
    if pipe.calibration is not None:
        calibration = pipe.calibration.config
        text += (
            f", calibrated resampling for unconditional requests ({calibration.candidates} graphs drawn per graph kept, decoded "
            f"valence-aware, one kept with probability proportional to p_data / p_model of its {', '.join(calibration.properties)})"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="a model directory, or several separated by commas (compared)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="settings separated by semicolons, each 'default' or name=value pairs separated by commas")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", default="7,1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS)
    parser.add_argument("--title", default="Sampler settings")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    try:
        settings = [parse_setting(s) for s in args.settings.split(";") if s.strip()]
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        models = [m.strip() for m in args.model.split(",") if m.strip()]
    except ValueError as error:
        parser.error(str(error))
    if not settings or not seeds or not models:
        parser.error("give at least one setting, seed and model")
    torch.set_num_threads(args.threads)
    reference = moses_references(n_jobs=2).test
    rows, notes = [], []
    for model in models:
        pipe = MolgenPipeline.from_pretrained(model, device="cpu", precision=args.precision)
        pipe.sample_latents(100, seed=0)  # warm-up: first calls allocate and pick kernels
        prefix = f"{_shown(model)}: " if len(models) > 1 else ""
        for options in settings:
            results = [run(pipe, options, args.n, seed, reference) for seed in seeds]
            fcd, valid, speed = zip(*results, strict=True)
            rows.append((
                f"{prefix}{_label(options)}: FCD/Test mean (per seed) / raw validity / latents/s",
                f"{statistics.mean(fcd):.2f} ({', '.join(f'{f:.2f}' for f in fcd)}) / {statistics.mean(valid):.1%} / {statistics.median(speed):.0f}",
            ))  # fmt: skip
            print(rows[-1], flush=True)
        notes.append(f"Model: {_shown(model)}, {_defaults(pipe)}; networks with precision {args.precision} ({pipe.network_dtype}).")
    notes.append(
        f"Each row names the sampling options it changes (molgen.sampling.SamplingConfig; the rest are the model's defaults). "
        f"Batches of {BATCH_SIZE:,}. FCD/Test of the valence-aware decodings against MOSES test, per seed in the order "
        f"{', '.join(map(str, seeds))}; raw validity = argmax decoding of the same latents; latents/s = median over seeds, "
        "prior only (with its repair passes and, for resampled rows, the candidates' decoding, which the choice needs)."
    )
    print(write_section(args.title, rows, " ".join(notes), sample=f"{args.n:,} samples per setting and seed, seeds {', '.join(map(str, seeds))}"))


if __name__ == "__main__":
    main()
