"""A seed outside the shipped model's chemistry (checkpoints/moses: C N O F S Cl Br, no charges, no stereo, at most
35 atoms) is refused with a message naming what is outside: the element, the charge, the stereo centre or bond, the
size. Nothing is changed silently."""

from __future__ import annotations

import pytest
from rdkit import Chem

from molgen.design import Designer, DesignInputError

from ..conftest import REPO

LARGE_SEED = "COCCOCCOCc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1"  # imatinib-like, 45 heavy atoms


@pytest.fixture(scope="module")
def shipped() -> Designer:
    return Designer.from_pretrained(REPO / "checkpoints" / "moses", device="cpu", batch_size=8)


@pytest.mark.parametrize(
    ("smiles", "message"),
    [
        ("CC(=O)Nc1ccc(I)cc1", r"atom 8 \(I\) has atomic_num=53.*element I is outside this model's chemistry \(its elements: C, N, O, F, S, Cl, Br\)"),
        ("C[NH3+]", r"atom 1 \(N\) has formal_charge=1.*formal charge \+1 is outside this model's chemistry \(its charges: 0\)"),
        ("C[C@H](N)C(=O)Nc1ccccc1", r"stereo is outside this model's chemistry.*atom 1 \(C\): tetrahedral centre"),
        ("C/C=C/C(=O)Nc1ccccc1", r"stereo is outside this model's chemistry.*bond 1 \(atoms 1-2, C=C\): double-bond geometry"),
        (LARGE_SEED, r"45 heavy atoms, more than this tokenizer's max_nodes=35"),
    ],
)
def test_a_seed_outside_the_shipped_models_chemistry_is_refused_naming_what(shipped, smiles, message):
    with pytest.raises(DesignInputError, match=message) as error:
        shipped.analogs(smiles, 2)
    assert repr(smiles) in str(error.value)


def test_the_large_seed_is_45_heavy_atoms():
    assert Chem.MolFromSmiles(LARGE_SEED).GetNumHeavyAtoms() == 45


def test_a_stereo_seed_is_designed_flat_only_when_asked_and_the_substitution_is_recorded(shipped):
    lenient = Designer(shipped.pipe, batch_size=8, from_nearest=True)
    seed = "C[C@H](NC(=O)c1ccccc1)c1ccccc1"
    assert lenient._molecule(seed, "seed") == "CC(NC(=O)c1ccccc1)c1ccccc1"
    assert lenient.substitutions[seed] == "CC(NC(=O)c1ccccc1)c1ccccc1"
    assert shipped.substitutions == {}
