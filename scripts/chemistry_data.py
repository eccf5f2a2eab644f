"""Training molecules for a model of drug chemistry as ZINC draws it: charges at pH 7, stereo, larger molecules.

MOSES molecules are ZINC molecules with their stereo and protonation states removed. This script puts them back, in
a seeded, reproducible way, and adds the ZINC-250k validation split as it is:

- a share (``--stereo-share``) of MOSES molecules with unassigned stereocentres or double bonds gets one of their
  stereoisomers at random (RDKit's ``EnumerateStereoisomers``, at most ``--max-isomers`` considered);
- a share (``--charge-share``) gets one of its protonation states between pH 6.4 and 8.4 at random, by Dimorphite-DL
  (``protonate_smiles``);
- the rest stay as they are, so that the model keeps reading MOSES molecules themselves (neutral, flat);
- every molecule of ``data/zinc/valid.txt`` is appended as it is (``data/zinc/test.txt`` stays held out);
- ``--large`` larger molecules (``--large-atoms``, default 39-56 heavy atoms, beyond ZINC-250k's 38) are made by joining
  two of the molecules above with a single bond between an aromatic CH of each (a biaryl, the commonest way drugs
  grow), so that the tokenizer's positions beyond 38 atoms are trained and seeds up to 50 atoms are read.

Writes one SMILES per line and a JSON report beside it (counts, shares, the data's rates of charge and stereo).

    python scripts/chemistry_data.py --moses 250000 --large 15000 --val 3000 --out runs/chem/train.smi
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path

from rdkit import Chem, RDLogger
from rdkit.Chem.EnumerateStereoisomers import EnumerateStereoisomers, StereoEnumerationOptions

REPO = Path(__file__).resolve().parent.parent
MOSES_TRAIN = REPO / "data" / "moses" / "train.csv.gz"
ZINC_VALID = REPO / "data" / "zinc" / "valid.txt"
PH_RANGE = (6.4, 8.4)


def moses_smiles(path: Path = MOSES_TRAIN) -> list[str]:
    with gzip.open(path, "rt") as handle:
        header = handle.readline().strip().lower().split(",")
        column = header.index("smiles") if "smiles" in header else 0
        return [line.strip().split(",")[column] for line in handle if line.strip()]


def with_stereo(smiles: str, rng: random.Random, max_isomers: int) -> str:
    """One stereoisomer of ``smiles`` at random (itself if it has no unassigned stereo element)."""
    mol = Chem.MolFromSmiles(smiles)
    options = StereoEnumerationOptions(onlyUnassigned=True, unique=True, maxIsomers=max_isomers, rand=rng.randrange(2**31))
    isomers = [Chem.MolToSmiles(m) for m in EnumerateStereoisomers(mol, options=options)]
    return rng.choice(isomers) if isomers else smiles


def protonated(smiles: str, rng: random.Random) -> str:
    """One of the Dimorphite-DL protonation states of ``smiles`` between pH 6.4 and 8.4 (its default window around
    physiological pH), at random (itself if Dimorphite gives none)."""
    from dimorphite_dl import protonate_smiles

    variants = protonate_smiles(smiles, ph_min=PH_RANGE[0], ph_max=PH_RANGE[1])
    if not variants:
        return smiles
    mol = Chem.MolFromSmiles(rng.choice(sorted(variants)))
    return Chem.MolToSmiles(mol) if mol is not None else smiles


def joined(first: str, second: str, rng: random.Random) -> str | None:
    """``first`` and ``second`` joined by a single bond between a random aromatic carbon bearing a hydrogen of each;
    None when either has no such carbon."""
    mols = [Chem.MolFromSmiles(first), Chem.MolFromSmiles(second)]
    if any(m is None for m in mols):
        return None
    sites = [[a.GetIdx() for a in m.GetAtoms() if a.GetIsAromatic() and a.GetSymbol() == "C" and a.GetTotalNumHs() == 1] for m in mols]
    if not all(sites):
        return None
    combined = Chem.RWMol(Chem.CombineMols(*mols))
    combined.AddBond(rng.choice(sites[0]), mols[0].GetNumAtoms() + rng.choice(sites[1]), Chem.BondType.SINGLE)
    try:
        Chem.SanitizeMol(combined)
    except Exception:  # noqa: BLE001 - a join RDKit cannot sanitise is skipped
        return None
    return Chem.MolToSmiles(combined)


def larger(pool: list[str], count: int, atoms: tuple[int, int], rng: random.Random) -> list[str]:
    """``count`` molecules of ``atoms[0]``..``atoms[1]`` heavy atoms, each two of ``pool`` joined (see ``joined``)."""
    sizes = [Chem.MolFromSmiles(s).GetNumAtoms() for s in pool]
    out: list[str] = []
    while len(out) < count:
        i, j = rng.randrange(len(pool)), rng.randrange(len(pool))
        if not atoms[0] <= sizes[i] + sizes[j] <= atoms[1]:
            continue
        smiles = joined(pool[i], pool[j], rng)
        if smiles is not None:
            out.append(smiles)
    return out


def rates(smiles: list[str]) -> dict[str, float]:
    """Shares of molecules with a formal charge and with a stereo mark."""
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    charged = sum(any(a.GetFormalCharge() for a in m.GetAtoms()) for m in mols if m is not None)
    stereo = sum(("@" in s or "/" in s or "\\" in s) for s in smiles)
    return {"charged": charged / max(len(smiles), 1), "stereo": stereo / max(len(smiles), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moses", type=int, default=400_000, help="MOSES train molecules to take (a seeded random subset)")
    parser.add_argument("--stereo-share", type=float, default=0.6)
    parser.add_argument("--charge-share", type=float, default=0.5)
    parser.add_argument("--max-isomers", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-zinc", action="store_true", help="leave out data/zinc/valid.txt")
    parser.add_argument("--large", type=int, default=0, help="molecules joined from two of the others (see above)")
    parser.add_argument("--large-atoms", type=int, nargs=2, default=(39, 56), metavar=("MIN", "MAX"))
    parser.add_argument("--val", type=int, default=0, help="molecules held out at random into OUT's .val.smi (the rest: OUT's .fit.smi)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")
    rng = random.Random(args.seed)
    moses = moses_smiles()
    chosen = rng.sample(moses, min(args.moses, len(moses)))
    began, out, counts = time.perf_counter(), [], {"stereo": 0, "charge": 0}
    for k, smiles in enumerate(chosen):
        changed = smiles
        if rng.random() < args.stereo_share:
            changed = with_stereo(changed, rng, args.max_isomers)
            counts["stereo"] += changed != smiles
        if rng.random() < args.charge_share:
            before = changed
            changed = protonated(changed, rng)
            counts["charge"] += changed != before
        out.append(changed)
        if (k + 1) % 20_000 == 0:
            print(f"{k + 1} of {len(chosen)} MOSES molecules, {time.perf_counter() - began:.0f} s", flush=True)
    zinc = [] if args.no_zinc else [line.split()[0] for line in ZINC_VALID.read_text().splitlines() if line.strip()]
    large = larger(out + zinc, args.large, tuple(args.large_atoms), rng) if args.large else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out + zinc + large) + "\n")
    if args.val:
        lines = out + zinc + large
        held = set(random.Random(args.seed + 7).sample(range(len(lines)), args.val))
        args.out.with_suffix(".val.smi").write_text("\n".join(s for i, s in enumerate(lines) if i in held) + "\n")
        args.out.with_suffix(".fit.smi").write_text("\n".join(s for i, s in enumerate(lines) if i not in held) + "\n")
    report = {
        "moses": len(out), "zinc_valid": len(zinc), "seed": args.seed, "stereo_share": args.stereo_share, "charge_share": args.charge_share,
        "given_stereo": counts["stereo"], "protonated": counts["charge"], "seconds": round(time.perf_counter() - began, 1),
        "rates_moses_part": rates(out), "rates_zinc_valid": rates(zinc),
        "large": len(large), "large_atoms": list(args.large_atoms), "rates_all": rates(out + zinc + large), "val": args.val,
    }  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
