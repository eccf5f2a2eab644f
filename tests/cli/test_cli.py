"""The ``molgen`` command line, called in-process through ``molgen.cli.main`` (and once as a console script)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from molgen.chem import canonicalize
from molgen.cli import main
from molgen.dataset import GraphDataset

MIXED = [
    "CCO ethanol",  # 1
    "C1CC unclosed",  # 2  bad
    "c1ccccc1",  # 3
    "",  # 4
    "xyz",  # 5  bad
    "CC(=O)O",  # 6
    "# comment",  # 7
    "C[13CH3]",  # 8  bad
    "c1cc[nH]c1",  # 9
]
MIXED_BAD = {"line 2": "unclosed ring", "line 5": "syntax error", "line 8": "isotope"}
MIXED_GOOD = ["CCO", "c1ccccc1", "CC(=O)O", "c1cc[nH]c1"]


@pytest.fixture
def mixed_smi(tmp_path):
    path = tmp_path / "mixed.smi"
    path.write_text("\n".join(MIXED) + "\n")
    return path


# --- featurize --------------------------------------------------------------------------------------------


def test_featurize_smi_with_bad_rows(mixed_smi, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["featurize", str(mixed_smi), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bad_rows.tsv", "graphs.npz", "items.txt", "report.json", "vocab.json"]
    dataset = GraphDataset.load(out)
    assert dataset.items == [canonicalize(s) for s in MIXED_GOOD]
    report = json.loads((out / "report.json").read_text())
    assert (report["read"], report["featurized"], report["bad"]) == (7, 4, 3)
    with open(out / "bad_rows.tsv", newline="") as handle:
        bad = {row["location"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert set(bad) == set(MIXED_BAD)
    for location, reason in MIXED_BAD.items():
        assert reason in bad[location]["reason"].lower()
    assert bad["line 2"]["text"] == "C1CC"
    for location in MIXED_BAD:
        assert f"skipped {location}" in captured.err
    assert "featurized 4 of 7" in captured.out


def test_featurize_csv_missing_column_exits_2_naming_the_columns(tmp_path, capsys):
    path = tmp_path / "mols.csv"
    path.write_text("id,structure,mw\n1,CCO,46\n")
    assert main(["featurize", str(path), "--out", str(tmp_path / "ds"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("molgen featurize: error:")
    for name in ("'id'", "'structure'", "'mw'", "smiles"):
        assert name in err
    assert "--smiles-column" in err
    assert "Traceback" not in err
    assert not (tmp_path / "ds" / "graphs.npz").exists()


def test_featurize_csv_with_smiles_column(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,structure\n1,OCC\n2,\n3,c1ccccc1\n")
    out = tmp_path / "ds"
    args = ["featurize", str(path), "--out", str(out), "--smiles-column", "structure", "--quiet", "--workers", "1"]
    assert main(args) == 0
    assert GraphDataset.load(out).items == ["CCO", "c1ccccc1"]
    assert "line 3" in (out / "bad_rows.tsv").read_text()


def test_featurize_with_stereo_and_standardisation_keeps_stereo_and_reports_the_options(tmp_path, capsys):
    path = tmp_path / "drugs.smi"
    path.write_text("C[C@H](N)C(=O)O\nC/C=C/C(=O)[O-].[Na+]\nCN(=O)=O\n")
    out = tmp_path / "ds"
    args = ["featurize", str(path), "--out", str(out), "--stereo", "--largest-fragment", "--normalize", "--quiet", "--workers", "1"]
    assert main(args) == 0
    dataset = GraphDataset.load(out)
    assert dataset.items == ["C[C@H](N)C(=O)O", "C/C=C/C(=O)[O-]", "C[N+](=O)[O-]"]  # stereo and the given charge kept
    assert "chirality" in dataset.vocab.node_fields
    report = json.loads((out / "report.json").read_text())
    assert report["stereo"] is True and report["standardize"]["standardizer"] == "chembl" and report["standardize"]["normalize"]
    flat = tmp_path / "flat"
    assert main(["featurize", str(path), "--out", str(flat), "--largest-fragment", "--quiet", "--workers", "1"]) == 0
    assert GraphDataset.load(flat).items[0] == "CC(N)C(=O)O"  # without --stereo the marks are ignored
    assert main(["featurize", str(path), "--out", str(tmp_path / "x"), "--stereo", "--vocab", str(flat), "--quiet"]) == 2
    assert "no stereo labels" in capsys.readouterr().err


def test_featurize_with_vocab_of_another_dataset(mixed_smi, tmp_path):
    first = tmp_path / "first"
    assert main(["featurize", str(mixed_smi), "--out", str(first), "--quiet"]) == 0
    other = tmp_path / "other.smi"
    other.write_text("OCC\nC[Se]C\nc1ccccc1\nC[N+](C)(C)C\n")  # no Se and no charged atom in the first
    second = tmp_path / "second"
    assert main(["featurize", str(other), "--out", str(second), "--vocab", str(first), "--quiet"]) == 0
    dataset = GraphDataset.load(second)
    assert dataset.vocab == GraphDataset.load(first).vocab
    assert dataset.items == ["CCO", "c1ccccc1"]
    bad = (second / "bad_rows.tsv").read_text()
    assert "line 2" in bad and "(Se)" in bad
    assert "line 4" in bad and "(N)" in bad and "formal_charge=1" in bad


def test_featurize_bad_vocab_path_exits_2(mixed_smi, tmp_path, capsys):
    assert main(["featurize", str(mixed_smi), "--out", str(tmp_path / "ds"), "--vocab", str(tmp_path), "--quiet"]) == 2
    assert "--vocab" in capsys.readouterr().err


def test_featurize_limit_takes_a_reproducible_random_subset(tmp_path, moses_sample):
    smiles = moses_sample("test", 30, 5)
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(smiles) + "\n")
    items = []
    for out in ("a", "b"):
        args = ["featurize", str(path), "--out", str(tmp_path / out), "--limit", "5", "--seed", "3", "--quiet"]
        assert main(args) == 0
        items.append(GraphDataset.load(tmp_path / out).items)
    assert items[0] == items[1]
    assert len(items[0]) == 5 and len(set(items[0])) == 5
    assert set(items[0]) <= {canonicalize(s, isomeric=False) for s in smiles}


def test_featurize_missing_input_exits_2(tmp_path, capsys):
    assert main(["featurize", str(tmp_path / "absent.smi"), "--out", str(tmp_path / "ds")]) == 2
    assert "absent.smi" in capsys.readouterr().err


# --- train tokenizer + reconstruct ----------------------------------------------------------------------------

TINY = [
    "--max-steps", "5", "--d-model", "32", "--heads", "4", "--encoder-layers", "1", "--decoder-layers", "1",
    "--edge-hidden", "16", "--batch-size", "16", "--warmup-steps", "2", "--no-progress", "--accelerator", "cpu",
    "--devices", "1", "--threads", "1", "--bottleneck", "fsq", "--fsq-levels", "3,3,3",
]  # fmt: skip
"""A tiny quantised tokenizer (27 codes), whose latents a discrete prior, the default, trains on."""


@pytest.fixture(scope="module")
def train_smi(tmp_path_factory, moses_sample):
    path = tmp_path_factory.mktemp("data") / "train.smi"
    path.write_text("\n".join(["CCO"] + moses_sample("test", 39, 7)) + "\n")
    return path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, train_smi):
    run = tmp_path_factory.mktemp("cli_run")
    assert main(["train", "tokenizer", str(train_smi), "--out", str(run), *TINY]) == 0
    return run


def test_train_tokenizer_writes_a_model_dir(cli_run, train_smi):
    model = cli_run / "model"
    assert json.loads((model / "domain.json").read_text())["hydrogens"] == "implicit"  # the default for new models
    assert {p.name for p in (model / "tokenizer").iterdir()} == {"config.json", "model.safetensors", "training.json"}
    assert (cli_run / "checkpoints" / "last.ckpt").is_file()
    config = json.loads((model / "tokenizer" / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_layers"]) == (32, 1, 1)
    training = json.loads((model / "tokenizer" / "training.json").read_text())
    assert training["global_step"] == 5
    # The training file was featurized into the run directory first.
    assert len(GraphDataset.load(cli_run / "data" / "train")) == 40


def test_reconstruct_smiles_arguments(cli_run, capsys):
    assert main(["reconstruct", "--model", str(cli_run / "model"), "--smiles", "CCO", "xyz", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "input\treconstructed\tresult"
    assert lines[1].startswith("CCO\t")
    assert lines[2].startswith("xyz\t-\t") and "bad input: invalid SMILES 'xyz'" in lines[2]
    assert "1 inputs could not be encoded" in lines[-1]
    assert "xyz" not in captured.err  # reported once, in its row


def test_reconstruct_file_to_csv(cli_run, train_smi, tmp_path):
    good = train_smi.read_text().split()[:5]
    path = tmp_path / "in.smi"
    path.write_text("\n".join(good[:3] + ["xyz"] + good[3:]) + "\n")
    out = tmp_path / "out.csv"
    args = ["reconstruct", str(path), "--model", str(cli_run / "model"), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["location", "input", "canonical", "reconstructed", "exact", "error"]
    assert [r["location"] for r in rows] == [f"line {n}" for n in range(1, 7)]
    assert [r["input"] for r in rows] == good[:3] + ["xyz"] + good[3:]
    for row in rows:
        if row["input"] == "xyz":
            assert row["canonical"] == "" and row["exact"] == "0" and "xyz" in row["error"]
            continue
        assert row["canonical"] == canonicalize(row["input"], isomeric=False)
        assert row["exact"] == str(int(row["reconstructed"] == row["canonical"]))
        assert row["reconstructed"] or row["error"]  # a decoded graph is either a molecule or a reason


def test_reconstruct_with_valence_decoding_gives_a_molecule_for_every_input(cli_run, train_smi, tmp_path):
    good = train_smi.read_text().split()[:5]
    out = tmp_path / "out.csv"
    args = ["reconstruct", "--smiles", *good, "--model", str(cli_run / "model"), "--out", str(out), "--decoding", "valence", "--device", "cpu"]
    assert main(args) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["input"] for r in rows] == good
    assert all(r["reconstructed"] and not r["error"] for r in rows), rows  # valence decoding is valid by construction


def test_reconstruct_nonexistent_model_exits_2(tmp_path, capsys):
    assert main(["reconstruct", "--model", str(tmp_path / "no_model"), "--smiles", "CCO"]) == 2
    err = capsys.readouterr().err
    assert "no_model" in err and "no such model directory" in err
    assert "Traceback" not in err


def test_reconstruct_without_input_exits_2(cli_run, capsys):
    assert main(["reconstruct", "--model", str(cli_run / "model"), "--device", "cpu"]) == 2
    assert "give an input file or --smiles" in capsys.readouterr().err


def test_train_tokenizer_with_val_molecule_file(tmp_path, train_smi, capsys):
    val = tmp_path / "val.smi"
    val.write_text("CCO\nCCCO\nc1ccccc1\n")  # inside the training vocabulary, but uses only part of it
    run = tmp_path / "run"
    assert main(["train", "tokenizer", str(train_smi), "--val", str(val), "--out", str(run), *TINY, "--bottleneck", "gaussian"]) == 0
    assert json.loads((run / "model" / "tokenizer" / "config.json").read_text())["bottleneck"] == "gaussian"
    # the default prior is discrete: a Gaussian tokenizer's continuous latents are refused, naming the way out
    prior = ["train", "prior", str(train_smi), "--model", str(run / "model"), "--out", str(tmp_path / "prior"), "--max-steps", "1", "--no-progress"]
    assert main(prior) == 2
    assert "--bottleneck fsq" in capsys.readouterr().err


def test_train_tokenizer_init_from_starts_from_the_given_weights(cli_run, train_smi, tmp_path):
    from molgen.checkpoint import load_tokenizer

    start = load_tokenizer(cli_run / "model" / "tokenizer")
    run = tmp_path / "finetune"
    args = ["train", "tokenizer", str(train_smi), "--out", str(run), "--init-from", str(cli_run / "model"), *TINY]
    args[args.index("--max-steps") + 1] = "1"
    assert main(args) == 0
    tuned = load_tokenizer(run / "model" / "tokenizer")
    assert tuned.config == start.config
    # One small step away from the starting weights, far closer than a fresh random initialisation would be.
    diff = max((a - b).abs().max().item() for a, b in zip(start.state_dict().values(), tuned.state_dict().values()))
    assert 0 < diff < 0.05


def test_train_tokenizer_init_from_other_vocabulary_exits_2(cli_run, tmp_path, capsys):
    other = tmp_path / "other.smi"
    other.write_text("CC[Se]C\nCC[Se]CC\n")
    args = ["train", "tokenizer", str(other), "--out", str(tmp_path / "run"), "--init-from", str(cli_run / "model"), *TINY]
    assert main(args) == 2
    assert "vocabulary differs" in capsys.readouterr().err


def test_train_tokenizer_init_from_onto_wider_chemistry(cli_run, train_smi, tmp_path):
    # A flat model fine-tuned onto molecules with charges and stereo: labels matched by value, chirality added.
    from molgen.checkpoint import load_tokenizer

    wider = tmp_path / "wider.smi"
    wider.write_text(train_smi.read_text() + "C[C@H](N)C(=O)[O-]\nC/C=C/CC[NH3+]\n")
    run = tmp_path / "run"
    args = ["train", "tokenizer", str(wider), "--out", str(run), "--init-from", str(cli_run / "model"), "--stereo", *TINY]
    args[args.index("--max-steps") + 1] = "1"
    assert main(args) == 0
    start, tuned = load_tokenizer(cli_run / "model" / "tokenizer"), load_tokenizer(run / "model" / "tokenizer")
    assert len(tuned.config.node_vocab_sizes) == len(start.config.node_vocab_sizes) + 1  # chirality
    assert tuned.config.node_vocab_sizes[1] == start.config.node_vocab_sizes[1] + 2  # charges -1 and +1
    assert tuned.config.edge_vocab_size > start.config.edge_vocab_size  # E/Z
    assert json.loads((run / "model" / "domain.json").read_text())["stereo"] is True


def test_train_tokenizer_two_process_ddp_on_cpu(train_smi, tmp_path):
    """Scaling goes through Lightning's strategies: two CPU processes (gloo) train a few steps together."""
    run = tmp_path / "ddp"
    args = list(TINY)
    del args[args.index("--devices") : args.index("--devices") + 2]
    args[args.index("--max-steps") + 1] = "3"
    result = subprocess.run(
        ["molgen", "train", "tokenizer", str(train_smi), "--out", str(run), *args, "--devices", "2", "--strategy", "ddp"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("model directory") == 1  # only rank 0 reports
    training = json.loads((run / "model" / "tokenizer" / "training.json").read_text())
    assert training["global_step"] == 3
    assert "world_size=2" in result.stderr or "distributed_backend=gloo" in result.stderr


# --- the console script and argument errors -------------------------------------------------------------------


def test_console_script_help():
    exe = shutil.which("molgen")
    command = [exe, "--help"] if exe else [sys.executable, "-m", "molgen.cli", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for word in ("featurize", "train", "reconstruct"):
        assert word in done.stdout


def test_sample_help_names_the_shipped_model_and_the_current_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sample", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # help text is wrapped at the terminal width
    assert "the default model is the shipped one, checkpoints/moses" in out
    assert "--model MODEL model directory (default: the shipped model, checkpoints/moses)" in out
    assert "--repairs" in out and "2 for the shipped one" in out
    for gone in ("--restarts", "--restart-strength", "--restart-temperature", "--autoguidance", "--discriminator-guidance", "--validity-guidance"):
        assert gone not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "distill", "d.smi", "--model", "m", "--out", "o"], "invalid choice: 'distill'"),
        (["train", "discriminator", "d.smi", "--model", "m", "--out", "o"], "invalid choice: 'discriminator'"),
        (["train", "prior", "d.smi", "--model", "m", "--out", "o", "--architecture", "autoregressive"], "invalid choice: 'autoregressive'"),
        *[(["sample", "-n", "1", "--out", "x.csv", flag, "1"], f"unrecognized arguments: {flag}") for flag in (
            "--restarts", "--restart-strength", "--restart-temperature", "--autoguidance", "--discriminator-guidance", "--validity-guidance")],
        *[(["train", "prior", "d.smi", "--model", "m", "--out", "o", flag, "1"], f"unrecognized arguments: {flag}") for flag in (
            "--objective", "--prediction", "--head-width", "--head-blocks", "--draws-per-token")],
        (["train", "prior", "d.smi", "--model", "m", "--out", "o", "--self-condition"], "unrecognized arguments: --self-condition"),
        (["featurize", "d.smi", "--out", "o", "--bonds", "aromatic"], "unrecognized arguments: --bonds"),
        (["train", "tokenizer", "d.smi", "--out", "o", "--bonds", "kekule"], "unrecognized arguments: --bonds"),
    ],
)  # fmt: skip
def test_removed_commands_and_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_required_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["featurize"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: molgen featurize" in err and "required" in err
