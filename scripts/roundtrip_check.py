"""SMILES -> graph -> SMILES on every molecule of the ZINC splits and MOSES test, stereo and charges included.

    python scripts/roundtrip_check.py                      # all files below, both hydrogen modes, stereo on
    python scripts/roundtrip_check.py --files data/zinc/test.txt --limit 1000 --workers 1
    python scripts/roundtrip_check.py --no-stereo          # the shipped MOSES model's domain (non-isomeric)

Each molecule is read with molgen's parser, turned into a raw graph (``molgen.domains.molecule``, canonical
order, stereo labels with ``--stereo``), rebuilt with RDKit from the graph alone (once with the graph's hydrogen
counts, once with RDKit's implicit hydrogens) and written as canonical SMILES. A molecule counts as exact when that
SMILES is identical to RDKit's canonical SMILES of the input as written (``MolToSmiles(MolFromSmiles(s))``,
isomeric with ``--stereo``). Prints one line per file, the first failures, and what the data holds (elements,
charges, stereo labels, the largest molecule). Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from rdkit import Chem, RDLogger

from molgen.chem import canonical_smiles
from molgen.domains.molecule import HYDROGEN_MODES, raw_graph_to_mol, smiles_to_raw_graph

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILES = [
    "data/zinc/test.txt",
    "data/zinc/valid.txt",
    "data/zinc/opt.test.logP-SA",
    "data/zinc/opt.valid.logP-SA",
    "data/moses/test.csv.gz",
]


def read_smiles(path: Path) -> list[str]:
    """The SMILES of a file: the first column of a text file (space separated), or the ``SMILES`` column of a CSV."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    if path.name.endswith((".csv", ".csv.gz")):
        header = lines[0].split(",")
        column = header.index("SMILES")
        return [line.split(",")[column] for line in lines[1:]]
    return [line.split()[0] for line in lines]


@dataclass
class Outcome:
    """What one molecule gave: exact per hydrogen mode, the first difference, and the raw values seen."""

    exact: dict[str, bool]
    failure: str = ""
    elements: Counter = field(default_factory=Counter)
    charges: Counter = field(default_factory=Counter)
    chirality: Counter = field(default_factory=Counter)
    bonds: Counter = field(default_factory=Counter)
    atoms: int = 0


def check(smiles: str, stereo: bool) -> Outcome:
    """Round trip one SMILES in both hydrogen modes."""
    RDLogger.DisableLog("rdApp.*")
    expected = Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=stereo)
    try:
        graph, _ = smiles_to_raw_graph(smiles, stereo=stereo)
    except ValueError as exc:
        return Outcome({h: False for h in HYDROGEN_MODES}, f"{smiles}: {exc}")
    outcome = Outcome({}, atoms=graph.num_nodes)
    outcome.elements.update(Chem.GetPeriodicTable().GetElementSymbol(int(z)) for z in graph.x[:, 0])
    outcome.charges.update(int(c) for c in graph.x[:, 1])
    if stereo:
        outcome.chirality.update(int(c) for c in graph.x[:, 3])
    outcome.bonds.update(int(b) for b in graph.edge_attr)
    for hydrogens in HYDROGEN_MODES:
        try:
            back = canonical_smiles(raw_graph_to_mol(graph, hydrogens, stereo), isomeric=stereo)
        except ValueError as exc:
            back = f"invalid ({exc})"
        outcome.exact[hydrogens] = back == expected
        if back != expected and not outcome.failure:
            outcome.failure = f"{smiles}: {hydrogens} hydrogens give {back}, expected {expected}"
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES, help="files relative to the repository root (or absolute)")
    parser.add_argument("--limit", type=int, default=None, help="first N molecules of each file")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--stereo", action=argparse.BooleanOptionalAction, default=True, help="stereo labels (default: on)")
    parser.add_argument("--show", type=int, default=10, help="failures to print per file")
    args = parser.parse_args()
    total = Counter()
    seen = Outcome({})
    with mp.Pool(args.workers) as pool:
        for name in args.files:
            path = Path(name) if Path(name).is_absolute() else REPO / name
            if not path.exists():
                print(f"{name}: not found, skipped")
                continue
            smiles = read_smiles(path)[: args.limit]
            start = time.time()
            outcomes = pool.map(partial(check, stereo=args.stereo), smiles, chunksize=500)
            counts = {h: sum(o.exact[h] for o in outcomes) for h in HYDROGEN_MODES}
            print(
                f"{name}: {len(smiles):,} molecules; exact with explicit hydrogens {counts['explicit']:,}, "
                f"with implicit hydrogens {counts['implicit']:,} ({time.time() - start:.0f} s)"
            )
            for outcome in [o for o in outcomes if o.failure][: args.show]:
                print(f"  failure: {outcome.failure}")
            total["molecules"] += len(smiles)
            for h in HYDROGEN_MODES:
                total[h] += counts[h]
            for outcome in outcomes:
                for attribute in ("elements", "charges", "chirality", "bonds"):
                    getattr(seen, attribute).update(getattr(outcome, attribute))
                seen.atoms = max(seen.atoms, outcome.atoms)
    print(
        f"all: {total['molecules']:,} molecules; exact with explicit hydrogens {total['explicit']:,}, "
        f"with implicit hydrogens {total['implicit']:,}"
    )
    print(f"elements (atoms): {dict(seen.elements.most_common())}")
    print(f"formal charges (atoms): {dict(sorted(seen.charges.items()))}")
    if args.stereo:
        print(f"chirality labels (atoms; 1 clockwise, 2 counterclockwise): {dict(sorted(seen.chirality.items()))}")
    print(f"bond labels (order + 10 x geometry; 12 cis, 22 trans): {dict(sorted(seen.bonds.items()))}")
    print(f"largest molecule: {seen.atoms} heavy atoms")


if __name__ == "__main__":
    main()
