"""Motif extension, linker design and scaffold morphing: the fragments' chemistry (RDKit), the grids with a template per
output, then each Designer call on the tiny model, every output's retention checked here again with RDKit."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from molgen.chem import InvalidMoleculeError
from molgen.design import DesignInputError, DesignResult
from molgen.design.chemistry import murcko_scaffold, parse_core, parse_fragments, side_chains
from molgen.design.editing import CoreConstraint, decoration_grid, template_grid

PAIR = "[*:1]c1ccco1.[*:2]c1ccc(Cl)cc1Cl"  # the two ends of O=C(NCc1ccco1)c1ccc(Cl)cc1Cl, a training molecule


def _holds(smiles: str, fragments: list[str]) -> bool:
    """One molecule containing each fragment (its attachment point any heavy atom, its other atoms keeping their
    degree) on atoms of its own: checked without molgen's Fragments."""
    mol = Chem.MolFromSmiles(smiles)
    if len(Chem.GetMolFrags(mol)) != 1:
        return False
    used: set[int] = set()
    for fragment in fragments:
        query = parse_core(fragment).query
        dummy = next(a.GetIdx() for a in query.GetAtoms() if a.GetAtomicNum() == 0)
        options = [set(m) - {m[dummy]} for m in mol.GetSubstructMatches(query, uniquify=False)]
        free = [atoms for atoms in options if not atoms & used]
        if not free:
            return False
        used |= free[0]
    return True


def _valid(results: list[DesignResult]) -> list[DesignResult]:
    return [r for r in results if r.state == "valid"]


# --- chemistry ------------------------------------------------------------------------------------------------------


def test_fragments_from_one_dotted_smiles_or_two():
    pair, listed = parse_fragments(PAIR), parse_fragments(PAIR.split("."))
    assert (pair.text, pair.split.template, pair.bridged.template) == (listed.text, listed.split.template, listed.bridged.template)
    assert pair.parts == tuple(PAIR.split(".")) and pair.atoms == 13
    assert pair.split.template.count(".") == 1 and len(pair.split.free_positions) == 2  # a cap per fragment
    assert "." not in pair.bridged.template and len(pair.bridged.free_positions) == 1  # one shared carbon
    assert Chem.MolFromSmiles(pair.bridged.template).GetNumAtoms() == 14


@pytest.mark.parametrize(
    "smiles, reason",
    [
        ("O=C(NCc1ccco1)c1ccc(Cl)cc1Cl", None),
        ("Clc1ccc(Oc2ccco2)c(Cl)c1", None),  # a one-atom linker
        ("Clc1ccc(-c2ccco2)c(Cl)c1", "not all retained"),  # no linker atom
        ("Cc1ccc(CCc2ccc(Cl)cc2Cl)o1", "not all retained"),  # the furan substituted off its attachment point
        ("CCc1ccco1.Clc1ccc(C)c(Cl)c1", "not one connected molecule"),
    ],
)
def test_fragments_are_retained_only_whole_and_apart(smiles, reason):
    missing = parse_fragments(PAIR).missing(Chem.MolFromSmiles(smiles))
    assert (missing is None) if reason is None else reason in missing


@pytest.mark.parametrize(
    "fragments, message",
    [
        ("[*:1]c1ccccc1.C1CCNCC1", "fragment 'C1CCNCC1': 0 attachment points; each fragment needs exactly one"),
        (["[*:1]c1ccc([*:2])cc1", "[*:3]C"], r"fragment '\[\*:1\]c1ccc\(\[\*:2\]\)cc1': 2 attachment points"),
        ("[*:1]c1ccccc1.[*:2]C1CC", "invalid SMILES"),
        ("[*:1]=C1CCCC1.[*:2]C", "must be bonded to one core atom by a single bond"),
    ],
)
def test_bad_fragments_name_the_fragment(fragments, message):
    with pytest.raises(InvalidMoleculeError, match=message):
        parse_fragments(fragments)


def test_side_chains_are_everything_outside_the_murcko_scaffold():
    scaffold, chains = side_chains("CN(C)CCNC(=O)c1ccccc1Cl")
    assert scaffold == Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(Chem.MolFromSmiles("CN(C)CCNC(=O)c1ccccc1Cl"))) == "c1ccccc1"
    assert chains == ["CN(C)CCNC(=O)[*:1]", "Cl[*:2]"]  # ReplaceCore's isotope labels become map numbers
    morphs = parse_fragments(chains, name="side chains", scaffold=scaffold)
    assert morphs.missing(Chem.MolFromSmiles("CN(C)CCNC(=O)c1ccccc1Cl")) == "same scaffold as the input"
    assert morphs.missing(Chem.MolFromSmiles("CN(C)CCNC(=O)c1ccncc1Cl")) is None
    assert morphs.missing(Chem.MolFromSmiles("CN(C)CCNC(=O)CCCl")) == "no ring scaffold"
    assert murcko_scaffold(Chem.MolFromSmiles("CCO")) == ""
    five = parse_fragments(side_chains("COC(=O)c1c(NC(=O)c2cc(Cl)ccc2OC)c(C)nn1C")[1], name="side chains")
    assert len(five.parts) == 5 and five.bridged is None  # no one-atom core for five side chains
    with pytest.raises(InvalidMoleculeError, match="molecule 'CCO': no ring"):
        side_chains("CCO")
    with pytest.raises(InvalidMoleculeError, match="it is its scaffold"):
        side_chains("c1ccc2ccccc2c1")


def test_template_grid_gives_each_output_its_own_template():
    a, b = torch.arange(6.0).reshape(3, 2), -torch.arange(8.0).reshape(4, 2)
    start, keep = template_grid([a, b], [[0, 2], [1]], [5, 4], [2, 0])
    assert start.mask.sum(1).tolist() == [5, 4]
    torch.testing.assert_close(start.z[0, 2:5], a)
    torch.testing.assert_close(start.z[1, :4], b)
    assert keep[0].nonzero().flatten().tolist() == [2, 4] and keep[1].nonzero().flatten().tolist() == [1]
    same = decoration_grid(a, [0, 2], [5, 4], [2, 1])
    grid = template_grid([a, a], [[0, 2], [0, 2]], [5, 4], [2, 1])
    assert torch.equal(same[0].z, grid[0].z) and torch.equal(same[1], grid[1])
    with pytest.raises(ValueError, match="at least the template's 4 atoms"):
        template_grid([b], [[0]], [3], [0])


def test_core_constraint_keeps_unfixed_bonds_possible():
    labels, bonds = np.array([[0], [1]]), np.array([[0, 1], [1, 0]])  # a template of two bonded atoms
    edges = np.zeros((4, 4, 3), dtype=np.float32)
    edges[..., 0] = 1.0  # the decoder deems every bond impossible
    nodes = [np.full((4, 2), 0.5, dtype=np.float32)]
    _, fixed = CoreConstraint(labels, bonds, core=[0])(0, nodes, edges)
    present = 1.0 - fixed[..., 0]
    assert present[0, 1] == 1 and present[0, 2] == present[0, 3] == 0  # the kept atom's bonds, fixed
    assert (present[1:, 1:] >= CoreConstraint.FLOOR / 2).all()  # the others possible, if unlikely
    assert fixed.argmax(-1)[1:, 1:].max() == 0


# --- Designer on the tiny model -------------------------------------------------------------------------------------


def test_linked_outputs_hold_both_fragments_in_one_molecule(designer):
    results = designer.link(PAIR, 16, seed=0)
    assert len(results) == 16
    assert _valid(results), Counter(r.state for r in results)
    for r in results:
        if r.state in ("valid", "duplicate") and not r.reasons:  # a repeat of a rejected molecule is a duplicate too
            assert _holds(r.smiles, PAIR.split(".")), r
        if r.state == "rejected" and "not all retained" in r.error:
            assert not _holds(r.smiles, PAIR.split(".")), r
    assert [r.smiles for r in designer.link(PAIR.split("."), 16, seed=0)] == [r.smiles for r in results]


def test_linker_atoms_set_the_linker_length(designer):
    for linker_atoms, allowed in ((3, {3}), ((1, 2), {1, 2})):
        results = designer.link(PAIR, 8, seed=1, linker_atoms=linker_atoms)
        assert _valid(results)
        for r in results:
            if r.state == "valid":
                assert Chem.MolFromSmiles(r.smiles).GetNumAtoms() - 13 in allowed, r


def test_extension_is_decoration_of_a_motif(designer):
    results = designer.extend("[*:1]c1ccccc1", 12, seed=2, extra_atoms=(3, 6))
    assert [r.smiles for r in results] == [r.smiles for r in designer.decorate("[*:1]c1ccccc1", 12, seed=2, extra_atoms=(3, 6))]
    motif = parse_core("[*:1]c1ccccc1")
    assert _valid(results) and all(motif.retained(Chem.MolFromSmiles(r.smiles)) for r in results if r.state == "valid")


def test_morphs_keep_the_side_chains_around_a_new_scaffold(designer):
    smiles = "CCOC(=O)c1ccc(NC(=O)C2CC2)cc1"
    scaffold, chains = side_chains(smiles)
    results = designer.morph(smiles, 16, seed=0)
    assert len(results) == 16 and _valid(results), Counter(r.state for r in results)
    for r in results:
        if r.state == "valid":
            mol = Chem.MolFromSmiles(r.smiles)
            assert _holds(r.smiles, chains) and murcko_scaffold(mol) not in ("", scaffold), r
            assert r.similarity is not None  # to the input
    sized = designer.morph(smiles, 8, seed=0, core_atoms=12)
    kept = sum(Chem.MolFromSmiles(c).GetNumAtoms() - 1 for c in chains)
    assert all(Chem.MolFromSmiles(r.smiles).GetNumAtoms() == kept + 12 for r in sized if r.state == "valid")


def test_inpainting_designs_stream_like_the_others(designer):
    seen = []
    streamed = list(designer.link_iter(PAIR, 20, seed=4, progress=lambda done, total: seen.append((done, total))))
    assert seen[-1] == (20, 20) and len(seen) == 2  # batches of 16
    assert [r.smiles for r in streamed] == [r.smiles for r in designer.link(PAIR, 20, seed=4)]
    avoided = designer.link(PAIR, 8, seed=4, must_avoid=["O=C"])
    assert all("missing" in r.error or "contains forbidden substructure 'O=C'" in r.error for r in avoided if r.state == "rejected")
    assert all(not Chem.MolFromSmiles(r.smiles).HasSubstructMatch(Chem.MolFromSmarts("O=C")) for r in avoided if r.state == "valid")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d.link("[*:1]c1ccccc1", 4), "fragments '\\[\\*:1\\]c1ccccc1': 1 fragments; a linker joins two"),
        (lambda d: d.link("[*:1]c1ccccc1.[*:2]C.[*:3]C", 4), "3 fragments; a linker joins two"),
        (lambda d: d.link("[*:1]c1ccccc1.CC", 4), "fragment 'CC': 0 attachment points"),
        (lambda d: d.link(PAIR, 4, linker_atoms=0), "linker_atoms=0: must be between 1 and"),
        (lambda d: d.link(PAIR, 4, linker_atoms=(2, "5")), "a whole number or a \\(low, high\\) pair"),
        (lambda d: d.link(PAIR, 0), "n=0"),
        (lambda d: d.link(PAIR, 4, layout="middle"), "layout='middle'"),
        (lambda d: d.extend("[*:1]", 4), "motif '\\[\\*:1\\]': only attachment points"),
        (lambda d: d.extend("[*:1]c1ccccc1.[*:2]C", 4), "2 fragments; give one motif"),
        (lambda d: d.decorate("[*:1]c1ccccc1.CC", 4), "core .*2 fragments; give one core"),
        (lambda d: d.morph("CCOCC", 4), "molecule 'CCOCC': no ring, so no scaffold to morph"),
        (lambda d: d.morph("c1ccc2ccccc2c1", 4), "no side chains to keep"),
        (lambda d: d.morph("C1CC", 4), "molecule 'C1CC'.*unclosed ring"),
        (lambda d: d.morph("CCOC(=O)c1ccc(NC(=O)C2CC2)cc1", 4, core_atoms=99), "core_atoms=99: must be between 1 and"),
    ],
)
def test_bad_input_names_the_input(designer, call, message):
    with pytest.raises(DesignInputError, match=message):
        list(call(designer))
