"""Training your own model with two commands, then ``molgen sample`` and ``molgen evaluate`` on it."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np

import pytest
import torch
from rdkit import Chem

from molgen.checkpoint import WEIGHTS_DIGEST, load_predictor
from molgen.judge.model import GraphJudge
from molgen.cli import main
from molgen.io import BadRow, read_molecules
from molgen.pipeline import Latents, MolgenPipeline
import molgen.latents as latents_module
from molgen.latents import LatentDataset
from molgen.sampling import SamplingConfig

from .test_cli import TINY, cli_run, train_smi  # noqa: F401  (fixtures: a tiny tokenizer trained on train_smi)

PRIOR_TINY = [
    "--max-steps", "6", "--d-model", "32", "--heads", "4", "--layers", "1", "--batch-size", "16", "--warmup-steps", "2",
    "--no-progress", "--accelerator", "cpu", "--devices", "1", "--threads", "1", "--default-steps", "4",
]  # fmt: skip


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory, cli_run, train_smi):  # noqa: F811
    """Second command of the two: a prior (discrete, the default) on the tokenizer of the first (``molgen train tokenizer``)."""
    run = tmp_path_factory.mktemp("prior_run")
    assert main(["train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--out", str(run), *PRIOR_TINY]) == 0
    return run


def test_train_prior_makes_a_complete_model_directory(prior_run, cli_run):  # noqa: F811
    model = prior_run / "model"
    assert (model / "domain.json").read_text() == (cli_run / "model" / "domain.json").read_text()
    assert (model / "tokenizer" / "model.safetensors").read_bytes() == (cli_run / "model" / "tokenizer" / "model.safetensors").read_bytes()
    config = json.loads((model / "prior" / "config.json").read_text())
    assert (config["architecture"], config["activation"], config["d_model"], config["layers"]) == ("discrete", "gelu", 32, 1)
    assert 0 < len(config["vocabulary"]) <= 27  # the codes seen in the training latents, of the tokenizer's 3 x 3 x 3
    assert config["property_names"] == ["QED", "logP", "MW", "SA", "TPSA", "HBD", "HBA"]
    assert sum(config["num_nodes_counts"]) == 40  # size histogram of the 40 training molecules
    training = json.loads((model / "prior" / "training.json").read_text())
    assert training["global_step"] == 6 and training["weights"] == "EMA"
    assert (prior_run / "latents" / "latents.npz").is_file()


def test_train_prior_reuses_its_latent_cache_and_resumes(prior_run, cli_run, train_smi, capsys):  # noqa: F811
    cache = prior_run / "latents" / "latents.npz"
    before = cache.stat().st_mtime_ns
    args = list(PRIOR_TINY)
    args[args.index("--max-steps") + 1] = "8"
    assert main(["train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--out", str(prior_run), *args]) == 0
    assert cache.stat().st_mtime_ns == before  # same tokenizer: not encoded again
    assert json.loads((prior_run / "model" / "prior" / "training.json").read_text())["global_step"] == 8  # resumed at 6


@pytest.mark.parametrize("suffix", [".csv", ".sdf", ".smi"])
def test_sample_streams_every_sample_to_the_file(prior_run, tmp_path, suffix, capsys):
    out = tmp_path / f"samples{suffix}"
    args = ["sample", "-n", "20", "--out", str(out), "--model", str(prior_run / "model"), "--seed", "3", "--batch-size", "8",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    rows = list(read_molecules(out))
    assert len(rows) == 20  # invalid samples are kept (as bad rows when read back)
    n_invalid = sum(isinstance(r, BadRow) or not r.smiles for r in rows)
    assert f"{n_invalid} invalid" in err and "wrote 20 samples" in err
    if suffix == ".csv":
        with open(out, newline="") as handle:
            table = list(csv.DictReader(handle))
        assert [int(r["index"]) for r in table] == list(range(20))
        for r in table:
            assert r["state"] in ("valid", "invalid", "duplicate")
            assert (r["state"] == "invalid") == (r["smiles"] == "")
            assert (r["state"] == "invalid") == (r["error"] != "")
            if r["state"] != "invalid":
                assert Chem.MolFromSmiles(r["smiles"]) is not None and float(r["MW"]) > 0
    if suffix == ".sdf":
        records = [m for m in Chem.SDMolSupplier(str(out))]
        assert len(records) == 20 and all(m.HasProp("state") for m in records)
        assert all(m.HasProp("QED") for m in records if m.GetProp("state") != "invalid")


def test_sample_is_reproducible_and_valence_decoding_is_valid(prior_run, tmp_path):
    def run(name, *extra):
        out = tmp_path / name
        assert main(["sample", "-n", "12", "--out", str(out), "--model", str(prior_run / "model"), "--device", "cpu", "--no-progress", *extra]) == 0
        with open(out, newline="") as handle:
            return list(csv.DictReader(handle))

    assert run("a.csv", "--seed", "1") == run("b.csv", "--seed", "1")
    valence = run("v.csv", "--seed", "1", "--decoding", "valence", "--no-properties", "--condition", "QED=0.9", "--guidance", "2")
    assert all(r["state"] in ("valid", "duplicate") and Chem.MolFromSmiles(r["smiles"]) for r in valence)
    assert "QED" not in valence[0]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--condition", "QED"], "expected NAME=VALUE"),
        (["--condition", "QED=high"], "expected NAME=VALUE with a number"),
        (["--condition", "potency=3"], "'potency'"),
        (["--num-nodes", "500"], "num_nodes=500"),
        (["--repairs", "-1"], "repairs=-1: must be a whole number >= 0"),
        (["--temperature", "0"], "temperature=0.0: must be a finite number > 0"),
        (["--top-p", "1.5"], "top_p=1.5: must be a number in (0, 1]"),
        (["--precision", "half"], "precision must be one of ('fp32', 'bf16', 'auto'), got 'half'"),
        (["--candidates", "0"], "candidates=0: must be a whole number >= 1"),
        (["--calibration", "on"], "calibrated=True: this model has no calibration"),
        (["--sampler", "heun"], "sampler='heun': a discrete prior draws each token from its softmax"),
    ],
)
def test_sample_bad_requests_exit_2_with_a_message(prior_run, tmp_path, capsys, extra, message):
    out = tmp_path / "x.csv"
    assert main(["sample", "-n", "4", "--out", str(out), "--model", str(prior_run / "model"), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sample_from_a_targets_table_one_row_per_sample_bad_rows_reported(prior_run, tmp_path, capsys, monkeypatch):
    table = tmp_path / "targets.csv"
    table.write_text(
        "name,qed,logP,num_nodes\n"
        "a,0.8,2.5,9\n"
        "b,,1.0,12\n"  # no QED target in this row
        "c,high,1.0,9\n"  # bad: not a number
        "d,0.7,,0\n"  # bad: size 0
        "\n"
        "e,0.9,3.0,10\n"
    )
    out = tmp_path / "out.csv"
    args = ["sample", "--conditions-file", str(table), "--per-row", "2", "--out", str(out), "--model", str(prior_run / "model"),
            "--seed", "2", "--batch-size", "4", "--device", "cpu", "--no-progress"]  # fmt: skip
    calls = []
    real = MolgenPipeline.sample_iter

    def spy(self, n, config=None, **options):
        calls.append((n, config, options))
        return real(self, n, config, **options)

    monkeypatch.setattr(MolgenPipeline, "sample_iter", spy)
    assert main(args) == 0
    ((n, config, options),) = calls  # the pipeline gets one config, one target mapping and one size per sample
    assert config == SamplingConfig(batch_size=4) and options["seed"] == 2
    assert n == 6 and options["num_nodes"] == [9, 9, 12, 12, 10, 10]
    assert options["conditions"] == [{"QED": 0.8, "logP": 2.5}] * 2 + [{"logP": 1.0}] * 2 + [{"QED": 0.9, "logP": 3.0}] * 2
    err = capsys.readouterr().err
    assert "line 4" in err and "QED 'high' is not a number" in err
    assert "line 5" in err and "num_nodes '0' is not a whole number >= 1" in err
    assert "wrote 6 samples" in err and "2 bad row(s)" in err
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in rows] == [2, 2, 3, 3, 7, 7]  # the table's line of each sample, in order
    assert [r["target_QED"] for r in rows] == ["0.8", "0.8", "", "", "0.9", "0.9"]
    assert [r["target_logP"] for r in rows] == ["2.5", "2.5", "1", "1", "3", "3"]


@pytest.mark.parametrize(
    "table, extra, message",
    [
        ("smiles,potency\nCCO,3\n", [], "no property column; the columns are ['smiles', 'potency']"),
        ("QED\nabc\n", [], "no usable rows (1 bad)"),
        ("QED\n0.8\n", ["-n", "4"], "-n with --conditions-file"),
        ("QED\n0.8\n", ["--condition", "logP=2"], "--condition / --num-nodes with --conditions-file"),
        ("QED\n0.8\n", ["--per-row", "0"], "--per-row 0: must be at least 1"),
    ],
)
def test_sample_targets_table_refusals(prior_run, tmp_path, capsys, table, extra, message):
    path = tmp_path / "t.csv"
    path.write_text(table)
    args = ["sample", "--conditions-file", str(path), "--out", str(tmp_path / "x.csv"), "--model", str(prior_run / "model"), "--no-progress", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sample_needs_n_or_a_targets_table(prior_run, tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "x.csv"), "--model", str(prior_run / "model"), "--no-progress"]) == 2
    assert "give -n N" in capsys.readouterr().err


def test_sample_from_a_model_without_prior_exits_2(cli_run, tmp_path, capsys):  # noqa: F811
    assert main(["sample", "-n", "2", "--out", str(tmp_path / "x.csv"), "--model", str(cli_run / "model"), "--no-progress"]) == 2
    assert "no prior" in capsys.readouterr().err


def test_evaluate_against_a_user_reference(tmp_path, capsys, moses_sample, monkeypatch):
    monkeypatch.setenv("MOLGEN_CACHE", str(tmp_path / "cache"))  # reference statistics are cached here
    reference = moses_sample("test", 60, 11)
    (tmp_path / "ref.smi").write_text("\n".join(reference) + "\n")
    (tmp_path / "train.smi").write_text("\n".join(reference[:30]) + "\n")
    generated = tmp_path / "gen.csv"
    with open(generated, "w", newline="") as handle:  # molgen sample's layout: invalid rows have no SMILES
        writer = csv.writer(handle)
        writer.writerow(["index", "smiles", "state"])
        for i, s in enumerate(reference[20:40] + [""] * 5):
            writer.writerow([i, s, "valid" if s else "invalid"])
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(generated), "--test", str(tmp_path / "ref.smi"), "--train", str(tmp_path / "train.smi"), "--out", str(out), "--jobs", "1"]
    assert main(args) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["valid"] == pytest.approx(20 / 25)
    assert metrics["Novelty"] == pytest.approx(0.5)  # 10 of the 20 are in the training file
    assert metrics["SNN/Test"] == pytest.approx(1.0)  # every generated molecule is in the reference
    assert "FCD/Test" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").rglob("*.json"))) >= 2  # the user's test and train statistics, cached


def test_evaluate_reference_options_need_test(tmp_path, capsys):
    (tmp_path / "g.smi").write_text("CCO\n")
    assert main(["evaluate", str(tmp_path / "g.smi"), "--train", str(tmp_path / "g.smi")]) == 2
    assert "need --test" in capsys.readouterr().err


def test_train_prior_two_process_ddp_on_cpu(prior_run, cli_run, train_smi, tmp_path):  # noqa: F811
    """The prior scales like the tokenizer: two CPU processes (gloo) train a few steps together."""
    args = list(PRIOR_TINY)
    del args[args.index("--devices") : args.index("--devices") + 2]
    args[args.index("--max-steps") + 1] = "3"
    run = tmp_path / "ddp"
    command = ["molgen", "train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--out", str(run),
               "--latents", str(prior_run / "latents"), *args, "--devices", "2", "--strategy", "ddp"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("model directory") == 1  # only rank 0 reports
    assert json.loads((run / "model" / "prior" / "training.json").read_text())["global_step"] == 3
    assert "world_size=2" in result.stderr or "distributed_backend=gloo" in result.stderr


def _fine_tuned(cli_run, train_smi, out, *extra):  # noqa: F811
    args = list(TINY)
    args[args.index("--max-steps") + 1] = "2"
    assert main(["train", "tokenizer", str(train_smi), "--out", str(out), "--init-from", str(cli_run / "model"), *args, *extra]) == 0
    return out / "model"


def test_a_decoder_only_fine_tune_keeps_the_latent_cache(prior_run, cli_run, train_smi, tmp_path):  # noqa: F811
    model = _fine_tuned(cli_run, train_smi, tmp_path / "tok", "--freeze-encoder", "--latent-noise", "0.5", "--decoder-layers", "2")
    assert json.loads((model / "tokenizer" / "config.json").read_text())["decoder_layers"] == 2
    shutil.copytree(prior_run / "latents", tmp_path / "latents")
    before = (tmp_path / "latents" / "latents.npz").stat().st_mtime_ns
    assert main(["train", "prior", str(train_smi), "--model", str(model), "--out", str(tmp_path / "prior"), "--latents", str(tmp_path / "latents"), *PRIOR_TINY]) == 0
    assert (tmp_path / "latents" / "latents.npz").stat().st_mtime_ns == before


def test_a_cached_latent_set_gets_the_properties_it_lacks(prior_run, cli_run, train_smi, tmp_path):  # noqa: F811
    shutil.copytree(prior_run / "latents", tmp_path / "latents")
    full = LatentDataset.load(tmp_path / "latents")
    assert not np.isnan(full.properties).all(1).any()
    partial = LatentDataset.load(tmp_path / "latents")
    partial.properties[::2] = np.nan  # as if made with --property-limit: half the molecules labelled
    partial.save(tmp_path / "latents")
    command = ["train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--latents", str(tmp_path / "latents"), *PRIOR_TINY]
    assert main([*command, "--out", str(tmp_path / "a"), "--property-limit", "10"]) == 0  # fewer asked than known: unchanged
    np.testing.assert_array_equal(LatentDataset.load(tmp_path / "latents").properties, partial.properties)
    assert main([*command, "--out", str(tmp_path / "b")]) == 0  # no limit: all of them
    completed = LatentDataset.load(tmp_path / "latents")
    np.testing.assert_allclose(completed.properties, full.properties, rtol=1e-6)
    np.testing.assert_array_equal(completed.mean, full.mean)


def test_a_new_encoder_re_encodes_but_keeps_the_computed_properties(prior_run, cli_run, train_smi, tmp_path, monkeypatch):  # noqa: F811
    model = _fine_tuned(cli_run, train_smi, tmp_path / "tok")
    shutil.copytree(prior_run / "latents", tmp_path / "latents")
    old = LatentDataset.load(tmp_path / "latents")

    def recomputed(*args, **kwargs):
        raise AssertionError("properties were computed again")

    monkeypatch.setattr("molgen.latents.compute_property_table", recomputed)
    assert main(["train", "prior", str(train_smi), "--model", str(model), "--out", str(tmp_path / "prior"), "--latents", str(tmp_path / "latents"), *PRIOR_TINY]) == 0
    new = LatentDataset.load(tmp_path / "latents")
    assert new.tokenizer != old.tokenizer and not np.array_equal(new.mean, old.mean)
    np.testing.assert_array_equal(new.properties, old.properties)


def test_properties_are_not_reused_for_other_molecules_of_the_same_count(prior_run, cli_run, train_smi, tmp_path, monkeypatch):  # noqa: F811
    reordered = tmp_path / "reordered.smi"
    reordered.write_text("\n".join(reversed(train_smi.read_text().split())) + "\n")
    shutil.copytree(prior_run / "latents", tmp_path / "latents")
    old = LatentDataset.load(tmp_path / "latents")
    calls = []
    original = latents_module.compute_property_table

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr("molgen.latents.compute_property_table", counted)
    model = _fine_tuned(cli_run, train_smi, tmp_path / "tok")  # another encoder: the cache is stale
    assert main(["train", "prior", str(reordered), "--model", str(model), "--out", str(tmp_path / "prior"), "--latents", str(tmp_path / "latents"), *PRIOR_TINY]) == 0
    new = LatentDataset.load(tmp_path / "latents")
    assert calls == [len(old)], "the same number of graphs in another order must get its properties computed again"
    assert new.items and new.items != old.items
    # row i of the new table belongs to row n-1-i of the old one
    np.testing.assert_allclose(new.properties, old.properties[::-1], rtol=1e-5, equal_nan=True)


def test_sample_from_the_shipped_model_by_default(tmp_path, capsys):
    out = tmp_path / "shipped.csv"
    assert main(["sample", "-n", "4", "--out", str(out), "--repairs", "1", "--seed", "2", "--device", "cpu", "--no-progress"]) == 0
    with open(out, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and all(r["state"] in ("valid", "duplicate") for r in table)  # valence decoding: all valid
    assert "wrote 4 samples" in capsys.readouterr().err


def test_train_prior_init_from_records_the_run_it_continues(prior_run, cli_run, train_smi, tmp_path):  # noqa: F811
    previous = json.loads((prior_run / "model" / "prior" / "training.json").read_text())
    out = tmp_path / "continued"
    args = list(PRIOR_TINY)
    args[args.index("--max-steps") + 1] = "3"
    command = ["train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--out", str(out), "--init-from", str(prior_run / "model")]
    assert main([*command, "--latents", str(prior_run / "latents"), *args]) == 0
    training = json.loads((out / "model" / "prior" / "training.json").read_text())
    assert training["global_step"] == 3
    assert training["initialized_from"]["path"] == str(prior_run / "model")
    assert training["initialized_from"]["training"]["global_step"] == previous["global_step"]


def test_train_prior_init_from_can_deepen_but_not_reshape_the_prior(prior_run, cli_run, train_smi, tmp_path, capsys):  # noqa: F811
    source = json.loads((prior_run / "model" / "prior" / "config.json").read_text())
    assert source["layers"] == 1 and source["relative_positions"] == source["max_nodes"] - 1  # new priors get every offset
    args = list(PRIOR_TINY)
    args[args.index("--max-steps") + 1] = "2"
    args[args.index("--layers") + 1] = "2"
    command = ["train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--init-from", str(prior_run / "model"), "--latents", str(prior_run / "latents")]
    assert main([*command, "--out", str(tmp_path / "deeper"), *args]) == 0
    deeper = json.loads((tmp_path / "deeper" / "model" / "prior" / "config.json").read_text())
    assert deeper["layers"] == 2
    other = ("layers", WEIGHTS_DIGEST)  # the weights differ, so does their digest
    assert {k: v for k, v in deeper.items() if k not in other} == {k: v for k, v in source.items() if k not in other}
    assert main([*command, "--out", str(tmp_path / "other"), *args, "--relative-positions", "3"]) == 2
    assert "relative-position biases" in capsys.readouterr().err


def test_train_predictor_then_sample_with_property_guidance(prior_run, train_smi, tmp_path, capsys):  # noqa: F811
    model = tmp_path / "model"
    shutil.copytree(prior_run / "model", model)
    out = ["sample", "-n", "6", "--model", str(model), "--condition", "QED=0.8", "--property-guidance", "0.3", "--device", "cpu", "--no-progress"]
    assert main([*out, "--out", str(tmp_path / "none.csv")]) == 2
    assert "has none" in capsys.readouterr().err and not (tmp_path / "none.csv").exists()
    run = tmp_path / "predictor"
    args = ["train", "predictor", str(train_smi), "--model", str(model), "--out", str(run), "--latents", str(prior_run / "latents"),
            "--d-model", "16", "--layers", "1", "--max-steps", "4", "--batch-size", "16", "--warmup-steps", "1",
            "--no-progress", "--accelerator", "cpu", "--devices", "1", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    config = json.loads((run / "model" / "predictor" / "config.json").read_text())
    prior = json.loads((model / "prior" / "config.json").read_text())
    assert config["property_names"] == prior["property_names"] and config["latent_std"] == prior["latent_std"]
    shutil.copytree(run / "model" / "predictor", model / "predictor")
    assert main([*out, "--out", str(tmp_path / "guided.csv")]) == 0
    assert len(list(read_molecules(tmp_path / "guided.csv"))) == 6
    assert main(["train", "predictor", str(train_smi), "--model", str(tmp_path / "absent"), "--out", str(run)]) == 2
    assert "no prior/" in capsys.readouterr().err
    # fine-tuning on the model's own samples: the run starts from the given predictor's weights (a vanishing learning
    # rate leaves them) and labels each sample with the properties of the molecule it decodes to
    tuned = tmp_path / "tuned"
    own = [*args[:6], str(tuned), *args[7:], "--own-samples", "9", "--init-from", str(model), "--device", "cpu"]
    own[own.index("--max-steps") + 1], own[own.index("--d-model") + 1] = "1", "24"  # --d-model yields to the predictor started from
    assert main([*own, "--lr", "1e-12"]) == 0
    start, end = load_predictor(model / "predictor"), load_predictor(tuned / "model" / "predictor")
    assert end.config.d_model == 16
    for name, tensor in start.state_dict().items():
        torch.testing.assert_close(end.state_dict()[name], tensor, atol=1e-6, rtol=0)
    training = json.loads((tuned / "model" / "predictor" / "training.json").read_text())
    assert training["own_samples"]["samples"] == 9 and training["init_from"] == str(model)
    samples = LatentDataset.load(tuned / "own_samples" / "0000")
    assert len(samples) == 9 and samples.property_names == prior["property_names"]
    pipe = MolgenPipeline.from_pretrained(model, device="cpu")
    decoded = pipe.decode(Latents(*samples.dense(range(9))), decoding="valence")
    assert any(m.smiles for m in decoded)
    for molecule, row in zip(decoded, samples.properties, strict=True):
        if molecule.smiles is None:
            assert np.isnan(row).all()
        else:
            expected = pipe.domain.properties(molecule.smiles, samples.property_names)
            np.testing.assert_allclose(row, [expected[n] for n in samples.property_names], rtol=1e-5)
    for bad, message in (
        (["--own-sample-targets", "QED,potency"], "potency not among the prior's properties"),
        (["--init-from", str(tmp_path / "absent")], "no predictor in it"),
        (["--own-samples", "-1"], "--own-samples -1: must be >= 0"),
    ):
        assert main([*own[:5], "--out", str(tmp_path / "bad"), *own[7:], *bad]) == 2
        assert message in capsys.readouterr().err


def test_train_judge_on_data_and_the_models_own_decoded_samples(prior_run, train_smi, tmp_path, capsys):  # noqa: F811
    model = tmp_path / "model"
    shutil.copytree(prior_run / "model", model)
    run = tmp_path / "judge"
    args = ["train", "judge", str(train_smi), "--model", str(model), "--out", str(run), "--latents", str(prior_run / "latents"),
            "--d-model", "16", "--layers", "1", "--walk-steps", "4", "--max-steps", "3", "--batch-size", "16", "--warmup-steps", "1",
            "--own-samples", "9", "--default-candidates", "12", "--no-progress", "--accelerator", "cpu", "--devices", "1", "--threads", "1",
            "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    config = json.loads((run / "model" / "judge" / "config.json").read_text())
    prior = json.loads((model / "prior" / "config.json").read_text())
    tokenizer = json.loads((model / "tokenizer" / "config.json").read_text())
    assert config["property_names"] == prior["property_names"] and config["property_std"] == prior["property_std"]
    assert config["node_vocab_sizes"] == tokenizer["node_vocab_sizes"] and config["default_candidates"] == 12 and config["walk_steps"] == 4
    training = json.loads((run / "model" / "judge" / "training.json").read_text())
    data_size = len(LatentDataset.load(prior_run / "latents"))
    # the own samples' decoded SMILES are cached beside their latents; every one that decoded is a training graph
    smiles = (run / "own_samples" / "0000" / "smiles.txt").read_text().split("\n")[:9]
    decoded = [s for s in smiles if s]
    assert decoded and training["train_size"] + training["val_size"] == data_size + len(decoded)
    pipe = MolgenPipeline.from_pretrained(model, device="cpu")
    samples = LatentDataset.load(run / "own_samples" / "0000")
    assert [m.smiles or "" for m in pipe.decode(Latents(*samples.dense(range(9))), decoding="valence")] == smiles
    shutil.copytree(run / "model" / "judge", model / "judge")
    assert isinstance(MolgenPipeline.from_pretrained(model, device="cpu").judge, GraphJudge)
    # a cached chunk without its SMILES (cached by an older molgen) is decoded again; the run resumes from its checkpoint
    (run / "own_samples" / "0000" / "smiles.txt").unlink()
    assert main([*args, "--max-steps", "4"]) == 0
    assert (run / "own_samples" / "0000" / "smiles.txt").read_text().split("\n")[:9] == smiles
    assert json.loads((run / "model" / "judge" / "training.json").read_text())["global_step"] == 4
    for bad, message in (
        (["--model", str(tmp_path / "absent")], "no prior/"),
        (["--own-samples", "-1"], "--own-samples -1: must be >= 0"),
    ):
        assert main([*args[:5], "--out", str(tmp_path / "bad"), *args[7:], *bad]) == 2
        assert message in capsys.readouterr().err


def test_train_prior_set_and_sample_from_it(prior_run, cli_run, train_smi, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "set"
    args = [*PRIOR_TINY, "--architecture", "set", "--time-sampling", "logit_normal", "--latents", str(prior_run / "latents")]
    assert main(["train", "prior", str(train_smi), "--model", str(cli_run / "model"), "--out", str(run), *args]) == 0
    config = json.loads((run / "model" / "prior" / "config.json").read_text())
    assert (config["architecture"], config["default_steps"], config["vocabulary"]) == ("set", 4, [])
    assert json.loads((run / "model" / "prior" / "training.json").read_text())["settings"]["time_sampling"] == "logit_normal"
    sample = ["sample", "-n", "6", "--model", str(run / "model"), "--seed", "1", "--device", "cpu", "--no-progress"]
    assert main([*sample, "--out", str(tmp_path / "set.csv"), "--steps", "2", "--sampler", "heun"]) == 0
    assert len(list(read_molecules(tmp_path / "set.csv"))) == 6
    capsys.readouterr()
    for extra, message in (
        (["--repairs", "2"], "repairs=2: an option of a discrete prior"),
        (["--top-p", "0.9"], "top_p=0.9: an option of a discrete prior"),
        (["--candidates", "3"], "candidates=3: an option of a discrete prior"),
        (["--sampler", "ddim"], "sampler='ddim': choose one of ['dpm', 'euler', 'heun']"),
    ):
        assert main([*sample, "--out", str(tmp_path / "refused.csv"), *extra]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "refused.csv").exists()
    # the networks that choose among a prior's samples serve a discrete prior only: refused before any data is read
    for component in ("predictor", "judge"):
        assert main(["train", component, str(tmp_path / "absent.smi"), "--model", str(run / "model"), "--out", str(tmp_path / component)]) == 2
        err = capsys.readouterr().err
        assert "its prior is 'set'" in err and "absent.smi" not in err


def test_train_prior_refuses_a_labelled_share_outside_0_1_before_reading_data(cli_run, tmp_path, capsys):  # noqa: F811
    args = ["train", "prior", str(tmp_path / "absent.smi"), "--model", str(cli_run / "model"), "--out", str(tmp_path / "run"), "--labelled-share", "1.5"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--labelled-share 1.5: must be strictly between 0 and 1" in err and "absent.smi" not in err
