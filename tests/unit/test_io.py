"""molgen.io: reading .smi/.csv/.sdf (optionally gzipped); every unreadable record reported, never fatal."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from rdkit import Chem

from molgen.io import BadRow, Row, file_format, read_molecules, write_bad_rows


def _gzip(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    with open(path, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _rows(path, **kwargs) -> list[Row | BadRow]:
    return list(read_molecules(path, **kwargs))


# --- file_format --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.smi", "smi"),
        ("a.SMI", "smi"),
        ("a.smiles", "smi"),
        ("a.txt", "smi"),
        ("a.smi.gz", "smi"),
        ("a.csv", "csv"),
        ("dir.v2/a.b.csv.GZ", "csv"),
        ("a.sdf", "sdf"),
        ("a.sd", "sdf"),
        ("a.sdf.gz", "sdf"),
    ],
)
def test_file_format(name, fmt):
    assert file_format(name) == fmt


@pytest.mark.parametrize("name", ["a.xyz", "a.gz", "a", "a.mol2", "a.csv.zip"])
def test_file_format_unknown_suffix_names_the_file(name):
    with pytest.raises(ValueError) as info:
        file_format(name)
    assert name in str(info.value)
    assert ".smi" in str(info.value)  # says what would be right


def test_missing_file_raises_file_not_found(tmp_path):
    path = tmp_path / "nope.smi"
    with pytest.raises(FileNotFoundError, match="nope.smi"):
        _rows(path)


def test_unknown_suffix_of_existing_file(tmp_path):
    path = tmp_path / "mols.xyz"
    path.write_text("CCO\n")
    with pytest.raises(ValueError, match="mols.xyz"):
        _rows(path)


# --- .smi -----------------------------------------------------------------------------------------------

SMI = """\
CCO ethanol
# a comment line

c1ccccc1\tbenzene ring
  CC(=O)O   acetic acid
C1CC
   # indented comment
CCN
"""


def _check_smi_rows(rows):
    assert rows == [
        Row("line 1", "CCO", "ethanol"),
        Row("line 4", "c1ccccc1", "benzene ring"),
        Row("line 5", "CC(=O)O", "acetic acid"),
        Row("line 6", "C1CC", None),  # chemistry is checked later, by the featurizer
        Row("line 8", "CCN", None),
    ]


def test_read_smi(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text(SMI)
    _check_smi_rows(_rows(path))


def test_read_smi_gz(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text(SMI)
    _check_smi_rows(_rows(_gzip(path)))


def test_read_smi_crlf_line_endings(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_bytes(b"CCO ethanol\r\n\r\nCCN\r\n")
    assert _rows(path) == [Row("line 1", "CCO", "ethanol"), Row("line 3", "CCN", None)]


# --- .csv -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["smiles", "SMILES", "Smiles", " smiles "])
def test_read_csv_finds_smiles_column_in_any_case(tmp_path, header):
    path = tmp_path / "mols.csv"
    path.write_text(f"id,{header},mw\n1,CCO,46\n2,c1ccccc1,78\n")
    assert _rows(path) == [Row("line 2", "CCO", "1"), Row("line 3", "c1ccccc1", "2")]


def test_read_csv_explicit_column(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("name,structure,smiles\nethanol,CCO,not-this\n")
    assert _rows(path, smiles_column="structure") == [Row("line 2", "CCO", "ethanol")]


def test_read_csv_missing_column_names_the_columns(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,structure,mw\n1,CCO,46\n")
    with pytest.raises(ValueError) as info:
        _rows(path)
    message = str(info.value)
    assert "mols.csv" in message
    assert "smiles" in message
    for column in ("id", "structure", "mw"):
        assert column in message
    with pytest.raises(ValueError, match="'SMILES_X'"):
        _rows(path, smiles_column="SMILES_X")


def test_read_csv_empty_cells_are_bad_rows_with_line_numbers(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles\n1,CCO\n2,\n\n4,c1ccccc1\n5,   \n6\n")
    rows = _rows(path)
    good = [r for r in rows if isinstance(r, Row)]
    bad = [r for r in rows if isinstance(r, BadRow)]
    assert good == [Row("line 2", "CCO", "1"), Row("line 5", "c1ccccc1", "4")]
    assert [b.location for b in bad] == ["line 3", "line 6", "line 7"]
    assert all("smiles" in b.reason for b in bad)
    assert bad[0].text == "2,"


def test_read_csv_quoted_fields(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text('Name,SMILES\n"ethanol, absolute",CCO\n')
    assert _rows(path) == [Row("line 2", "CCO", "ethanol, absolute")]


def test_read_csv_gz(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES\nCCO\n\nCCN\n")
    assert _rows(_gzip(path)) == [Row("line 2", "CCO", None), Row("line 4", "CCN", None)]


def test_read_csv_header_only_and_empty_file(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("smiles\n")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert _rows(header_only) == []
    assert _rows(empty) == []


def test_read_csv_with_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("SMILES,Name\nCCO,ethanol\n".encode("utf-8-sig"))
    assert _rows(path) == [Row("line 2", "CCO", "ethanol")]


# --- .sdf -----------------------------------------------------------------------------------------------


def _molblock(smiles: str, name: str, sanitize: bool = True) -> str:
    mol = Chem.MolFromSmiles(smiles, sanitize=sanitize)
    mol.SetProp("_Name", name)
    return Chem.MolToMolBlock(mol, kekulize=sanitize)


@pytest.fixture
def sdf_path(tmp_path) -> Path:
    """Four records: ethanol, a pentavalent carbon (unreadable), benzene, and an unnamed acetic acid."""
    records = [
        _molblock("CCO", "ethanol"),
        _molblock("C(C)(C)(C)(C)C", "broken", sanitize=False),
        _molblock("c1ccccc1", "benzene"),
        _molblock("CC(=O)O", ""),
    ]
    path = tmp_path / "mols.sdf"
    path.write_text("".join(r + "$$$$\n" for r in records))
    return path


def _check_sdf_rows(rows):
    assert len(rows) == 4
    assert rows[0] == Row("record 1", "CCO", "ethanol")
    assert isinstance(rows[1], BadRow)
    assert rows[1].location == "record 2"
    assert "valence" in rows[1].reason.lower()
    assert rows[2] == Row("record 3", "c1ccccc1", "benzene")
    assert rows[3] == Row("record 4", Chem.MolToSmiles(Chem.MolFromSmiles("CC(=O)O")), None)


def test_read_sdf_reports_broken_record_and_reads_the_rest(sdf_path):
    _check_sdf_rows(_rows(sdf_path))


def test_read_sdf_gz(sdf_path):
    _check_sdf_rows(_rows(_gzip(sdf_path)))


def test_read_sdf_does_not_leak_rdkit_log(sdf_path, capfd):
    _rows(sdf_path)
    assert "valence" not in capfd.readouterr().err.lower()


# --- bad-row report -------------------------------------------------------------------------------------


def test_bad_row_str_names_location_text_and_reason():
    assert str(BadRow("line 3", "C1CC", "unclosed ring")) == "line 3: 'C1CC': unclosed ring"


def test_write_bad_rows(tmp_path):
    path = tmp_path / "bad.tsv"
    write_bad_rows([BadRow("line 3", "C1CC", "unclosed ring"), BadRow("record 2", "", "unreadable")], path)
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["location", "reason", "text"]
    assert lines[1].split("\t") == ["line 3", "unclosed ring", "C1CC"]
    assert lines[2].split("\t") == ["record 2", "unreadable", ""]
    assert len(lines) == 3


def test_sdf_records_get_zero_coordinates_when_the_2d_layout_fails(monkeypatch):
    # RDKit's depictor can return NaN or huge coordinates for odd generated ring systems; a molfile cannot hold
    # them and the record became unreadable. The writer then falls back to all-zero coordinates.
    from rdkit.Chem import rdDepictor

    from molgen import io as molgen_io

    real_layout = rdDepictor.Compute2DCoords

    def broken_layout(mol, *args, **kwargs):
        result = real_layout(mol, *args, **kwargs)
        for i in range(mol.GetNumAtoms()):
            mol.GetConformer().SetAtomPosition(i, (float("nan"), 1e9, 0.0))
        return result

    good = molgen_io._with_2d_coordinates(Chem.MolFromSmiles("c1ccccc1O")).GetConformer().GetPositions()
    assert abs(good).max() > 0.5  # a real layout when the depictor works
    monkeypatch.setattr(rdDepictor, "Compute2DCoords", broken_layout)
    mol = molgen_io._with_2d_coordinates(Chem.MolFromSmiles("c1ccccc1O"))
    assert (mol.GetConformer().GetPositions() == 0).all()
    assert Chem.MolToSmiles(Chem.MolFromMolBlock(Chem.MolToMolBlock(mol))) == "Oc1ccccc1"
