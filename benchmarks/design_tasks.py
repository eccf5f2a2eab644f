"""Fragment-constrained design on the shipped model: scaffold decoration, motif extension, linker design and scaffold
morphing, each on a fixed set of inputs cut from MOSES test molecules, with GenMol's figures (validity, uniqueness,
quality) beside the retention of the given atoms.

    python -m benchmarks.design_tasks [--model checkpoints/moses] [--inputs 50] [--per-input 20] [--threads 1] [--write]

Inputs (seeded, deterministic): MOSES test molecules in a fixed shuffled order, cut at their BRICS bonds (RDKit
``BRICS.FindBRICSBonds``): decoration takes the BRICS fragment with the most cut bonds (at least two, with a ring) as
the core, each cut an attachment point; extension cuts one BRICS bond with at least 3 atoms on either side and keeps
the smaller side with a ring (>= 4 atoms) as the motif; linker design cuts two BRICS bonds that leave a middle piece (the linker, dropped) between two end
pieces with a ring (>= 5 atoms each); morphing takes the molecule itself (side chains outside its Murcko scaffold kept).
Each task takes the first ``--inputs`` distinct inputs of its kind. ``--write`` puts the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import pandas as pd
import torch
from rdkit import Chem, RDLogger
from rdkit.Chem import BRICS

from benchmarks.report import write_section
from molgen.design import Designer, DesignInputError
from molgen.design.chemistry import parse_core, parse_fragments, side_chains
from molgen.device import DEFAULT_PRECISION
from molgen.pipeline import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
MOSES_TEST = ROOT / "data" / "moses" / "test.csv.gz"
TASKS = ("decorate", "extend", "link", "morph")
QED_MIN, SA_MAX = 0.6, 4.0  # GenMol's quality: drug-like (QED >= 0.6) and synthesizable (SA <= 4)
BARS = "bars of the issue: 100% retention of the given atoms, >= 95% valid, quality >= 80%"


@dataclass
class Task:
    """One input of a task: what the designer is given, the MOSES molecule it was cut from, and call options."""

    given: str
    source: str
    options: dict = field(default_factory=dict)


# --- inputs ------------------------------------------------------------------------------------------------------


def _pieces(mol: Chem.Mol, bonds: list[tuple[int, int]]) -> list[Chem.Mol]:
    """The pieces of ``mol`` cut at ``bonds`` (atom index pairs), each cut end an attachment point ``[*:k]`` numbered
    from 1 within its piece."""
    ids = [mol.GetBondBetweenAtoms(a, b).GetIdx() for a, b in bonds]
    cut = Chem.FragmentOnBonds(mol, ids, addDummies=True)
    pieces = []
    for piece in Chem.GetMolFrags(cut, asMols=True):
        for k, atom in enumerate((a for a in piece.GetAtoms() if a.GetAtomicNum() == 0), start=1):
            atom.SetIsotope(0)
            atom.SetAtomMapNum(k)
        pieces.append(piece)
    return pieces


def _points(piece: Chem.Mol) -> int:
    return sum(a.GetAtomicNum() == 0 for a in piece.GetAtoms())


def _atoms(piece: Chem.Mol) -> int:
    return piece.GetNumAtoms() - _points(piece)


def _ringed(piece: Chem.Mol) -> bool:
    return piece.GetRingInfo().NumRings() > 0


def _decoration(mol: Chem.Mol, bonds: list, rng: random.Random) -> Task | None:
    pieces = [p for p in _pieces(mol, bonds) if _points(p) >= 2 and _ringed(p)]
    if not pieces:
        return None
    core = max(pieces, key=lambda p: (_points(p), _atoms(p), Chem.MolToSmiles(p)))
    return Task(Chem.MolToSmiles(core), Chem.MolToSmiles(mol))


def _extension(mol: Chem.Mol, bonds: list, rng: random.Random) -> Task | None:
    for bond in rng.sample(bonds, len(bonds)):
        pieces = _pieces(mol, [bond])
        if min(_atoms(p) for p in pieces) < 3:  # something to grow on either side
            continue
        motifs = [p for p in pieces if _ringed(p) and _atoms(p) >= 4]
        if motifs:
            return Task(Chem.MolToSmiles(min(motifs, key=lambda p: (_atoms(p), Chem.MolToSmiles(p)))), Chem.MolToSmiles(mol))
    return None


def _linker(mol: Chem.Mol, bonds: list, rng: random.Random) -> Task | None:
    options = []
    for pair in combinations(bonds, 2):
        pieces = _pieces(mol, list(pair))
        ends = [p for p in pieces if _points(p) == 1]
        middle = [p for p in pieces if _points(p) == 2]
        if len(ends) == 2 and len(middle) == 1 and all(_ringed(p) and _atoms(p) >= 5 for p in ends):
            for k, end in enumerate(ends, start=1):  # the two ends' points [*:1] and [*:2]
                next(a for a in end.GetAtoms() if a.GetAtomicNum() == 0).SetAtomMapNum(k)
            options.append(Task(".".join(Chem.MolToSmiles(p) for p in ends), Chem.MolToSmiles(mol), {"original_linker": _atoms(middle[0])}))
    return rng.choice(options) if options else None


def _morph(mol: Chem.Mol, bonds: list, rng: random.Random) -> Task | None:
    smiles = Chem.MolToSmiles(mol)
    try:
        side_chains(smiles)
    except ValueError:
        return None
    return Task(smiles, smiles)


CUTS = {"decorate": _decoration, "extend": _extension, "link": _linker, "morph": _morph}


def candidates(task: str, seed: int = 0):
    """Inputs of ``task`` from MOSES test molecules in a fixed shuffled order (distinct inputs only)."""
    smiles = pd.read_csv(MOSES_TEST)["SMILES"].sample(frac=1.0, random_state=seed).tolist()
    rng = random.Random(seed)
    seen = set()
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        bonds = sorted(tuple(sorted(atoms)) for atoms, _ in BRICS.FindBRICSBonds(mol))
        if not bonds and task != "morph":
            continue
        made = CUTS[task](mol, bonds, rng)
        if made is not None and made.given not in seen:
            seen.add(made.given)
            yield made


# --- runs --------------------------------------------------------------------------------------------------------


def _kept(task: str, given: str):
    """What the outputs must keep, as molgen checks it (RDKit substructure matches)."""
    if task in ("decorate", "extend"):
        return parse_core(given)
    if task == "link":
        return parse_fragments(given)
    return parse_fragments(side_chains(given)[1])  # morph: the side chains (the new-scaffold rule is separate)


def run(designer: Designer, task: str, n_inputs: int, per_input: int, original_length: bool = False) -> dict:
    """Figures of one task over ``n_inputs`` inputs, ``per_input`` attempts each."""
    call = {"decorate": designer.decorate, "extend": designer.extend, "link": designer.link, "morph": designer.morph}[task]
    counts: Counter = Counter()
    unique, quality, refused = 0, 0, []
    start = time.time()
    used = 0
    for made in candidates(task):
        if used == n_inputs:
            break
        options = {"linker_atoms": made.options["original_linker"]} if original_length else {}
        try:
            results = call(made.given, per_input, seed=used, **options)
        except DesignInputError as exc:
            refused.append(f"{made.given}: {exc}")
            continue
        used += 1
        kept = _kept(task, made.given)
        distinct = set()
        for r in results:
            counts["attempts"] += 1
            if r.smiles is None:
                continue
            counts["valid"] += 1
            retained = kept.retained(Chem.MolFromSmiles(r.smiles))
            counts["retained"] += retained
            if r.state in ("valid", "duplicate") and not r.reasons:  # a repeat of a rejected molecule is a duplicate too
                assert retained, (task, made.given, r.smiles)  # reported outputs keep the given atoms: checked, not assumed
                counts["success"] += 1
                counts["reported retained"] += retained
            if r.state == "valid":
                distinct.add(r.smiles)
                quality += r.properties["QED"] >= QED_MIN and r.properties["SA"] <= SA_MAX
            if r.state == "rejected":
                counts["rejected: " + r.reasons[0].split(" '")[0]] += 1
        unique += len(distinct)
    counts["inputs"], counts["unique"], counts["quality"] = used, unique, quality
    return {"counts": counts, "seconds": time.time() - start, "refused": refused}


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def source_quality(n_inputs: int) -> str:
    """GenMol's quality of the MOSES molecules the inputs were cut from (context for the figures)."""
    from molgen.chem import compute_properties, parse_smiles

    sources = {made.source for task in TASKS for _, made in zip(range(n_inputs), candidates(task), strict=False)}
    good = sum(p["QED"] >= QED_MIN and p["SA"] <= SA_MAX for p in (compute_properties(parse_smiles(s), ["QED", "SA"]) for s in sources))
    return f"{good / len(sources):.1%} of the {len(sources)} source molecules"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--inputs", type=int, default=50, help="inputs per task")
    parser.add_argument("--per-input", type=int, default=20, help="attempts per input")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", default=DEFAULT_PRECISION)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RDLogger.DisableLog("rdApp.*")
    designer = Designer.from_pretrained(args.model, device="cpu", precision=args.precision)
    runs = [(task, False) for task in args.tasks.split(",")]
    if "link" in args.tasks.split(","):
        runs.append(("link", True))
    rows = []
    for task, original in runs:
        figures = run(designer, task, args.inputs, args.per_input, original_length=original)
        c = figures["counts"]
        label = f"{task} (linker of the original's length)" if original else task
        rejected = ", ".join(f"{k.split(': ', 1)[1]} {v}" for k, v in sorted(c.items()) if k.startswith("rejected: "))
        rows.append((
            label,
            f"success {_share(c['success'], c['attempts'])}; valid {_share(c['valid'], c['attempts'])}; retained {_share(c['retained'], c['valid'])} "
            f"of valid, {_share(c['reported retained'], c['success'])} of reported; unique {_share(c['unique'], c['success'])}; "
            f"quality {_share(c['quality'], c['attempts'])} (of valid unique: {_share(c['quality'], c['unique'])}); "
            f"{c['inputs']} inputs x {args.per_input}, {figures['seconds']:.0f} s" + (f"; rejected: {rejected}" if rejected else "")
            + (f"; {len(figures['refused'])} inputs refused" if figures["refused"] else ""),
        ))  # fmt: skip
        print(rows[-1], flush=True)
        for line in figures["refused"][:5]:
            print("  refused:", line, flush=True)
    rows.append(("quality of the source molecules", source_quality(args.inputs)))
    notes = (
        f"Each input gets `Designer.<task>(input, {args.per_input}, seed=k)` with the defaults (atoms added drawn from "
        "the training size distribution; a morph's new core the input scaffold's size +- 2; layout probed; kept atoms fixed "
        "at decoding), except the row with the original linker's length (`linker_atoms` = the atoms of the piece cut out). "
        "success = attempts reported `valid`, or `duplicate` of a valid one (a molecule keeping the given atoms, for linkers one molecule "
        "with both fragments apart, for morphs all side chains around a ring scaffold other than the input's); valid = attempts "
        "decoding to a molecule (valence-aware decoding, valid by construction); retained = molecules keeping the given atoms "
        "(RDKit substructure match, attachment points on new atoms, other atoms keeping their degree), of the valid ones "
        "(before any rejection) and of the reported ones (100% is asserted on every output); unique = distinct reported "
        f"molecules per input, summed, over the successes; quality (GenMol's) = distinct reported molecules with QED >= {QED_MIN} "
        f"and SA <= {SA_MAX:g} (RDKit QED, the project's SA scorer: RDKit Contrib sascorer) over all attempts, and in brackets over "
        f"the distinct reported ones; {BARS}. Rejections by their first reason."
    )
    sample = f"{args.inputs} inputs per task cut from MOSES test at BRICS bonds (seeded), {args.per_input} attempts each"
    if args.write:
        print(write_section("Guided design: decoration, motif extension, linker design and scaffold morphing (MOSES test inputs)", rows, notes, sample=sample))
    else:
        for label, value in rows:
            print(f"{label} | {value}")


if __name__ == "__main__":
    main()
