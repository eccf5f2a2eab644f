"""SMILES -> graph -> SMILES on MOSES test: how many come back as the identical canonical SMILES.

    python -m benchmarks.roundtrip [--limit N] [--workers W] [--hydrogens explicit|implicit]

With ``--hydrogens implicit`` (the shipped model's domain) the molecule is rebuilt from heavy atoms, charges and
Kekulé bonds with RDKit's default valences, and molecules whose hydrogens RDKit would not infer count as failures.
Comparison is on non-isomeric canonical SMILES (MOSES has no stereochemistry). ``--write`` writes it to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from functools import partial
from pathlib import Path

import pandas as pd

from benchmarks.report import write_section
from molgen.chem import canonical_smiles, canonicalize
from molgen.domains.molecule import check_implicit_hydrogens, raw_graph_to_mol, smiles_to_raw_graph

DATA = Path(__file__).resolve().parent.parent / "data" / "moses"


def check(smiles: str, hydrogens: str = "explicit") -> tuple[bool, str]:
    try:
        graph, _ = smiles_to_raw_graph(smiles)
        if hydrogens == "implicit":
            check_implicit_hydrogens(graph)
        back = canonical_smiles(raw_graph_to_mol(graph, hydrogens), isomeric=False)
        return back == canonicalize(smiles, isomeric=False), ""
    except ValueError as exc:
        return False, str(exc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--hydrogens", choices=["explicit", "implicit"], default="explicit")
    parser.add_argument("--write", action="store_true", help="also write the table to BENCHMARKS.md")
    args = parser.parse_args()
    smiles = pd.read_csv(DATA / f"{args.split}.csv.gz")["SMILES"].tolist()[: args.limit]
    start = time.time()
    with mp.Pool(args.workers) as pool:
        results = pool.map(partial(check, hydrogens=args.hydrogens), smiles, chunksize=2000)
    seconds = time.time() - start
    failures = [(s, e) for s, (ok, e) in zip(smiles, results) if not ok]
    rows = [
        ("molecules", f"{len(smiles):,}"),
        ("identical canonical SMILES after SMILES -> graph -> SMILES", f"{len(smiles) - len(failures):,} ({100 * (1 - len(failures) / len(smiles)):.3f}%)"),
        ("failures", str(len(failures))),
        (f"throughput (molecules/s, {args.workers or mp.cpu_count()} worker processes)", f"{len(smiles) / seconds:,.0f}"),
    ]
    notes = "\n".join(f"- failure: `{s}` {e}" for s, e in failures[:20])
    sample = f"MOSES {args.split}.csv.gz, {'all' if args.limit is None else 'first'} {len(smiles):,} rows"
    title = f"Graph round trip (MOSES {args.split})" + (", implicit hydrogens" if args.hydrogens == "implicit" else "")
    print(write_section(title, rows, notes, sample=sample))


if __name__ == "__main__":
    main()
