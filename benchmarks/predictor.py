"""How well a discrete model's prefix property predictor reads molecules, by how much of the molecule it has seen.

    python -m benchmarks.predictor [--model checkpoints/moses] [--compare DIR ...] [--n 1000] [--seed 4]

MOSES test molecules (held out from training) are encoded with the model's tokenizer; the predictor reads each
molecule's first k tokens (the rest unknown), for every k, as property guidance does token by token, and its
prediction is compared with the RDKit value. Reported: mean squared error in the prior's normalised units (training
standard deviations; 1 = no better than the training mean) at a few shares of the tokens known, and on whole
molecules the MAE in the property's own units and R^2. ``--compare`` adds other predictor directories made for the
same prior (e.g. an earlier run's ``RUN/model/predictor``). ``--write`` writes it as a section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.conditioning import encoded_test_molecules
from benchmarks.report import write_section
from molgen.checkpoint import load_predictor
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline

ROOT = Path(__file__).resolve().parent.parent
SHARES = (0.0, 0.5, 0.8, 1.0)


def errors_by_share(predictor, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(bins + 1, P) mean squared error in normalised units of ``predictor`` reading prefixes of the (G, N, d)
    normalised latents ``x``, binned by the share of tokens known (rounded to 1 / ``bins``), and the (G, P) whole-graph
    predictions (normalised)."""
    nodes = mask.sum(1)
    squared = torch.zeros(bins + 1, y.shape[1])
    counts = torch.zeros(bins + 1)
    with torch.no_grad():
        for k in range(x.shape[1] + 1):
            rows = (nodes >= k).nonzero().squeeze(1)
            if len(rows) == 0:
                break
            known = torch.arange(x.shape[1])[None, :] < k
            t = 1 - k / nodes[rows].float()
            predicted = predictor(x[rows] * known.unsqueeze(-1), t, mask[rows]).float()
            which = ((1 - t) * bins).round().long()
            squared.index_add_(0, which, (predicted - y[rows]) ** 2)
            counts.index_add_(0, which, torch.ones(len(rows)))
        whole = predictor(x, torch.zeros(len(x)), mask).float()
    return (squared / counts.clamp(min=1)[:, None]).numpy(), whole.numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--compare", nargs="*", default=[], help="other predictor directories for the same prior")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--title-suffix", default="")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu")
    if pipe.predictor is None:
        parser.error(f"--model {args.model}: needs a predictor/ (a discrete model's prefix property predictor; molgen train predictor)")
    config = pipe.prior.config
    names = list(config.property_names)
    latents, table, y = encoded_test_molecules(pipe, args.n, args.seed)
    mean, std = np.array(config.property_mean, dtype=np.float32), np.array(config.property_std, dtype=np.float32)
    x = ((latents.z - torch.tensor(config.latent_mean)) / torch.tensor(config.latent_std) * latents.mask.unsqueeze(-1)).float()
    model = Path(args.model).resolve()
    model = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    predictors = {f"{model}/predictor": pipe.predictor}
    for directory in args.compare:
        other = load_predictor(directory)
        other.config.check_fits(config)
        predictors[directory] = other.eval()
    rows = []
    for label, predictor in predictors.items():
        size = sum(p.numel() for p in predictor.parameters())
        c = predictor.config
        mse, whole = errors_by_share(predictor, x, latents.mask, y)
        for share in SHARES:
            row = mse[int(round(share * 10))]
            rows.append((f"{label}: MSE (normalised) with {share:.0%} of the tokens known", ", ".join(f"{n} {v:.3f}" for n, v in zip(names, row, strict=True))))
        values = whole * std + mean
        mae = np.abs(values - table).mean(0)
        r2 = 1 - ((values - table) ** 2).mean(0) / table.var(0)
        rows.append((f"{label}: whole molecules, MAE (R^2)", ", ".join(f"{n} {m:.3g} ({r:.2f})" for n, m, r in zip(names, mae, r2, strict=True))))
        rows.append((f"{label}: network", f"d_model {c.d_model}, {c.layers} layers, {size / 1e3:.0f}k parameters"))
    print(write_section(
        f"Prefix property predictor: accuracy by tokens known{args.title_suffix}",
        rows,
        notes=(
            f"{args.n:,} MOSES test molecules (random_state {args.seed}), encoded by {model}'s tokenizer; each predictor reads "
            "every prefix of each molecule (the first k tokens, the rest zero, noise level t = 1 - k / atoms), as property guidance "
            "does before each token (molgen.sampling.guidance.PrefixPropertyGuidance). MSE in the prior's normalised units (the training "
            "standard deviation is 1: predicting the training mean gives about 1); shares are rounded to tenths. 'Whole molecules': "
            "all tokens known, what resampling (candidates=K) chooses by; MAE in the property's units, R^2 against the variance of "
            "the test molecules."
        ),
        sample=f"{args.n:,} MOSES test molecules",
    ))


if __name__ == "__main__":
    main()
