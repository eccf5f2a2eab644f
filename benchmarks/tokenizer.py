"""Tokenizer reconstruction on held-out MOSES test molecules.

    python -m benchmarks.tokenizer [--model checkpoints/moses] [--data moses|zinc] [--n 10000] [--seed 0]

``--data zinc`` takes ZINC-250k's test split (``data/zinc/test.txt``, 5,000 molecules with charges and stereo) instead
of MOSES test; a model with stereo is compared by isomeric canonical SMILES.

Reports exact reconstruction (canonical SMILES equal) under verified decoding (what ``molgen reconstruct`` and the
designer use: the argmax checked by re-encoding it, and the nearest graph that gives the tokens back where it does not),
the decoder's argmax alone, and the valence-aware decoding sampling uses;
node / edge / bond accuracy, latent size, latent health and encode+decode throughput. ``--write`` writes it as a
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.report import training_chain, write_section
from molgen.batch import batch_from_graphs
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.tokenizer.training import latent_health, reconstruction_metrics

ROOT = Path(__file__).resolve().parent.parent


def _training_time(training: dict) -> str:
    """Wall time and steps over the chain of runs (a run started with --init-from records its predecessor)."""
    seconds, steps, stages = training_chain(training)
    return f"{seconds / 3600:.2f} h, {steps:,} steps of batch 256, in {stages} run(s)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--data", choices=["moses", "zinc"], default="moses", help="MOSES test or ZINC-250k test")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu")
    if args.data == "zinc":
        lines = (ROOT / "data" / "zinc" / "test.txt").read_text().splitlines()
        test = pd.Series([line.split()[0] for line in lines if line.strip()])
    else:
        test = pd.read_csv(ROOT / "data" / "moses" / "test.csv.gz")["SMILES"]
    smiles = test.sample(n=min(args.n, len(test)), random_state=args.seed).tolist()

    # 1. Exactness: canonical SMILES in == canonical SMILES out, and the time it takes (featurize included).
    start = time.time()
    results = list(pipe.reconstruct(smiles, batch_size=args.batch_size))  # verified decoding, as molgen reconstruct
    seconds = time.time() - start
    encodable = [r for r in results if r.canonical is not None]
    exact = sum(r.exact for r in encodable)
    invalid = sum(r.reconstructed is None for r in encodable)
    # The decoder's argmax alone, unchecked by the encoder.
    start = time.time()
    raw = [r for r in pipe.reconstruct(smiles, batch_size=args.batch_size, decoding="raw") if r.canonical is not None]
    raw_seconds = time.time() - start
    exact_raw, invalid_raw = sum(r.exact for r in raw), sum(r.reconstructed is None for r in raw)
    # The same molecules decoded as sampling decodes them: the domain's decoding from the decoder's probabilities.
    exact_valence = sum(r.exact for r in pipe.reconstruct(smiles, batch_size=args.batch_size, decoding="valence") if r.canonical is not None)

    # 2. Node / edge accuracy and latent health on the same molecules.
    tokenizer = pipe.tokenizer
    totals: dict[str, float] = {}
    health_inputs = []
    graphs = [pipe.domain.to_graph(r.input) for r in encodable]
    with torch.no_grad():
        for k in range(0, len(graphs), args.batch_size):
            batch = batch_from_graphs(graphs[k : k + args.batch_size])
            posterior = tokenizer.posterior(batch)
            x_hat, adj_hat = tokenizer.decode(posterior.mean, batch.mask)
            for key, v in reconstruction_metrics(batch, x_hat, adj_hat).items():
                totals[key] = totals.get(key, 0) + float(v)
            if posterior.indices is not None:
                health_inputs.append(posterior.indices[batch.mask])
            else:
                health_inputs.append(torch.cat([posterior.mean[batch.mask], posterior.kl[batch.mask]], -1))
    health = latent_health(tokenizer, torch.cat(health_inputs))
    config = tokenizer.config
    training = json.loads((Path(args.model) / "tokenizer" / "training.json").read_text()) if (Path(args.model) / "tokenizer" / "training.json").exists() else {}

    rows = [
        ("exact reconstruction (verified decoding, as molgen reconstruct)", f"{100 * exact / len(encodable):.2f}% ({exact:,}/{len(encodable):,})"),
        ("decoded graph not a valid molecule (verified decoding)", f"{invalid}"),
        ("exact reconstruction (argmax decoding alone)", f"{100 * exact_raw / len(raw):.2f}% ({exact_raw:,}/{len(raw):,})"),
        ("decoded graph not a valid molecule (argmax decoding alone)", f"{invalid_raw}"),
        ("exact reconstruction (valence-aware decoding, as sampling decodes)", f"{100 * exact_valence / len(encodable):.2f}% ({exact_valence:,}/{len(encodable):,})"),
        ("node accuracy (all fields)", f"{100 * totals['nodes_correct'] / totals['nodes']:.4f}%"),
        ("edge accuracy (all atom pairs)", f"{100 * totals['pairs_correct'] / totals['pairs']:.4f}%"),
        ("bond accuracy (bonded pairs)", f"{100 * totals['bonds_correct'] / totals['bonds']:.4f}%"),
        ("encode+decode throughput (SMILES in -> SMILES out, verified)", f"{len(smiles) / seconds:,.0f} molecules/s"),
        ("encode+decode throughput (SMILES in -> SMILES out, argmax alone)", f"{len(smiles) / raw_seconds:,.0f} molecules/s"),
        ("bottleneck", config.bottleneck),
    ]
    if config.bottleneck == "fsq":
        rows += [
            ("latent size", f"1 code per atom ({config.latent_dim} FSQ dims, levels {config.fsq_levels})"),
            ("bits per atom", f"{math.log2(health['codebook_size']):.2f}"),
            ("codebook utilization", f"{100 * health['codebook_utilization']:.1f}%"),
            ("codebook perplexity", f"{health['codebook_perplexity']:.1f} of {int(health['codebook_size'])}"),
        ]
    else:
        rows += [
            ("latent size", f"{config.latent_dim} numbers per atom"),
            ("active units", f"{int(health['active_units'])} of {config.latent_dim}"),
            ("KL per atom (nats)", f"{health['kl_per_node']:.2f}"),
        ]
    rows += [
        ("parameters", f"{sum(p.numel() for p in tokenizer.parameters()):,}"),
        ("training time (this CPU)", _training_time(training)),
    ]
    notes = ""
    if config.bottleneck == "gaussian":
        notes = "KL per latent dimension (nats): " + ", ".join(f"{v:.2f}" for v in health["kl_per_dim"])
    misses = [r for r in encodable if not r.exact][:10]
    if misses:
        notes += "\n\nExamples of misses (input -> output):\n" + "\n".join(f"- `{r.canonical}` -> `{r.reconstructed}`" for r in misses)
    print(
        write_section(
            f"Tokenizer reconstruction ({Path(args.model).name}, {config.bottleneck})"
            + (" on ZINC-250k test" if args.data == "zinc" else ""),
            rows,
            notes,
            sample=f"{len(smiles):,} {'ZINC-250k test' if args.data == 'zinc' else 'MOSES test'} molecules (held out), "
            f"pandas sample random_state={args.seed}" + ("; compared by isomeric canonical SMILES" if getattr(pipe.domain, "stereo", False) else ""),
        )
    )


if __name__ == "__main__":
    main()
