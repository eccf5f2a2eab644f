"""Molecules a user gives are read strictly and never changed silently: one molecule per field, inside the model's
size, and reconstructed exactly by the model before any design starts from it (or, when asked, designed from the
reconstruction with the substitution reported). Hostile inputs get a clear error, never a crash or a hang."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molgen.chem import MAX_SMILES_LENGTH
from molgen.design import DesignInputError, Designer, objectives

METFORMIN = "CN(C)C(=N)NC(=N)N"  # the shipped tokenizer decodes it to another molecule
SEED = "CC(=O)Nc1ccc(OCC(=O)N2CCCC2)cc1"  # one it reconstructs


@pytest.mark.parametrize(
    ("smiles", "message"),
    [
        ("CCO CCO", "text after the SMILES"),
        (f"{SEED}.Cl", "2 fragments"),
        (METFORMIN, "does not reconstruct it: its tokens decode to"),
        ("C" * (MAX_SMILES_LENGTH + 1), "longer than the 1,000 characters"),
        ("C" * 60, "heavy atoms, more than this tokenizer's max_nodes"),
        ("[Se]1C=CC=C1", "vocabulary does not contain"),
        ("c1ccccc1(", "invalid SMILES"),
    ],
)
def test_a_seed_outside_what_the_model_reads_is_refused_naming_it(designer, smiles, message):
    with pytest.raises(DesignInputError, match=message) as error:
        designer.analogs(smiles, 2)
    assert repr(smiles[:60]) in str(error.value) or repr(smiles)[:40] in str(error.value)


def test_every_user_molecule_is_checked_before_use(designer):
    with pytest.raises(DesignInputError, match="first SMILES"):
        designer.interpolate(METFORMIN, SEED, n_points=3)
    with pytest.raises(DesignInputError, match="start SMILES 'CCO CCO'"):
        designer.optimize(objectives.qed(), n=4, calls=6, start=[SEED, "CCO CCO"])
    # optimisation scores its start molecules as given: one the model does not reconstruct is still used exactly
    result = designer.optimize(objectives.qed(), n=4, calls=6, start=[SEED, METFORMIN])
    assert [r.smiles for r in result.evaluated[:2]] == [designer.pipe.domain.canonical(s) for s in (SEED, METFORMIN)]
    with pytest.raises(DesignInputError, match="isotope"):
        designer.decorate("[2H]c1ccccc1", 2)


def test_opting_in_designs_from_the_largest_fragment_or_the_reconstruction_and_reports_it(designer):
    lenient = Designer(designer.pipe, batch_size=16, largest_fragment=True, from_nearest=True)
    fragment = lenient.analogs(f"{SEED}.Cl", 2)
    assert fragment and all(r.state != "valid" or r.smiles != SEED for r in fragment)  # the seed comes back as a duplicate
    assert sum(r.state == "duplicate" and r.similarity == 1.0 for r in fragment) >= 1 or len(fragment) >= 2
    assert lenient.analogs(METFORMIN, 2)
    canonical = designer.pipe.domain.canonical(METFORMIN)
    assert canonical in lenient.substitutions and lenient.substitutions[canonical] != canonical
    assert designer.substitutions == {}  # the strict designer substituted nothing


def test_standardisation_per_designer_is_off_by_default_and_reports_each_change(designer):
    from molgen.chem import StandardizeOptions

    charged = "O=C([O-])c1ccc(NC(=O)c2ccccc2)cc1"
    with pytest.raises(DesignInputError, match="charge"):
        designer.analogs(charged, 2)  # the shipped chemistry has no charges: refused, never changed silently
    neutral = Designer(designer.pipe, batch_size=16, standardize=StandardizeOptions(neutralize=True), from_nearest=True)
    assert neutral._molecule(charged, "seed") == "O=C(O)c1ccc(NC(=O)c2ccccc2)cc1"
    (result,) = neutral.standardized.values()
    assert result.changes and "neutralised charges (chembl)" in result.changes[0]
    with pytest.raises(DesignInputError, match="StandardizeOptions"):
        Designer(designer.pipe, standardize={"neutralize": True})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(list("CNOSPFIBrcl()[]=#@+-.%0123456789*: \\/Hn")), max_size=80))
def test_hostile_seed_text_gets_a_result_or_a_clear_error(designer, text):
    try:
        results = designer.analogs(text, 1, max_attempts=2)
    except DesignInputError as exc:
        assert str(exc)  # a message, never an empty one
    else:
        assert len(results) <= 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    smarts=st.text(max_size=40),
    target=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.none()),
)
def test_hostile_constraints_and_targets_get_a_clear_error(designer, smarts, target):
    try:
        designer.generate(1, targets={"QED": target}, must_avoid=[smarts])
    except DesignInputError as exc:
        assert str(exc)
