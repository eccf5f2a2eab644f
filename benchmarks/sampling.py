"""Sampling from a model (default: the shipped one): MOSES metrics on 30,000 samples, validity of both decodings,
throughput, peak memory, and the training time of each stage.

    python -m benchmarks.sampling [--model checkpoints/moses] [--n 30000] [--repairs R] [--temperature T] [--seed 0]
                                  [--calibration auto|on|off] [--precision auto|fp32|bf16]

The same sampled latents are decoded twice, raw (argmax) and valence-aware, and each decoding gets its own
column of figures (they are never mixed). For a discrete prior with repair passes, the raw validity without them
(and without calibrated resampling) is also measured on ``--unrepaired-n`` samples. Throughput counts valid unique
molecules per second of wall time for prior + decoding (properties not computed). ``--write`` writes it as a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.report import training_chain, write_section
from molgen.calibration import CALIBRATED
from molgen.device import DEFAULT_PRECISION, PRECISIONS, fast_bfloat16
from molgen.metrics import compute_metrics, moses_references, ring_statistics
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.sampling import SamplingConfig

ROOT = Path(__file__).resolve().parent.parent

LABELS = {"unique@1000": "unique@1k", "unique@10000": "unique@10k"}  # molgen.metrics keys -> the names MOSES reports
METRICS = [
    "valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "FCD/TestSF", "SNN/TestSF",
    "Frag/TestSF", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty", "logP", "SA", "QED", "weight",
]  # fmt: skip


RING_UNITS = {
    "rings": "per molecule", "aromatic rings": "per molecule", "no aromatic ring": "(share of molecules)",
    "unusual ring sizes": "(share of rings with 3, 4 or 7+ atoms)",
}  # fmt: skip


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=None, help="a discrete prior's softmax temperature; a set prior's noise temperature (default: the model's)")
    parser.add_argument("--top-p", type=float, default=None, help="a discrete prior's nucleus share (default: the model's)")
    parser.add_argument("--repairs", type=int, default=None, help="a discrete prior's repair passes (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="a set prior's scheduler steps (default: the model's)")
    parser.add_argument("--sampler", default=None, help="a set prior's scheduler (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--unrepaired-n", type=int, default=5000, help="samples without repair passes or calibration, for the raw validity without them (0: skip)")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS, help="how the prior networks run")
    parser.add_argument(
        "--calibration", choices=sorted(CALIBRATED), default="auto",
        help="calibrated resampling (molgen.calibration; auto: the model's default, on when it has calibration/)",
    )  # fmt: skip
    parser.add_argument("--title", default="Sampling and MOSES metrics, shipped model")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    try:
        sampling = SamplingConfig(
            temperature=args.temperature, top_p=args.top_p, repairs=args.repairs, steps=args.steps, sampler=args.sampler,
            batch_size=args.batch_size, calibrated=CALIBRATED[args.calibration],
        )  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu", precision=args.precision)
    # the training record of the weights just loaded (read now: the directory may change during a long run)
    training_rows, weights = [], "EMA weights"
    for stage in ("tokenizer", "prior"):
        training = json.loads((Path(args.model) / stage / "training.json").read_text())
        if stage == "prior" and "weights" in training:  # e.g. scripts/export_last_weights.py: the trained network, not its average
            weights = f"{training['weights']} weights"
        s, n_steps, runs = training_chain(training)
        training_rows.append((f"training time, {stage}", f"{s / 3600:.2f} h, {n_steps:,} steps in {runs} run(s)"))
    config = pipe.prior.config
    discrete = config.architecture == "discrete"
    temperature = config.default_temperature if args.temperature is None else args.temperature
    top_p = config.default_top_p if args.top_p is None else args.top_p
    repairs = (config.default_repairs if args.repairs is None else args.repairs) if discrete else 0
    steps = config.default_steps if args.steps is None else args.steps
    calibration = pipe.calibration if discrete and sampling.calibrated is not False else None
    if discrete:  # what the throughput rows were sampled with
        setting = f"softmax temperature {temperature}" + ("" if top_p == 1 else f", top-p {top_p}") + (f", {repairs} repair passes" if repairs else "")
    else:
        setting = f"{args.sampler or config.default_sampler} sampler, {steps} steps, noise temperature {temperature}"
    resampling_note = ""
    if calibration is not None:
        calibration_config = calibration.config
        setting += f", calibrated resampling of {calibration_config.candidates} candidates"
        means = "; ".join(f"{name} {data:.2f} in the data, {model:.2f} in its samples" for name, (data, model) in calibration.means().items())
        resampling_note = (
            f"Calibrated resampling (molgen.calibration): for every graph returned, {calibration_config.candidates} graphs are drawn, "
            f"decoded (valence-aware) and one kept with probability proportional to p_data(s) / p_model(s) of its statistics s "
            f"({', '.join(calibration_config.properties)}), from the histograms in the model's calibration/ "
            f"({calibration_config.sampling.get('data_items', '?'):,} MOSES train molecules against {calibration_config.sampling.get('samples', '?'):,} "
            f"uncalibrated samples of this prior, seed {calibration_config.sampling.get('seed', '?')}; pseudo-count "
            f"{calibration_config.pseudo_count:g}, |log ratio| <= {calibration_config.max_log_ratio:g}; per graph: {means}); the candidates' "
            "decoding is in the prior sampling time, so the throughput rows count the kept graphs' decoding twice "
            "(molgen sample reuses it). "
        )

    # 1. Sample latents once (timed), then decode them both ways (timed separately).
    start = time.time()
    latents = pipe.sample_latents(args.n, sampling, seed=args.seed)
    prior_seconds = time.time() - start
    decoded, seconds = {}, {}
    for decoding in ("raw", "valence"):
        start = time.time()
        decoded[decoding] = pipe.decode(latents, batch_size=args.batch_size, decoding=decoding)
        seconds[decoding] = time.time() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # 2. MOSES metrics of each decoding against MOSES test / test scaffolds / train (references cached).
    refs = moses_references(n_jobs=2)
    metrics = {}
    for decoding, molecules in decoded.items():
        metrics[decoding] = compute_metrics([m.smiles for m in molecules], refs.test, refs.test_scaffolds, refs.train, n_jobs=2)
    rows = [
        (LABELS.get(name, name), f"{_fmt(metrics['raw'].get(name))} (raw) / {_fmt(metrics['valence'].get(name))} (valence-aware)")
        for name in METRICS
    ]
    test_sample = pd.read_csv(ROOT / "data" / "moses" / "test.csv.gz")["SMILES"].sample(min(args.n, 20_000), random_state=0).tolist()
    ring_figures = {**{k: ring_statistics(m.smiles for m in v) for k, v in decoded.items()}, "test": ring_statistics(test_sample)}
    for name in ("rings", "aromatic rings", "no aromatic ring", "unusual ring sizes"):
        figures = {k: f"{v[name]:.3f}" for k, v in ring_figures.items()}
        rows.append((f"{name} {RING_UNITS[name]}", f"{figures['raw']} (raw) / {figures['valence']} (valence-aware); MOSES test {figures['test']}"))
    n_valid = {k: sum(m.smiles is not None for m in v) for k, v in decoded.items()}
    rows.insert(1, ("valid molecules (count)", f"{n_valid['raw']:,} (raw) / {n_valid['valence']:,} (valence-aware)"))
    for decoding, molecules in decoded.items():
        unique = len({m.smiles for m in molecules if m.smiles})
        rows.append((f"valid unique molecules/s, {decoding} ({setting})", f"{unique / (prior_seconds + seconds[decoding]):.0f}"))

    # 3. Raw validity of the same prior without its repair passes (and calibration).
    if args.unrepaired_n and repairs:
        plain = pipe.sample_latents(args.unrepaired_n, sampling.replace(repairs=0, calibrated=False), seed=args.seed)
        raw_valid = sum(m.smiles is not None for m in pipe.decode(plain, batch_size=args.batch_size, decoding="raw")) / args.unrepaired_n
        without = "repair passes" + (" or calibration" if pipe.calibration is not None else "")
        rows.insert(2, (f"valid without {without} (raw, {args.unrepaired_n:,} samples)", f"{raw_valid:.4f}"))
    rows.append(("prior sampling time", f"{prior_seconds:.1f} s for {args.n:,} ({args.n / prior_seconds:.0f} latents/s)"))
    rows += [(f"decoding time, {k}", f"{v:.1f} s") for k, v in seconds.items()]
    rows.append(("peak memory (RSS)", f"{peak_mb:.0f} MB"))
    rows += training_rows

    params = sum(p.numel() for p in pipe.prior.parameters())
    native = "has" if fast_bfloat16(pipe.device) else "lacks"
    precision_note = f"networks run with precision {args.precision} (this CPU {native} native bfloat16: {pipe.network_dtype})"
    if discrete:
        prior_note = (
            f"discrete autoregressive (a causal transformer over the canonical token order; each token drawn from a softmax over "
            f"the {len(config.vocabulary):,} codes of the quantised tokenizer seen in training, given the tokens before it; the "
            f"temperature divides the log-probabilities), d_model {config.d_model}, {config.layers} layers, relative-position bias up "
            f"to offset {config.relative_positions}, {params / 1e3:.0f}k parameters, softmax temperature {temperature}"
            + ("" if top_p == 1 else f", nucleus (top-p) {top_p}")
            + (
                f", then up to {repairs} repair passes (each graph whose argmax decoding breaks a valence or falls apart keeps its "
                "tokens before its first atom at fault and draws the rest again; their time is in the prior sampling time)"
                if repairs
                else ", no repair passes"
            )
        )
    else:
        prior_note = (
            f"set flow matching (all tokens at once), d_model {config.d_model}, {config.layers} layers, {params / 1e3:.0f}k parameters, "
            f"{args.sampler or config.default_sampler} sampler, {steps} steps, noise temperature {temperature}"
        )
    notes = resampling_note + (
        f"Prior: {prior_note}, {weights}, {precision_note}. Both columns decode the same sampled latents: raw = argmax of "
        "the decoder (a graph that is not one valid molecule counts as invalid, including unpaired electrons and fragments); "
        "valence-aware = bonds placed within each atom's valence. Metrics: molgen.metrics (MOSES' definitions, checked against "
        "MOSES' reference code in the section 'MOSES metrics reproduction'); FCD falls as n grows, so compare at the same n. "
        "Throughput excludes property computation and metrics. Ring figures: molgen.metrics.ring_statistics (SSSR rings) of "
        f"the valid outputs, against {len(test_sample):,} random MOSES test molecules."
    )
    print(write_section(args.title, rows, notes, sample=f"{args.n:,} samples, seed {args.seed}; references: MOSES test (176,074), test scaffolds, train"))


if __name__ == "__main__":
    main()
