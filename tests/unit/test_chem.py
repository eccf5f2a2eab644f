"""molgen.chem: parsing with readable errors, canonical SMILES, standardisation, properties, alerts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem

from molgen.chem import (
    ALERT_CATALOGS,
    PROPERTIES,
    InvalidMoleculeError,
    StandardizeOptions,
    canonical_smiles,
    canonicalize,
    compute_properties,
    parse_smiles,
    standardize_smiles,
    structural_alerts,
)

# --- parse_smiles: errors name the input and the reason ----------------------------------------------


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("C1CC", "unclosed ring"),
        ("C(C)(C)(C)(C)C", "valence"),
        ("c1cccc1", "kekulize"),
        ("xyz", "syntax error"),
        ("CC)C", "extra close parenthes"),
    ],
)
def test_parse_smiles_error_names_input_and_reason(smiles, reason):
    with pytest.raises(InvalidMoleculeError) as info:
        parse_smiles(smiles)
    message = str(info.value)
    assert repr(smiles) in message
    assert reason in message.lower()


@pytest.mark.parametrize("smiles", ["", "   ", "\n"])
def test_parse_smiles_empty_string(smiles):
    with pytest.raises(InvalidMoleculeError, match="empty"):
        parse_smiles(smiles)


@pytest.mark.parametrize("value", [None, 42, b"CCO", ["CCO"]])
def test_parse_smiles_non_string(value):
    with pytest.raises(InvalidMoleculeError) as info:
        parse_smiles(value)
    assert "expected a string" in str(info.value)
    assert type(value).__name__ in str(info.value)


def test_invalid_molecule_error_is_a_value_error():
    # Callers (featurizer, pipeline, CLI) catch ValueError; the chemistry error must be one.
    assert issubclass(InvalidMoleculeError, ValueError)


def test_parse_error_does_not_leak_rdkit_log_to_stderr(capfd):
    with pytest.raises(InvalidMoleculeError):
        parse_smiles("C1CC")
    with pytest.raises(InvalidMoleculeError):
        parse_smiles("C(C)(C)(C)(C)C")
    captured = capfd.readouterr()
    assert "C1CC" not in captured.err
    assert "valence" not in captured.err.lower()


def test_parse_smiles_folds_explicit_hydrogens():
    mol = parse_smiles("[H]OC([H])([H])[H]")
    assert mol.GetNumAtoms() == 2
    assert sorted(a.GetTotalNumHs() for a in mol.GetAtoms()) == [1, 3]


def test_parse_smiles_strips_surrounding_whitespace():
    assert canonical_smiles(parse_smiles("  CCO \n")) == "CCO"


# --- canonical SMILES ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("OCC", "CCO"),
        ("c1ccccc1C", "Cc1ccccc1"),
        ("C1=CC=CC=C1", "c1ccccc1"),  # Kekulé input, aromatic output
        ("OC(=O)c1ccccc1", "c1ccc(C(O)=O)cc1"),
    ],
)
def test_canonicalize_is_invariant_to_how_the_molecule_is_written(a, b):
    assert canonicalize(a) == canonicalize(b)


def test_canonicalize_is_invariant_to_atom_order():
    rng = np.random.default_rng(0)
    for smiles in ["CC(=O)Nc1ccc(O)cc1", "c1ccc2[nH]ccc2c1", "CN1CCC[C@H]1c1cccnc1", "O=C(O)c1ccc(C(=O)O)cc1"]:
        mol = Chem.MolFromSmiles(smiles)
        for _ in range(5):
            order = rng.permutation(mol.GetNumAtoms()).tolist()
            shuffled = Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False)
            assert canonicalize(shuffled) == canonicalize(smiles), shuffled


def test_canonicalize_isomeric_flag():
    assert "@" in canonicalize("C[C@H](N)O")
    assert canonicalize("C[C@H](N)O", isomeric=False) == canonicalize("CC(N)O")


def test_canonicalize_raises_on_invalid():
    with pytest.raises(InvalidMoleculeError, match="C1CC"):
        canonicalize("C1CC")


# --- standardisation ------------------------------------------------------------------------------------


def test_standardize_options_are_off_by_default():
    options = StandardizeOptions()
    assert options.largest_fragment is False
    assert options.neutralize is False
    # ...and parsing without options keeps salts and charges as written.
    assert canonicalize("[Na+].[O-]C(=O)c1ccccc1") == canonicalize("O=C([O-])c1ccccc1.[Na+]")
    assert canonicalize("C[NH3+]") == "C[NH3+]"


def test_largest_fragment_drops_counter_ion():
    mol = parse_smiles("[Na+].[O-]C(=O)c1ccccc1", StandardizeOptions(largest_fragment=True))
    assert canonical_smiles(mol) == canonicalize("[O-]C(=O)c1ccccc1")


def test_neutralize_removes_charges_where_a_neutral_form_exists():
    opts = StandardizeOptions(neutralize=True)
    assert canonical_smiles(parse_smiles("C[NH3+]", opts)) == "CN"
    assert canonical_smiles(parse_smiles("[O-]C(=O)c1ccccc1", opts)) == canonicalize("OC(=O)c1ccccc1")
    # A quaternary ammonium has no neutral form: it stays charged.
    assert canonical_smiles(parse_smiles("C[N+](C)(C)C", opts)) == "C[N+](C)(C)C"


def test_largest_fragment_and_neutralize_together():
    opts = StandardizeOptions(largest_fragment=True, neutralize=True)
    assert canonical_smiles(parse_smiles("[Na+].[O-]C(=O)c1ccccc1", opts)) == canonicalize("OC(=O)c1ccccc1")


# --- properties -----------------------------------------------------------------------------------------


def test_compute_properties_returns_every_property_as_float():
    props = compute_properties(parse_smiles("CC(=O)Nc1ccc(O)cc1"))
    assert set(props) == set(PROPERTIES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in props.values())


def test_compute_properties_known_values():
    benzene = compute_properties(parse_smiles("c1ccccc1"))
    ethanol = compute_properties(parse_smiles("CCO"))
    # Average molecular weights from IUPAC atomic weights: C 12.011, H 1.008, O 15.999.
    assert benzene["MW"] == pytest.approx(6 * 12.011 + 6 * 1.008, abs=0.01)
    assert ethanol["MW"] == pytest.approx(2 * 12.011 + 6 * 1.008 + 15.999, abs=0.01)
    assert ethanol["HBD"] == 1
    assert ethanol["HBA"] == 1
    assert benzene["HBD"] == 0
    assert benzene["TPSA"] == 0
    assert ethanol["TPSA"] == pytest.approx(20.23, abs=0.01)  # Ertl's contribution of one hydroxyl
    assert benzene["rings"] == 1
    assert compute_properties(parse_smiles("c1ccc2ccccc2c1"), ["rings"])["rings"] == 2
    assert compute_properties(parse_smiles("CCCCC"), ["rotatable_bonds"])["rotatable_bonds"] == 2
    assert benzene["logP"] > ethanol["logP"]  # benzene is the more lipophilic
    for props in (benzene, ethanol):
        assert 0 < props["QED"] <= 1
        assert 1 <= props["SA"] <= 10


def test_compute_properties_subset():
    assert list(compute_properties(parse_smiles("CCO"), ["MW", "HBD"])) == ["MW", "HBD"]


def test_compute_properties_unknown_name_raises():
    with pytest.raises(KeyError) as info:
        compute_properties(parse_smiles("CCO"), ["MW", "bogus"])
    assert "bogus" in str(info.value)


# --- structural alerts ----------------------------------------------------------------------------------


def test_structural_alerts_finds_pains_azo():
    mol = parse_smiles("O=C(O)c1ccccc1Oc1ccc(N=Nc2ccccc2)cc1")
    alerts = structural_alerts(mol, ("PAINS_A",))
    assert any(a.catalog == "PAINS_A" and a.description.startswith("azo_A") for a in alerts), alerts
    # The default (all catalogues) finds it too.
    assert any(a.description.startswith("azo_A") for a in structural_alerts(mol))


def test_structural_alerts_none_on_ethanol():
    assert structural_alerts(parse_smiles("CCO")) == []


def test_structural_alerts_catalogue_filter():
    mol = parse_smiles("O=C(O)c1ccccc1Oc1ccc(N=Nc2ccccc2)cc1")
    assert all(a.catalog == "PAINS_B" for a in structural_alerts(mol, ("PAINS_B",)))
    assert not any(a.description.startswith("azo_A") for a in structural_alerts(mol, ("PAINS_B",)))


def test_structural_alerts_unknown_catalogue_raises():
    with pytest.raises(KeyError) as info:
        structural_alerts(parse_smiles("CCO"), ("PAINS_Z",))
    assert "PAINS_Z" in str(info.value)
    assert "PAINS_Z" not in ALERT_CATALOGS


# --- standardisation through ChEMBL's structure pipeline, reported --------------------------------------


def test_chembl_standardisation_strips_salts_keeps_stereo_and_charges_when_asked():
    opts = StandardizeOptions(largest_fragment=True)
    assert opts.standardizer == "chembl"
    result = standardize_smiles("C[C@H]([NH3+])C(=O)[O-].[Na+].[Cl-]", opts)
    assert result.smiles == "C[C@H]([NH3+])C(=O)[O-]"  # counter-ions gone, zwitterion and stereo kept
    assert result.changed and "kept the parent fragment (chembl)" in result.changes[0]
    assert "[Na+]" in result.changes[0] and result.input_smiles in result.changes[0]


def test_chembl_neutralisation_is_reported_and_keeps_stereo():
    result = standardize_smiles("C[C@H]([NH3+])C(=O)[O-]", StandardizeOptions(neutralize=True))
    assert result.smiles == "C[C@H](N)C(=O)O"
    assert result.changes == ("neutralised charges (chembl): C[C@H]([NH3+])C(=O)[O-] -> C[C@H](N)C(=O)O",)
    # A quaternary ammonium has no neutral form.
    assert standardize_smiles("C[N+](C)(C)C", StandardizeOptions(neutralize=True)).changes == ()


def test_chembl_keeps_the_largest_organic_fragment_of_two_organic_ones_and_drops_solvents():
    result = standardize_smiles("CCO.c1ccccc1C(=O)O.O", StandardizeOptions(largest_fragment=True))
    assert result.smiles == "O=C(O)c1ccccc1"


def test_chembl_normalisation_of_functional_groups():
    # ChEMBL writes sulfoxides charge-separated and azides as N=[N+]=[N-].
    result = standardize_smiles("C[S@@](=O)c1ccccc1", StandardizeOptions(normalize=True))
    assert result.smiles == "C[S@@+]([O-])c1ccccc1" and result.changed
    assert standardize_smiles("C[N-][N+]#N", StandardizeOptions(normalize=True)).smiles == "CN=[N+]=[N-]"


def test_no_step_no_change_and_nothing_reported():
    result = standardize_smiles("C/C=C/C(=O)[O-].[Na+]", StandardizeOptions())
    assert result.smiles == "C/C=C/C(=O)[O-].[Na+]" and result.changes == () and not StandardizeOptions().active


def test_rdkit_standardizer_still_available_and_old_configs_read_as_rdkit():
    opts = StandardizeOptions(largest_fragment=True, neutralize=True, standardizer="rdkit")
    assert standardize_smiles("[Na+].[O-]C(=O)c1ccccc1", opts).smiles == "O=C(O)c1ccccc1"
    assert StandardizeOptions.from_dict({"largest_fragment": True, "neutralize": False}).standardizer == "rdkit"
    assert StandardizeOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ValueError, match="standardizer='openeye'"):
        StandardizeOptions(standardizer="openeye")


def test_standardize_logs_what_it_changed(caplog):
    with caplog.at_level("INFO", logger="molgen.chem"):
        parse_smiles("CC(=O)[O-].[Na+]", StandardizeOptions(largest_fragment=True))
    assert "kept the parent fragment" in caplog.text and "CC(=O)[O-].[Na+]" in caplog.text
