"""Stereo in kept atoms: a model with stereo keeps a core's (or fragments') tetrahedral centres and double-bond
geometry exactly as given, whatever the decoder wrote on those atoms; a model without stereo refuses a core with
stereo marks, naming them, instead of dropping them."""

from __future__ import annotations

import random

import pytest
from rdkit import Chem
from rdkit.Chem import BRICS

from molgen.checkpoint import load_domain
from molgen.design import Designer, DesignInputError
from molgen.design.chemistry import impose_stereo, parse_core, parse_fragments, stereo_marks
from molgen.design.constraints import Screen

from ..conftest import REPO

ZINC_TEST = REPO / "data" / "zinc" / "test.txt"


def _stereo_molecules(count: int) -> list[str]:
    out = []
    for line in ZINC_TEST.read_text().splitlines():
        mol = Chem.MolFromSmiles(line.strip())
        if mol is not None and stereo_marks(mol):
            out.append(Chem.MolToSmiles(mol))
        if len(out) == count:
            break
    return out


def _scrambled(smiles: str, rng: random.Random) -> Chem.Mol:
    """The molecule with each stereo element flipped at random, written in a random atom order."""
    mol = Chem.RWMol(Chem.MolFromSmiles(smiles))
    flip = {Chem.BondStereo.STEREOE: Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOZ: Chem.BondStereo.STEREOE}
    for atom in mol.GetAtoms():
        if atom.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED and rng.random() < 0.5:
            atom.InvertChirality()
    for bond in mol.GetBonds():
        if bond.GetStereo() in flip and rng.random() < 0.5:
            bond.SetStereo(flip[bond.GetStereo()])
    return Chem.MolFromSmiles(Chem.MolToSmiles(mol, doRandom=True))


def test_imposing_a_molecules_own_stereo_restores_it_from_any_scrambling_and_atom_order():
    rng = random.Random(0)
    molecules = _stereo_molecules(300)
    assert len(molecules) == 300
    restored = 0
    for smiles in molecules:
        source = Chem.MolFromSmiles(smiles)
        target = _scrambled(smiles, rng)
        result = impose_stereo(target, source, target.GetSubstructMatch(source))
        assert result.HasSubstructMatch(source, useChirality=True), smiles
        restored += Chem.MolToSmiles(result) == smiles
    assert restored >= 299  # a symmetric molecule may take its stereo on the mirror-equivalent half


def test_a_substituent_on_a_centres_hydrogen_takes_the_hydrogens_place():
    core = Chem.MolFromSmiles("F[C@@H](Cl)Br")
    target = Chem.MolFromSmiles("FC(C)(Cl)Br")
    result = impose_stereo(target, core, target.GetSubstructMatch(core))
    assert Chem.MolToSmiles(result) == Chem.MolToSmiles(Chem.MolFromSmiles("F[C@@](C)(Cl)Br"))
    assert result.HasSubstructMatch(core, useChirality=True)


def test_brics_cores_cut_from_chiral_zinc_molecules_are_kept_with_their_stereo():
    rng = random.Random(1)
    checked = 0
    for smiles in _stereo_molecules(120):
        mol = Chem.MolFromSmiles(smiles)
        bonds = list(BRICS.FindBRICSBonds(mol))
        if not bonds:
            continue
        (i, j), _ = bonds[rng.randrange(len(bonds))]
        pieces = Chem.FragmentOnBonds(mol, [mol.GetBondBetweenAtoms(i, j).GetIdx()], dummyLabels=[(1, 1)])
        fragments = sorted(Chem.GetMolFrags(pieces, asMols=True), key=lambda f: -len(stereo_marks(f)))
        if not stereo_marks(fragments[0]):
            continue
        text = Chem.MolToSmiles(fragments[0]).replace("[1*]", "[*:1]")
        core = parse_core(text, stereo=True)
        assert core.stereo
        decoded = _scrambled(smiles, rng)  # the decoder may write any configuration on the kept atoms
        kept = core.impose(decoded)
        assert core.missing(kept) is None, (text, Chem.MolToSmiles(decoded))
        checked += 1
    assert checked >= 30


def test_the_screen_gives_outputs_the_cores_stereo_and_rejects_nothing_for_it():
    domain = load_domain(REPO / "checkpoints" / "moses" / "domain.json")  # properties only
    core = parse_core("[*:1]c1ccc([C@H](N)C/C=C/C)cc1", stereo=True)
    screen = Screen(domain, core=core)
    wrong = screen("C/C=C\\C[C@@H](N)c1ccc(OC)cc1")
    flat = screen("CC=CCC(N)c1ccc(CC)cc1")
    assert wrong.state == flat.state == "valid"
    # the core's centre seen from the ring carbon (H, N, CH2 anticlockwise) is, seen from CH2, (H, N, ring) clockwise
    assert wrong.smiles == Chem.MolToSmiles(Chem.MolFromSmiles("C/C=C/C[C@@H](N)c1ccc(OC)cc1"))
    assert flat.smiles == Chem.MolToSmiles(Chem.MolFromSmiles("C/C=C/C[C@@H](N)c1ccc(CC)cc1"))


def test_fragments_keep_each_fragments_stereo_and_a_mismatch_is_not_retained():
    fragments = parse_fragments(["[*:1]C/C=C/C", "[*:2][C@H](F)c1ccccc1"], stereo=True)
    assert fragments.stereo and fragments.bridged.template == "C/C=C/CC[C@H](F)c1ccccc1"
    assert fragments.retained(Chem.MolFromSmiles("C/C=C/CCC[C@H](F)c1ccccc1"))
    for other in ("C/C=C\\CCC[C@H](F)c1ccccc1", "C/C=C/CCC[C@@H](F)c1ccccc1", "CC=CCCC(F)c1ccccc1"):
        mol = Chem.MolFromSmiles(other)
        assert not fragments.retained(mol)
        assert fragments.retained(fragments.impose(mol)), other


def test_a_model_without_stereo_refuses_stereo_cores_and_fragments_naming_the_marks():
    designer = Designer.from_pretrained(REPO / "checkpoints" / "moses", device="cpu", batch_size=8)
    with pytest.raises(DesignInputError, match=r"core '\[\*:1\]c1ccc\(\[C@H\]\(N\)C\)cc1': stereo is outside .* atom 5 \(C\): tetrahedral centre"):
        designer.decorate("[*:1]c1ccc([C@H](N)C)cc1", 2)
    with pytest.raises(DesignInputError, match=r"fragment '\[\*:1\]C/C=C/C': stereo is outside .*double-bond geometry"):
        designer.link(["[*:1]C/C=C/C", "[*:2]c1ccccc1"], 2)
    with pytest.raises(DesignInputError, match=r"motif .*stereo is outside"):
        designer.extend("[*:1]C[C@@H](O)c1ccccc1", 2)
