"""Hostile input gets a clear error or a reported bad row, quickly, never a crash or a hang: random text as SMILES,
files whose rows are garbage or enormous, sampling requests with impossible values. (The design API has its own
fuzzing in tests/design/test_inputs.py; the page's handlers in tests/ui.)"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molgen.chem import InvalidMoleculeError, parse_smiles
from molgen.cli import main
from molgen.featurize import featurize_molecules
from molgen.io import BadRow, read_molecules

SMILES_ALPHABET = list("CNOSPFIBrclnos()[]=#@+-.%0123456789*:/\\H ")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=120), st.text(alphabet=st.sampled_from(SMILES_ALPHABET), max_size=120)))
def test_any_text_parses_or_is_refused_naming_it(text):
    try:
        mol = parse_smiles(text)
    except InvalidMoleculeError as exc:
        assert "SMILES" in str(exc)
    else:
        assert mol.GetNumAtoms() > 0


@pytest.mark.parametrize("size", [1_001, 100_000])
def test_an_enormous_smiles_is_refused_before_parsing(size):
    with pytest.raises(InvalidMoleculeError, match="longer than the 1,000 characters"):
        parse_smiles("C" * size)
    with pytest.raises(InvalidMoleculeError, match="atoms, more than"):
        parse_smiles("C" * 600)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.text(alphabet=st.sampled_from([*SMILES_ALPHABET, ",", "\t", '"']), max_size=60), max_size=12))
def test_a_file_of_garbage_rows_featurizes_what_it_can_and_reports_the_rest(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("rows") / "rows.smi"
    path.write_text("\n".join(["CCO", *rows, "C" * 100_000, "c1ccccc1"]) + "\n", encoding="utf-8")
    result = featurize_molecules(read_molecules(path), workers=1, hydrogens="implicit")
    assert "CCO" in result.dataset.items and "c1ccccc1" in result.dataset.items
    assert all(isinstance(bad, BadRow) and bad.reason for bad in result.bad_rows)
    assert any("longer than the 1,000 characters" in bad.reason for bad in result.bad_rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=st.text(max_size=20))
def test_bad_conditions_on_the_command_line_exit_2_before_loading_a_model(tmp_path_factory, item, capsys):
    out = tmp_path_factory.mktemp("out") / "s.csv"
    try:
        float(item.partition("=")[2])
        looks_fine = "=" in item and item.partition("=")[0].strip()
    except ValueError:
        looks_fine = False
    if looks_fine:
        return  # a well-formed NAME=VALUE: checked by the model (next test)
    assert main(["sample", "-n", "2", f"--condition={item}", "--out", str(out)]) == 2
    assert "--condition" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"QED": math.nan}, "not a finite number"),
        ({"QED": math.inf}, "not a finite number"),
        ({"NoSuch": 1.0}, "is conditioned on"),
        ({"QED": "high"}, "is not a number"),
        ([{"QED": 0.5}], "one per sample"),
    ],
)
def test_impossible_sampling_requests_are_refused_naming_the_condition(conditions, message):
    from molgen.pipeline import MolgenPipeline

    pipe = MolgenPipeline.from_pretrained(device="cpu")
    with pytest.raises(ValueError, match=message):
        pipe.sample(2, conditions=conditions)
    with pytest.raises(ValueError, match="n="):
        pipe.sample(0)
    with pytest.raises(TypeError, match="unknown sampling option"):
        pipe.sample(2, restarts=2)
