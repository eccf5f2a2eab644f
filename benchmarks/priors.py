"""Prior families side by side on one tokenizer: the autoregressive prior against the masked diffusion prior at
several step counts, by the same protocol.

    python -m benchmarks.priors --models checkpoints/moses runs/masked_model --steps 4 8 16 32 --n 30000 --write

For each model (and, for a masked prior, each step count): ``--n`` samples with no repair pass, no calibrated
resampling and no candidate selection (one draw per molecule), decoded by argmax (raw validity) and valence-aware (the
metrics a user's molecules get); FCD/Test and FCD/TestSF, unique@10k and novelty of the valence-aware decodings (MOSES'
definitions, ``molgen.metrics``); valid unique molecules per second (prior sampling plus valence-aware decoding, wall
time on this machine); training hours of the prior (its chain of runs). The models must share a tokenizer. One column
per setting; writes a section of BENCHMARKS.md with ``--write``. Each setting's figures are saved in ``--cache`` (JSON,
one file per model, setting, n and seed) as it ends; a rerun takes saved settings from there and measures the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch

from benchmarks.report import training_chain, write_section
from molgen.metrics import compute_metrics, moses_references
from molgen.pipeline import MolgenPipeline
from molgen.sampling import SamplingConfig

ROWS = ("raw validity (no repair, no resampling)", "FCD/Test", "FCD/TestSF", "unique@10k", "Novelty", "valid unique molecules/s", "prior training")


def settings(pipe: MolgenPipeline, steps: list[int]) -> list[tuple[str, SamplingConfig]]:
    """(label, sampling) of one model: its one setting (autoregressive) or one per step count (masked)."""
    config = pipe.prior.config
    if config.architecture == "masked":
        return [(f"masked, {k} steps", SamplingConfig(steps=k)) for k in steps]
    if config.architecture == "discrete":
        return [("autoregressive", SamplingConfig(repairs=0, calibrated=False, candidates=1))]
    return [(f"{config.architecture}, {config.default_steps} steps", SamplingConfig())]


def measure(pipe: MolgenPipeline, sampling: SamplingConfig, n: int, seed: int, refs) -> dict[str, float]:
    began = time.perf_counter()
    latents = pipe.sample_latents(n, sampling, seed=seed)
    prior_seconds = time.perf_counter() - began
    raw = pipe.decode(latents, decoding="raw")
    began = time.perf_counter()
    valence = pipe.decode(latents, decoding="valence")
    decode_seconds = time.perf_counter() - began
    smiles = [m.smiles for m in valence]
    metrics = compute_metrics(smiles, refs.test, refs.test_scaffolds, refs.train, n_jobs=2)
    unique = len({s for s in smiles if s})
    return {
        "raw validity (no repair, no resampling)": sum(m.smiles is not None for m in raw) / n,
        "FCD/Test": metrics["FCD/Test"], "FCD/TestSF": metrics["FCD/TestSF"], "unique@10k": metrics.get("unique@10000", float("nan")),
        "Novelty": metrics["Novelty"], "valid unique molecules/s": unique / (prior_seconds + decode_seconds),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="model directories sharing one tokenizer")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16, 32], help="a masked prior's step counts")
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=Path("runs/priors"), help="per-setting figures, kept for a rerun")
    parser.add_argument("--write", action="store_true", help="write the table to BENCHMARKS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    refs = moses_references(n_jobs=2)
    columns: list[tuple[str, dict[str, object]]] = []
    tokenizers = set()
    for model in args.models:
        pipe = MolgenPipeline.from_pretrained(model, device="cpu")
        tokenizers.add(hashlib.sha256((Path(model) / "tokenizer" / "model.safetensors").read_bytes()).hexdigest())
        seconds, steps, runs = training_chain(json.loads((Path(model) / "prior" / "training.json").read_text()))
        for label, sampling in settings(pipe, args.steps):
            saved = args.cache / f"{Path(model).name}__{label.replace(', ', '_').replace(' ', '-')}__n{args.n}__seed{args.seed}.json"
            if saved.exists():
                figures: dict[str, object] = json.loads(saved.read_text())
            else:
                figures = measure(pipe, sampling, args.n, args.seed, refs)
                figures["prior training"] = f"{seconds / 3600:.2f} h ({steps:,} steps)"
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(json.dumps(figures, indent=1) + "\n")
            columns.append((f"{label} ({Path(model).name})", figures))
            print(label, figures, flush=True)
    if len(tokenizers) > 1:
        raise SystemExit("the models do not share a tokenizer: their priors are not comparable by this table")

    def cell(name: str, value: object) -> str:
        if isinstance(value, str):
            return value
        return f"{value:.0f}" if name.endswith("/s") else f"{value:.3f}" if name.startswith("FCD") else f"{value:.4f}"

    header = " / ".join(label for label, _ in columns)
    rows = [(f"{name} ({header})", " / ".join(cell(name, figures[name]) for _, figures in columns)) for name in ROWS]
    for name, value in rows:
        print(f"{name} | {value}")
    if args.write:
        write_section(
            "Prior families: autoregressive against masked diffusion", rows,
            notes="Same tokenizer, same data, one draw per molecule (no repair pass, no calibrated resampling, no candidate "
            "selection). Metrics of the valence-aware decodings except raw validity (argmax decoding of the same latents). "
            "Molecules per second: prior sampling plus valence-aware decoding, wall time on this machine.",
            sample=f"{args.n:,} samples per setting, seed {args.seed}",
        )  # fmt: skip


if __name__ == "__main__":
    main()
