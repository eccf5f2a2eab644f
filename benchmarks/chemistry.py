"""A drug-chemistry model's samples beside its data: charges, stereo, size and elements at the data's rates?

    python -m benchmarks.chemistry --model checkpoints/chem --train runs/chem/train.smi [--n 10000] [--write]

Draws ``--n`` molecules at the model's defaults (one draw each, valence-aware decoding: what ``molgen sample``
writes) and reports, side by side for the samples, the training molecules (``--train``, one SMILES per line: the
file ``scripts/chemistry_data.py`` wrote) and ZINC-250k test (``data/zinc/test.txt``, held out): the share of
molecules with a formal charge, with a stereo mark (a tetrahedral centre or a double bond's geometry), heavy atoms
(mean and largest), and the elements. For the samples also raw validity (argmax decoding of the same tokens, checked
by RDKit), uniqueness, novelty against the training molecules (isomeric canonical SMILES), and FCD against ZINC test
(ChemNet, ``molgen.metrics.fcd``; the published FCD/Test figures are against MOSES test, not this set).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import torch
from rdkit import Chem, RDLogger

from benchmarks.report import print_rows, write_section
from molgen.metrics.fcd import FCDStats, frechet_distance
from molgen.pipeline import MolgenPipeline

ROOT = Path(__file__).resolve().parent.parent
ZINC_TEST = ROOT / "data" / "zinc" / "test.txt"


def read_smiles(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def profile(smiles: list[str]) -> dict[str, object]:
    """Charged share, stereo share, heavy atoms (mean, max) and element shares (of molecules) of ``smiles``."""
    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    elements: Counter[str] = Counter()
    for m in mols:
        elements.update({a.GetSymbol() for a in m.GetAtoms()})
    stereo = sum(
        any(a.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED for a in m.GetAtoms())
        or any(b.GetStereo() != Chem.BondStereo.STEREONONE for b in m.GetBonds())
        for m in mols
    )
    sizes = [m.GetNumAtoms() for m in mols]
    n = max(len(mols), 1)
    return {
        "charged": sum(any(a.GetFormalCharge() for a in m.GetAtoms()) for m in mols) / n,
        "stereo": stereo / n,
        "atoms": (statistics.fmean(sizes) if sizes else 0.0, max(sizes, default=0)),
        "elements": {e: c / n for e, c in elements.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/chem")
    parser.add_argument("--train", type=Path, required=True, help="the training molecules, one SMILES per line")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    RDLogger.DisableLog("rdApp.*")
    pipe = MolgenPipeline.from_pretrained(args.model, device="cpu")

    began = time.perf_counter()
    latents = pipe.sample_latents(args.n, seed=args.seed)
    decoded = pipe.decode(latents, decoding="valence")
    seconds = time.perf_counter() - began
    raw = pipe.decode(latents, decoding="raw")
    samples = [m.smiles for m in decoded if m.smiles is not None]
    unique = sorted(set(samples))
    train = read_smiles(args.train)
    train_canonical = {pipe.domain.canonical(s) for s in train}
    zinc = read_smiles(ZINC_TEST)
    zinc_stats = FCDStats.from_smiles([Chem.CanonSmiles(s) for s in zinc])
    fcd = frechet_distance(FCDStats.from_smiles(samples), zinc_stats)
    # the floor this data sets: as many training molecules, drawn at random, against the same reference
    floor = frechet_distance(FCDStats.from_smiles(random.Random(args.seed).sample(train, min(len(samples), len(train)))), zinc_stats)

    mine, data, held = profile(samples), profile(train), profile(zinc)
    rows = [
        ("raw validity (argmax decoding of the same draws)", f"{sum(m.smiles is not None for m in raw) / args.n:.4f}"),
        ("validity (valence-aware decoding)", f"{len(samples) / args.n:.4f}"),
        ("uniqueness", f"{len(unique) / max(len(samples), 1):.4f}"),
        ("novelty against the training molecules", f"{sum(s not in train_canonical for s in unique) / max(len(unique), 1):.4f}"),
        ("FCD against ZINC-250k test (5,000)", f"{fcd:.3f}"),
        ("FCD against ZINC-250k test, as many training molecules at random (the data's own distance)", f"{floor:.3f}"),
        ("speed: valid unique molecules/s (sampling + decoding)", f"{len(unique) / seconds:.0f}"),
    ]
    for key, label in (("charged", "molecules with a formal charge"), ("stereo", "molecules with a stereo mark")):
        rows.append((f"{label}: samples / training data / ZINC test", f"{mine[key]:.1%} / {data[key]:.1%} / {held[key]:.1%}"))
    rows.append((
        "heavy atoms, mean (largest): samples / training data / ZINC test",
        " / ".join(f"{p['atoms'][0]:.1f} ({p['atoms'][1]})" for p in (mine, data, held)),
    ))  # fmt: skip
    rare = [e for e in data["elements"] if e not in ("C", "N", "O")]
    rows.append((
        f"molecules with {', '.join(rare)}: samples / training data",
        "; ".join(f"{e} {mine['elements'].get(e, 0):.1%} / {data['elements'][e]:.1%}" for e in rare),
    ))  # fmt: skip
    print_rows(rows)
    if args.write:
        write_section(
            f"Drug chemistry ({args.model}): samples beside the data",
            rows,
            notes="One draw per molecule at the model's defaults; shares are of valid molecules; novelty by isomeric "
            "canonical SMILES. FCD here is against ZINC-250k test, not the MOSES FCD/Test of the MOSES sections.",
            sample=f"{args.n:,} samples (seed {args.seed}); training molecules: {args.train} ({len(train):,}); ZINC-250k test (5,000)",
        )  # fmt: skip


if __name__ == "__main__":
    main()
