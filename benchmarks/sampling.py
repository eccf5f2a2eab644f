"""Sampling from the shipped model: MOSES metrics on 30,000 samples, validity of both decodings, throughput,
peak memory, and the training time of each stage.

    python -m benchmarks.sampling [--model checkpoints/moses] [--n 30000] [--steps N] [--restarts R] [--autoguidance W] [--seed 0]
                                  [--precision auto|fp32|bf16]

The same sampled latents are decoded twice, raw (argmax) and valence-aware, and each decoding gets its own
column of figures (they are never mixed). ``--validity-guidance S`` samples with the pipeline's validity guidance
(default: the pipeline's default, off); with it on, the raw validity of the same prior without guidance is also
measured on ``--unguided-n`` samples.
Throughput counts valid unique molecules per second of wall time for prior + decoding on this machine (properties not computed). Writes a section of BENCHMARKS.md.
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
from molgen.metrics import compute_metrics, moses_references, ring_statistics
from molgen.calibration import CALIBRATED
from molgen.pipeline import DEFAULT_PRECISION, DEFAULT_VALIDITY_GUIDANCE, MolgenPipeline, fast_bfloat16

ROOT = Path(__file__).resolve().parent.parent

LABELS = {"unique@1000": "unique@1k", "unique@10000": "unique@10k"}  # molgen.metrics keys -> the names in the issue
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
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "moses"))
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=None, help="noise temperature; a discrete prior's softmax temperature (default: the model's)")
    parser.add_argument("--top-p", type=float, default=None, help="a discrete prior's nucleus share (default: the model's)")
    parser.add_argument("--restarts", type=int, default=None, help="restart-sampling passes (default: the model's)")
    parser.add_argument(
        "--discriminator-guidance", type=float, default=None,
        help="discriminator guidance (a discrete prior: resampling) weight (default: the model's discriminator's, if it has one; 0: off)",
    )
    parser.add_argument("--autoguidance", type=float, default=None, help="weight against the guide prior (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--validity-guidance", type=float, default=DEFAULT_VALIDITY_GUIDANCE)
    parser.add_argument("--unguided-n", type=int, default=5000, help="samples without validity guidance (or a discrete prior's repair passes), for the raw validity without them (0: skip)")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, help="how the prior networks run (molgen.pipeline.PRECISIONS)")
    parser.add_argument(
        "--calibration", choices=sorted(CALIBRATED), default="auto",
        help="calibrated resampling (molgen.calibration; auto: the model's default, on when it has calibration/)",
    )  # fmt: skip
    parser.add_argument("--title", default="Sampling and MOSES metrics, shipped model")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu", precision=args.precision)
    # the training record of the weights just loaded (read now: the directory may change during a long run)
    training_rows, weights = [], "EMA weights"
    for stage in ("tokenizer", "prior", "guide"):
        record = Path(args.model) / stage / "training.json"
        if stage == "guide" and not record.exists():
            continue
        training = json.loads(record.read_text())
        if stage == "prior" and "weights" in training:  # e.g. scripts/export_last_weights.py: the trained network, not its average
            weights = f"{training['weights']} weights"
        s, n_steps, runs = training_chain(training)
        training_rows.append((f"training time, {stage}", f"{s / 3600:.2f} h, {n_steps:,} steps in {runs} run(s)"))
        teacher = (training.get("teacher") or {}).get("training")
        if stage == "prior" and teacher:  # a distilled student: its teacher's training came first
            s, n_steps, runs = training_chain(teacher)
            training_rows[-1] = (f"training time, prior (distillation of an autoguided teacher, {training['distilled']['autoguidance']})", training_rows[-1][1])
            training_rows.append(("training time, its teacher prior", f"{s / 3600:.2f} h, {n_steps:,} steps in {runs} run(s)"))
    config = pipe.prior.config
    steps = args.steps or config.default_steps
    restarts = config.default_restarts if args.restarts is None else args.restarts
    autoregressive = config.architecture in ("autoregressive", "discrete")
    head = "a softmax over the codes" if config.architecture == "discrete" else f"{steps} head"
    temperature = config.default_temperature if args.temperature is None else args.temperature
    top_p = config.default_top_p if args.top_p is None else args.top_p
    setting = {  # what the throughput rows were sampled with
        "discrete": f"softmax temperature {temperature}" + ("" if top_p == 1 else f", top-p {top_p}") + (f", {restarts} repair passes" if restarts else ""),
        "autoregressive": f"{steps} flow-head steps per token",
    }.get(config.architecture, f"{steps} steps, {restarts} restarts")
    evaluations = f"per token: 1 causal-transformer pass + {head}" if autoregressive else pipe.prior_evaluations(steps, restarts)
    if config.architecture == "discrete" and restarts:
        evaluations += (
            f" (then up to {restarts} repair passes: each graph whose argmax decoding breaks a valence or falls apart keeps its tokens "
            "before its first atom at fault and draws the rest again; their time is in the prior sampling time)"
        )
    autoguidance = config.default_autoguidance if args.autoguidance is None else args.autoguidance
    discriminator = None if pipe.discriminator is None else (pipe.discriminator.config.default_scale if args.discriminator_guidance is None else args.discriminator_guidance)
    resampling_note = ""
    if discriminator and config.architecture == "discrete":
        candidates = pipe.discriminator.config.candidates
        setting += f", discriminator resampling {discriminator:g} of {candidates} candidates"
        evaluations = f"{candidates} graphs drawn per graph kept, each {evaluations}, then 1 discriminator pass per graph drawn"
        record = json.loads((Path(args.model) / "discriminator" / "training.json").read_text())
        resampling_note = (
            f"Discriminator resampling (molgen.guidance.DiscriminatorResampling): for every graph returned, {candidates} graphs are drawn "
            f"and one kept with probability proportional to exp({discriminator:g} x logit) of a discriminator (molgen.prior.discriminator, "
            f"d_model {pipe.discriminator.config.d_model}, {pipe.discriminator.config.layers} layers, a transformer on the finished latent "
            f"tokens, no chemistry) trained {record['global_step']:,} steps to tell {record['generated']['samples']:,} of this prior's samples "
            f"from as many MOSES train latents (val accuracy {record['val'].get('val/accuracy', float('nan')):.3f}); its logit estimates "
            "log p_data / p_prior (sampling-importance-resampling, as in Azadi et al. 2019); its time is in the prior sampling time. "
        )
    elif discriminator:
        setting += f", discriminator guidance {discriminator:g}"
    calibrated = CALIBRATED[args.calibration]
    if pipe.calibration is not None and calibrated is not False and config.architecture == "discrete":
        calibration = pipe.calibration.config
        candidates = max(calibration.candidates, pipe.discriminator.config.candidates if discriminator else 1)
        setting += f", calibrated resampling of {candidates} candidates"
        means = "; ".join(f"{name} {data:.2f} in the data, {model:.2f} in its samples" for name, (data, model) in pipe.calibration.means().items())
        resampling_note += (
            f"Calibrated resampling (molgen.calibration): for every graph returned, {candidates} graphs are drawn, decoded (valence-aware) "
            f"and one kept with probability proportional to p_data(s) / p_model(s) of its statistics s ({', '.join(calibration.properties)}), "
            f"from the histograms in the model's calibration/ ({calibration.sampling.get('data_items', '?'):,} MOSES train molecules against "
            f"{calibration.sampling.get('samples', '?'):,} uncalibrated samples of this prior, seed {calibration.sampling.get('seed', '?')}; "
            f"pseudo-count {calibration.pseudo_count:g}, |log ratio| <= {calibration.max_log_ratio:g}; per graph: {means}); the candidates' "
            "decoding is in the prior sampling time, so the throughput rows count the kept graphs' decoding twice "
            "(molgen sample reuses it). "
        )

    # 1. Sample latents once (timed), then decode them both ways (timed separately).
    start = time.time()
    latents = pipe.sample_latents(
        args.n, steps=steps, seed=args.seed, batch_size=args.batch_size, sampler=args.sampler, temperature=temperature,
        validity_guidance=args.validity_guidance, restarts=restarts, autoguidance=autoguidance, top_p=args.top_p,
        discriminator_guidance=discriminator, calibrated=calibrated,
    )
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
    repairs = config.architecture == "discrete" and restarts > 0
    if args.unguided_n and (args.validity_guidance or repairs):
        plain = pipe.sample_latents(
            args.unguided_n, steps=steps, seed=args.seed, batch_size=args.batch_size, sampler=args.sampler, temperature=temperature,
            validity_guidance=0, restarts=0 if repairs else restarts, autoguidance=autoguidance, top_p=args.top_p,
            discriminator_guidance=discriminator, calibrated=False,
        )
        raw_valid = sum(m.smiles is not None for m in pipe.decode(plain, batch_size=args.batch_size, decoding="raw")) / args.unguided_n
        without = "validity guidance or repair passes" if args.validity_guidance and repairs else ("repair passes" if repairs else "validity guidance")
        without += " or calibration" if pipe.calibration is not None else ""
        rows.insert(2, (f"valid without {without} (raw, {args.unguided_n:,} samples)", f"{raw_valid:.4f}"))
    rows.append(("prior sampling time", f"{prior_seconds:.1f} s for {args.n:,} ({args.n / prior_seconds:.0f} latents/s)"))
    rows += [(f"decoding time, {k}", f"{v:.1f} s") for k, v in seconds.items()]
    rows.append(("peak memory (RSS)", f"{peak_mb:.0f} MB"))
    rows += training_rows
    params = sum(p.numel() for p in pipe.prior.parameters())
    if autoguidance != 1:
        guide = pipe.guide.config
        guide_note = (
            f"autoguidance {autoguidance} against a guide prior of d_model {guide.d_model}, {guide.layers} layers, "
            f"{sum(p.numel() for p in pipe.guide.parameters()) / 1e3:.0f}k parameters, applied at noise levels "
            f"{config.autoguidance_interval[0]}-{config.autoguidance_interval[1]} ({pipe.guide_evaluations(steps, restarts, autoguidance)} of the "
            f"{evaluations} evaluations; its time is in the prior sampling time), "
        )
    else:
        guide_note = "no autoguidance, "
    self_conditioned = "self-conditioned (every evaluation after a pass's first reads the last clean estimate), " if config.self_condition else ""
    native = "has" if fast_bfloat16(pipe.device) else "lacks"
    precision_note = f"networks run with precision {args.precision} (this CPU {native} native bfloat16: {pipe.network_dtype})"
    architecture = {
        "autoregressive": f"autoregressive (a causal transformer over the canonical token order; each token drawn by a flow head of width "
        f"{config.head_width}, {config.head_blocks} blocks, given the tokens before it), {config.objective} ({config.prediction}), ",
        "discrete": f"discrete autoregressive (a causal transformer over the canonical token order; each token drawn from a softmax over "
        f"the {len(config.vocabulary):,} codes of the quantised tokenizer seen in training, given the tokens before it; the temperature "
        "divides the log-probabilities), ",
    }.get(config.architecture, f"{config.objective} ({config.prediction}), ")
    if config.architecture == "discrete":
        temperature_name = "softmax temperature"
    else:
        temperature_name = "noise temperature"
    notes = resampling_note + (
        f"Prior: {architecture}d_model {config.d_model}, {config.layers} layers, "
        f"relative-position bias up to offset {config.relative_positions}, "
        f"{self_conditioned}"
        f"{params / 1e3:.0f}k parameters, "
        + ("" if config.architecture == "discrete" else f"sampler {args.sampler or config.default_sampler}, {steps} steps, ")
        + (f"{evaluations} evaluations, " if autoregressive else f"{restarts} restart(s) at strength {config.restart_strength} ({evaluations} prior evaluations per sample), ")
        + f"{guide_note}{temperature_name} {temperature}{'' if top_p == 1 else f', nucleus (top-p) {top_p}'}"
        f"{'' if config.restart_temperature is None else f' (restarts: {config.restart_temperature})'}, EMA weights, "
        f"{precision_note}, "
        f"validity guidance {args.validity_guidance} over the last half of the steps (molgen.guidance; its time is in the prior sampling time). Both columns decode the "
        "same sampled latents: raw = argmax of the decoder (a graph that is not one valid molecule counts as invalid, "
        "including unpaired electrons and fragments); valence-aware = bonds placed within each atom's valence. "
        "Metrics: molgen.metrics (MOSES' definitions, checked against MOSES' reference code in the section "
        "'MOSES metrics reproduction'); FCD falls as n grows, so compare at the same n. Throughput excludes "
        "property computation and metrics. Ring figures: molgen.metrics.ring_statistics (SSSR rings) of the valid "
        f"outputs, against {len(test_sample):,} random MOSES test molecules."
    )
    print(write_section(args.title, rows, notes, sample=f"{args.n:,} samples, seed {args.seed}; references: MOSES test (176,074), test scaffolds, train"))


if __name__ == "__main__":
    main()
