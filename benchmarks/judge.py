"""How closely a discrete model's judge (a graph network on decoded molecules) and its property predictor (on latent
tokens) read the properties of what they choose among.

    python -m benchmarks.judge [--model checkpoints/moses] [--n 2000] [--seed 4]

Two sets: MOSES test molecules (held out from training), and the model's own samples, drawn as a request with targets
draws its candidates (each conditioned on the QED, SA, logP and MW of another test molecule, classifier-free guidance
2, an atom count drawn to fit the MW target; no steering) and decoded valence-aware. Each network's reading of every
molecule is compared with the RDKit value: MAE in the property's units and R^2. The judge reads the molecule's graph;
the predictor reads its latent tokens whole (encoded test molecules; the samples' own tokens). ``--write`` writes it as a
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.report import write_section
from molgen.batch import batch_from_graphs
from molgen.design.targets import Target, sizes_for_weight
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.records import Latents

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("QED", "SA", "logP", "MW")


@torch.no_grad()
def judge_readings(pipe: MolgenPipeline, smiles: list[str], batch: int = 500) -> np.ndarray:
    """(n, P) the judge's predictions (in the properties' units) for molecules given as SMILES."""
    config = pipe.judge.config
    out = []
    for lo in range(0, len(smiles), batch):
        graphs = batch_from_graphs([pipe.domain.to_graph(s) for s in smiles[lo : lo + batch]])
        out.append(pipe.judge(graphs.x, graphs.adj, graphs.mask).float().numpy())
    return np.concatenate(out) * np.array(config.property_std) + np.array(config.property_mean)


@torch.no_grad()
def predictor_readings(pipe: MolgenPipeline, latents: Latents, batch: int = 500) -> np.ndarray:
    """(n, P) the property predictor's whole-graph predictions (in the properties' units) for latent tokens."""
    config = pipe.prior.config
    mean, std = torch.tensor(config.latent_mean), torch.tensor(config.latent_std)
    out = []
    for lo in range(0, len(latents), batch):
        z, mask = latents.z[lo : lo + batch], latents.mask[lo : lo + batch].bool()
        x = (z - mean) / std * mask.unsqueeze(-1)
        out.append(pipe.predictor(x, torch.zeros(len(x)), mask).float().numpy())
    return np.concatenate(out) * np.array(config.property_std) + np.array(config.property_mean)


def own_samples(pipe: MolgenPipeline, targets: list[str], seed: int) -> tuple[Latents, list[str | None]]:
    """The model's samples conditioned on each target molecule's QED, SA, logP and MW, and what each decodes to."""
    config = pipe.prior.config
    k = config.property_names.index("MW")
    rng = np.random.default_rng(seed)
    rows, sizes = [], []
    for s in targets:
        values = pipe.domain.properties(s)
        rows.append({n: values[n] for n in TARGETS})
        fit = sizes_for_weight(Target("MW", values["MW"], values["MW"]), config.num_nodes_counts, config.property_mean[k], config.property_std[k])
        sizes.append(int(rng.choice(len(fit), p=fit)))
    latents = pipe.sample_latents(len(rows), seed=seed, batch_size=500, conditions=rows, num_nodes=sizes, guidance_scale=2.0, candidates=1)
    return latents, [m.smiles for m in pipe.decode(latents, decoding="valence")]


def accuracy(readings: np.ndarray, truth: np.ndarray, names: list[str]) -> str:
    mae = np.abs(readings - truth).mean(0)
    r2 = 1 - ((readings - truth) ** 2).mean(0) / truth.var(0)
    return ", ".join(f"{n} {m:.3g} ({r:.2f})" for n, m, r in zip(names, mae, r2, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--title-suffix", default="")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu")
    if pipe.judge is None:
        parser.error(f"--model {args.model}: has no judge/ (molgen train judge)")
    names = list(pipe.judge.config.property_names)
    test = pd.read_csv(ROOT / "data" / "moses" / "test.csv.gz")["SMILES"].sample(2 * args.n, random_state=args.seed).tolist()
    held_out, target_molecules = test[: args.n], test[args.n :]
    sets = {"MOSES test molecules": (held_out, None)}
    latents, decoded = own_samples(pipe, target_molecules, args.seed)
    kept = [i for i, s in enumerate(decoded) if s is not None]
    sets["the model's own samples"] = ([decoded[i] for i in kept], Latents(latents.z[kept], latents.mask[kept]))
    rows = []
    for label, (smiles, tokens) in sets.items():
        truth = np.array([[pipe.domain.properties(s, names)[n] for n in names] for s in smiles])
        start = time.time()
        judged = judge_readings(pipe, smiles)
        seconds = time.time() - start
        rows.append((f"{label}: judge, MAE (R^2)", accuracy(judged, truth, names)))
        if pipe.predictor is not None:
            predicted = predictor_readings(pipe, pipe.encode(smiles) if tokens is None else tokens)
            rows.append((f"{label}: property predictor (whole graph), MAE (R^2)", accuracy(predicted, truth, names)))
        rows.append((f"{label}: judge time", f"{seconds:.1f} s for {len(smiles):,} molecules (SMILES -> graph -> network; --threads)"))
    c = pipe.judge.config
    size = sum(p.numel() for p in pipe.judge.parameters())
    rows.append(("judge network", f"d_model {c.d_model}, {c.layers} relational GIN layers, random-walk returns over {c.walk_steps} steps, {size / 1e3:.0f}k parameters"))
    model = Path(args.model).resolve()
    model = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    print(write_section(
        f"Judge of decoded molecules: accuracy{args.title_suffix}",
        rows,
        notes=(
            f"{model}. {args.n:,} MOSES test molecules (random_state {args.seed}), and {len(kept):,} of the model's own samples (of "
            f"{args.n:,} drawn; each conditioned on the QED, SA, logP and MW of another test molecule with guidance scale 2, the way a "
            "request with targets draws its candidates, decoded valence-aware). The judge (molgen.judge) reads each molecule's graph; the "
            "property predictor (molgen.prior.predictor) reads its latent tokens, all of them known. MAE in the property's units; R^2 "
            "against the variance of the set. What a resampled request chooses by is the error on the model's own samples."
        ),
        sample=f"{args.n:,} test molecules, {len(kept):,} own samples",
    ))


if __name__ == "__main__":
    main()
