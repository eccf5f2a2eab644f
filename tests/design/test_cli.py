"""``molgen design ...`` on the tiny model: every subcommand writes its rows; bad inputs are reported and skipped."""

from __future__ import annotations

import csv

import pytest

from molgen.cli import main

from .conftest import TRAINING


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _run(tiny_model, *argv) -> int:
    return main(["design", *argv, "--model", str(tiny_model), "--device", "cpu"])


def test_generate_writes_targets_and_filters(tiny_model, tmp_path, capsys):
    out = tmp_path / "gen.csv"
    code = _run(tiny_model, "generate", "-n", "12", "--out", str(out), "--target", "logP=1:4", "--target", "QED=0.8", "--oversample", "2",
                "--must-avoid", "[Cl]", "--window", "MW=0:400", "--sa-max", "6")  # fmt: skip
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 12
    assert {"smiles", "state", "similarity", "score", "alerts", "reasons", "QED", "MW", "error"} <= set(rows[0])
    assert all(r["state"] != "valid" or "Cl" not in r["smiles"] for r in rows)
    err = capsys.readouterr().err
    assert "wrote 12 rows" in err and "logP: MAE" in err and "QED: MAE" in err


def test_analogs_skip_bad_seeds_and_keep_going(tiny_model, tmp_path, capsys):
    seeds = tmp_path / "seeds.smi"
    seeds.write_text(f"{TRAINING[0]} first\nC1CC broken\n{TRAINING[1]} second\n")
    out = tmp_path / "analogs.sdf"
    assert _run(tiny_model, "analogs", "--input", str(seeds), "-n", "4", "--strength", "0.5", "--count-repeats", "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert "skipped 'C1CC'" in err and "unclosed ring" in err and "1 bad input" in err
    from rdkit import Chem

    records = [m for m in Chem.SDMolSupplier(str(out)) if m is not None]
    assert len(records) == 8 and {m.GetProp("input") for m in records} == set(TRAINING[:2])
    assert all(0 <= float(m.GetProp("similarity")) <= 1 for m in records if m.HasProp("similarity"))
    # without --count-repeats, -n counts new analogs: the repeats are written too, and sampling goes on (here to the cap)
    table = tmp_path / "analogs.csv"
    assert _run(tiny_model, "analogs", TRAINING[0], "-n", "4", "--strength", "0.7", "--max-attempts", "12", "--out", str(table)) == 0
    rows = list(csv.DictReader(table.open()))
    assert 4 < len(rows) <= 12 and sum(r["state"] != "duplicate" for r in rows) == 4


def test_decorate_interpolate_optimize(tiny_model, tmp_path):
    out = tmp_path / "dec.csv"
    assert _run(tiny_model, "decorate", "O=C(N[*:1])c1ccccc1", "-n", "6", "--extra-atoms", "2:4", "--out", str(out)) == 0
    assert len(_rows(out)) == 6
    out = tmp_path / "path.smi"
    assert _run(tiny_model, "interpolate", TRAINING[2], TRAINING[4], "--points", "5", "--out", str(out)) == 0
    assert len(out.read_text().splitlines()) == 5
    out = tmp_path / "opt.csv"
    assert _run(tiny_model, "optimize", "--objective", "qed", "-n", "6", "--calls", "18", "--no-progress", "--out", str(out)) == 0
    rows = _rows(out)
    assert len(rows) == 18 and all(r["score"] for r in rows if r["state"] == "valid")
    assert len({r["smiles"] for r in rows}) == 18


def test_optimize_skips_unusable_start_molecules(tiny_model, tmp_path, capsys):
    out = tmp_path / "opt.csv"
    code = _run(tiny_model, "optimize", TRAINING[0], "C1CC", "--objective", "plogp", "-n", "4", "--calls", "8",
                "--reference", TRAINING[0], "--min-similarity", "0.3", "--no-progress", "--best-only", "--out", str(out))  # fmt: skip
    assert code == 0 and "skipped argument: invalid SMILES 'C1CC'" in capsys.readouterr().err
    assert all(float(r["similarity"]) >= 0.3 for r in _rows(out))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "-n", "4", "--target", "MW=5000"], "MW 5000 is far outside"),
        (["generate", "-n", "4", "--target", "QED"], "expected NAME=VALUE or NAME=LOW:HIGH"),
        (["generate", "-n", "4", "--must-contain", "[C"], "must_contain SMARTS '[C'"),
        (["decorate", "[*:1]", "-n", "4"], "skipped '[*:1]': core '[*:1]': only attachment points"),
        (["optimize", "--objective", "potency", "-n", "4"], "choose qed, plogp"),
        (["optimize", "--objective", "qed", "-n", "4", "--calls", "0"], "calls=0"),
        (["optimize", "--objective", "missing.toml", "-n", "4"], "objective file 'missing.toml' does not exist"),
        (["generate", "-n", "4", "--candidates", "0"], "candidates=0: must be a whole number >= 1"),
    ],
)
def test_bad_input_is_reported(tiny_model, tmp_path, capsys, argv, message):
    code = _run(tiny_model, *argv, "--out", str(tmp_path / "x.csv"))
    err = capsys.readouterr().err
    assert message in err
    assert code == (0 if argv[0] == "decorate" else 2)


def test_extend_link_morph_write_their_rows(tiny_model, tmp_path):
    from molgen.design.chemistry import parse_fragments

    out = tmp_path / "ext.csv"
    assert _run(tiny_model, "extend", "[*:1]c1ccccc1", "-n", "6", "--extra-atoms", "3:6", "--out", str(out)) == 0
    assert len(_rows(out)) == 6
    pairs = tmp_path / "pairs.smi"
    pairs.write_text("[*:1]c1ccco1.[*:2]c1ccc(Cl)cc1Cl furan-aryl\n[*:1]c1ccccc1 one\n")
    out = tmp_path / "link.csv"
    assert _run(tiny_model, "link", "--input", str(pairs), "-n", "6", "--linker-atoms", "2:4", "--out", str(out)) == 0
    rows = _rows(out)
    pair = parse_fragments("[*:1]c1ccco1.[*:2]c1ccc(Cl)cc1Cl")
    assert len(rows) == 6 and {r["input"] for r in rows} == {pair.text}
    from rdkit import Chem

    assert all(pair.retained(Chem.MolFromSmiles(r["smiles"])) for r in rows if r["state"] == "valid")
    out = tmp_path / "morph.csv"
    assert _run(tiny_model, "morph", "CCOC(=O)c1ccc(NC(=O)C2CC2)cc1", "-n", "6", "--core-atoms", "6:9", "--out", str(out)) == 0
    rows = _rows(out)
    assert len(rows) == 6 and all(r["similarity"] for r in rows if r["state"] == "valid")


@pytest.mark.parametrize(
    "argv, message, code",
    [
        (["link", "[*:1]c1ccccc1", "-n", "4"], "skipped '[*:1]c1ccccc1': fragments '[*:1]c1ccccc1': 1 fragments; a linker joins two", 0),
        (["link", "[*:1]c1ccccc1.C", "-n", "4"], "fragment 'C': 0 attachment points", 0),
        (["link", "[*:1]c1ccccc1.[*:2]C", "-n", "4", "--linker-atoms", "two"], "--linker-atoms 'two': expected N or LOW:HIGH", 2),
        (["morph", "CCO", "-n", "4"], "skipped 'CCO': molecule 'CCO': no ring, so no scaffold to morph", 0),
        (["extend", "[*:1]", "-n", "4"], "motif '[*:1]': only attachment points", 0),
        (["link", "-n", "4"], "give a fragment pair SMILES or --input FILE", 2),
    ],
)
def test_bad_inpainting_input_is_reported(tiny_model, tmp_path, capsys, argv, message, code):
    assert _run(tiny_model, *argv, "--out", str(tmp_path / "x.csv")) == code
    assert message in capsys.readouterr().err
