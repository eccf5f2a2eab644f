"""The PMO tasks that need only RDKit, written from the GuacaMol paper (Brown et al. 2019) and its reference
implementation's definitions: each task is a function ``list[str] -> list[float]`` in [0, 1] (0 for a SMILES that
does not parse).

Building blocks, as GuacaMol defines them:
- Tanimoto similarity on a fingerprint: ``ECFP4`` / ``ECFP6`` (Morgan count fingerprints of radius 2 / 3),
  ``FCFP4`` (Morgan radius 2 on feature invariants, counts), ``AP`` (atom pairs, counts, max distance 10), ``PHCO``
  (Gobbi 2D pharmacophores);
- score modifiers: ``gaussian(mu, sigma)``; ``min_gaussian`` (1 below mu, Gaussian above); ``max_gaussian`` (1 above mu,
  Gaussian below); ``clipped(upper)`` (x / upper, capped at 1);
- an isomer score: a Gaussian (sigma 1) on the count of each element of the formula (hydrogens included) and a
  Gaussian (sigma 2) on the total atom count, combined by geometric mean;
- the components of a multi-property task combined by geometric mean (arithmetic for the two hop tasks).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem.Pharm2D import Generate, Gobbi_Pharm2D

RDLogger.DisableLog("rdApp.*")

Score = Callable[[Chem.Mol], float]

_MORGAN2 = rdFingerprintGenerator.GetMorganGenerator(radius=2)
_MORGAN3 = rdFingerprintGenerator.GetMorganGenerator(radius=3)
_FEATURE2 = rdFingerprintGenerator.GetMorganGenerator(
    radius=2, atomInvariantsGenerator=rdFingerprintGenerator.GetMorganFeatureAtomInvGen()
)
_PAIRS = rdFingerprintGenerator.GetAtomPairGenerator(maxDistance=10)

FINGERPRINTS: dict[str, Callable[[Chem.Mol], object]] = {
    "ECFP4": _MORGAN2.GetSparseCountFingerprint,
    "ECFP6": _MORGAN3.GetSparseCountFingerprint,
    "FCFP4": _FEATURE2.GetSparseCountFingerprint,
    "AP": _PAIRS.GetSparseCountFingerprint,
    "PHCO": lambda mol: Generate.Gen2DFingerprint(mol, Gobbi_Pharm2D.factory),
}


def gaussian(mu: float, sigma: float) -> Callable[[float], float]:
    return lambda x: math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def min_gaussian(mu: float, sigma: float) -> Callable[[float], float]:
    g = gaussian(mu, sigma)
    return lambda x: 1.0 if x <= mu else g(x)


def max_gaussian(mu: float, sigma: float) -> Callable[[float], float]:
    g = gaussian(mu, sigma)
    return lambda x: 1.0 if x >= mu else g(x)


def clipped(upper: float) -> Callable[[float], float]:
    return lambda x: min(max(x, 0.0) / upper, 1.0)


def similarity(target: str, fingerprint: str, modifier: Callable[[float], float] = lambda x: x) -> Score:
    make = FINGERPRINTS[fingerprint]
    reference = make(Chem.MolFromSmiles(target))
    return lambda mol: modifier(DataStructs.TanimotoSimilarity(reference, make(mol)))


def descriptor(function: Callable[[Chem.Mol], float], modifier: Callable[[float], float]) -> Score:
    return lambda mol: modifier(function(mol))


def smarts(pattern: str, inverse: bool = False) -> Score:
    query = Chem.MolFromSmarts(pattern)
    return lambda mol: float(mol.HasSubstructMatch(query) != inverse)


def isomer(formula: str) -> Score:
    """GuacaMol's isomer score for a formula such as ``C9H10N2O2PF2Cl``."""
    import re

    counts = {element: int(n or 1) for element, n in re.findall(r"([A-Z][a-z]?)(\d*)", formula)}
    total = sum(counts.values())

    def score(mol: Chem.Mol) -> float:
        found = Counter(atom.GetSymbol() for atom in Chem.AddHs(mol).GetAtoms())
        parts = [gaussian(n, 1.0)(found.get(element, 0)) for element, n in counts.items()]
        parts.append(gaussian(total, 2.0)(sum(found.values())))
        return geometric(parts)

    return score


def geometric(values: list[float]) -> float:
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def combine(parts: list[Score], mean: str = "geometric") -> Score:
    if mean == "geometric":
        return lambda mol: geometric([p(mol) for p in parts])
    return lambda mol: sum(p(mol) for p in parts) / len(parts)


def _count(symbol: str) -> Callable[[Chem.Mol], float]:
    return lambda mol: sum(atom.GetSymbol() == symbol for atom in Chem.AddHs(mol).GetAtoms())


def _task_scores() -> dict[str, Score]:
    logp, tpsa = Crippen.MolLogP, Descriptors.TPSA
    osimertinib = "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34"
    ranolazine = "COc1ccccc1OCC(O)CN2CCN(CC(=O)Nc3c(C)cccc3C)CC2"
    sitagliptin = "Fc1cc(c(F)cc1F)CC(N)CC(=O)N3Cc2nnc(n2CC3)C(F)(F)F"
    sitagliptin_mol = Chem.MolFromSmiles(sitagliptin)
    hop = "CCCOc1cc2ncnc(Nc3ccc4ncsc4c3)c2cc1S(=O)(=O)C(C)(C)C"
    quinazoline = "[#7]-c1n[c;h1]nc2[c;h1]c(-[#8])[c;h0][c;h1]c12"
    return {
        "qed": QED.qed,
        "osimertinib_mpo": combine(
            [
                similarity(osimertinib, "FCFP4", clipped(0.8)),
                similarity(osimertinib, "ECFP6", min_gaussian(0.85, 0.1)),
                descriptor(tpsa, max_gaussian(100, 10)),
                descriptor(logp, min_gaussian(1, 1)),
            ]
        ),
        "ranolazine_mpo": combine(
            [
                similarity(ranolazine, "AP", clipped(0.7)),
                descriptor(logp, max_gaussian(7, 1)),
                descriptor(tpsa, max_gaussian(95, 20)),
                descriptor(_count("F"), gaussian(1, 1.0)),
            ]
        ),
        "perindopril_mpo": combine(
            [
                similarity("O=C(OCC)C(NC(C(=O)N1C(C(=O)O)CC2CCCCC12)C)CCC", "ECFP4"),
                descriptor(rdMolDescriptors.CalcNumAromaticRings, gaussian(2, 0.5)),
            ]
        ),
        "sitagliptin_mpo": combine(
            [
                similarity(sitagliptin, "ECFP4", gaussian(0, 0.1)),
                descriptor(logp, gaussian(logp(sitagliptin_mol), 0.2)),
                descriptor(tpsa, gaussian(tpsa(sitagliptin_mol), 5)),
                isomer("C16H15F6N5O"),
            ]
        ),
        "zaleplon_mpo": combine(
            [
                similarity("O=C(C)N(CC)C1=CC=CC(C2=CC=NC3=C(C=NN23)C#N)=C1", "ECFP4"),
                isomer("C19H17N3O2"),
            ]
        ),
        "amlodipine_mpo": combine(
            [
                similarity("Clc1ccccc1C2C(=C(/N/C(=C2/C(=O)OCC)COCCN)C)\\C(=O)OC", "ECFP4"),
                descriptor(rdMolDescriptors.CalcNumRings, gaussian(3, 0.5)),
            ]
        ),
        "isomers_c9h10n2o2pf2cl": isomer("C9H10N2O2PF2Cl"),
        "scaffold_hop": combine(
            [
                similarity(hop, "PHCO", clipped(0.75)),
                smarts("[#6]-[#6]-[#6]-[#8]-[#6]~[#6]~[#6]~[#6]~[#6]-[#7]-c1ccc2ncsc2c1"),
                smarts(quinazoline, inverse=True),
            ],
            mean="arithmetic",
        ),
        "deco_hop": combine(
            [
                similarity(hop, "PHCO", clipped(0.85)),
                smarts("CS([#6])(=O)=O", inverse=True),
                smarts("[#7]-c1ccc2ncsc2c1", inverse=True),
                smarts(quinazoline),
            ],
            mean="arithmetic",
        ),
        "valsartan_smarts": combine(
            [
                smarts("CN(C=O)Cc1ccc(c2ccccc2)cc1"),
                descriptor(logp, gaussian(2.0165, 0.2)),
                descriptor(tpsa, gaussian(77.04, 5)),
                descriptor(Descriptors.BertzCT, gaussian(896.38, 30)),
            ]
        ),
        "thiothixene_rediscovery": similarity("CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN4CCN(C)CC4)c2c1", "ECFP4"),
        "troglitazone_rediscovery": similarity("Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O", "ECFP4"),
        "mestranol_similarity": similarity(
            "COc1ccc2[C@H]3CC[C@@]4(C)[C@@H](CC[C@@]4(O)C#C)[C@@H]3CCc2c1", "AP", clipped(0.75)
        ),
        "albuterol_similarity": similarity("CC(C)(C)NCC(O)c1ccc(O)c(CO)c1", "FCFP4", clipped(0.75)),
        "median2": combine(
            [
                similarity("O=C1N(CC(N2C1CC3=C(C2C4=CC5=C(OCO5)C=C4)NC6=C3C=CC=C6)=O)C", "ECFP6"),
                similarity("CCCC1=NN(C2=C1N=C(NC2=O)C3=C(C=CC(=C3)S(=O)(=O)N4CCN(CC4)C)OCC)C", "ECFP6"),
            ]
        ),
    }


def tasks() -> dict[str, Callable[[list[str]], list[float]]]:
    """Task name (PMO's) -> batch objective."""

    def batch(score: Score, name: str) -> Callable[[list[str]], list[float]]:
        def objective(smiles: list[str]) -> list[float]:
            out = []
            for s in smiles:
                mol = Chem.MolFromSmiles(s)
                out.append(0.0 if mol is None else float(score(mol)))
            return out

        objective.__name__ = name
        return objective

    return {name: batch(score, name) for name, score in _task_scores().items()}
