"""A scene model end to end through the command line: generate scenes, featurize them (sparse form), train a tiny
tokenizer and a tiny discrete prior on them (step-counted, one thread), sample scenes to JSON lines, and read them
back. Nothing here imports RDKit."""

from __future__ import annotations

import json
import sys

import pytest

from molgen.cli import main
from molgen.dataset import GraphDataset
from molgen.scenes.io import scene_from_json

from ..conftest import STEP_COUNTED

TRAINER = [
    "--no-progress", "--accelerator", "cpu", "--devices", "1", "--threads", "1", "--seed", str(STEP_COUNTED["seed"]),
    "--checkpoint-steps", str(STEP_COUNTED["checkpoint_steps"]), "--val-every", "1000",
]  # fmt: skip
TOKENIZER = [
    "--max-steps", "60", "--d-model", "32", "--heads", "4", "--encoder-layers", "1", "--decoder-layers", "1",
    "--edge-hidden", "16", "--batch-size", "32", "--warmup-steps", "5", "--lr", "3e-3", "--fsq-levels", "4,4,4", *TRAINER,
]  # fmt: skip
PRIOR = ["--max-steps", "60", "--d-model", "32", "--layers", "1", "--batch-size", "32", "--warmup-steps", "5", "--lr", "3e-3", *TRAINER]


@pytest.fixture(scope="module")
def scene_model(tmp_path_factory):
    """(work directory, model directory) of a tiny scene model trained through the CLI on 300 generated scenes."""
    work = tmp_path_factory.mktemp("scene_model")
    assert main(["scenes", "generate", "-n", "300", "--seed", "3", "--out", str(work / "scenes.jsonl"), "--no-progress"]) == 0
    data = work / "data"
    assert main(["featurize", str(work / "scenes.jsonl"), "--domain", "scene", "--form", "sparse", "--out", str(data), "--quiet"]) == 0
    assert main(["train", "tokenizer", str(data), "--out", str(work / "tok"), *TOKENIZER]) == 0
    assert main(["train", "prior", str(data), "--model", str(work / "tok" / "model"), "--out", str(work / "prior"), *PRIOR]) == 0
    return work, work / "prior" / "model"


def test_generate_writes_the_same_scenes_for_a_seed(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["scenes", "generate", "-n", "5", "--seed", "3", "--out", str(first), "--no-progress"]) == 0
    assert main(["scenes", "generate", "-n", "2", "--seed", "3", "--start", "3", "--out", str(second), "--no-progress"]) == 0
    assert first.read_text().splitlines()[3:] == second.read_text().splitlines()


def test_featurize_writes_a_scene_dataset_with_its_domain(scene_model):
    work, _ = scene_model
    dataset = GraphDataset.load(work / "data")
    domain = json.loads((work / "data" / "domain.json").read_text())
    assert len(dataset) == 300 and domain["name"] == "scene" and domain["form"] == "sparse"
    assert scene_from_json(json.loads(dataset.items[0])).num_objects == dataset[0].num_nodes


def test_featurize_reports_bad_scene_lines(tmp_path, capsys):
    path = tmp_path / "scenes.jsonl"
    assert main(["scenes", "generate", "-n", "4", "--seed", "0", "--out", str(path), "--no-progress"]) == 0
    cyclic = {"objects": [{"shape": "cube", "color": "red", "material": "rubber", "size": "large"}] * 2,
              "relationships": {"right": [[1], [0]], "left": [[1], [0]], "front": [[], []], "behind": [[], []]}}  # fmt: skip
    path.write_text(path.read_text() + "not json\n" + json.dumps(cyclic) + "\n")
    assert main(["featurize", str(path), "--domain", "scene", "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    assert len(GraphDataset.load(tmp_path / "ds")) == 4
    bad = (tmp_path / "ds" / "bad_rows.tsv").read_text()
    assert "line 5" in bad and "not JSON" in bad and "line 6" in bad


def test_model_directory_is_a_scene_model(scene_model):
    _, model = scene_model
    assert json.loads((model / "domain.json").read_text())["name"] == "scene"
    assert {"tokenizer", "prior"} <= {p.name for p in model.iterdir()}


@pytest.mark.parametrize("decoding", ["valence", "raw"])
def test_sample_writes_scenes_as_json_lines(scene_model, decoding, tmp_path):
    _, model = scene_model
    out = tmp_path / "samples.jsonl"
    argv = ["sample", "--model", str(model), "-n", "40", "--out", str(out), "--decoding", decoding, "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(40))
    assert {r["state"] for r in records} <= {"valid", "duplicate", "invalid"}
    for r in records:
        assert (r["scene"] is None) == (r["state"] == "invalid")
        if r["scene"] is not None:
            scene = scene_from_json(r["scene"])
            assert 3 <= scene.num_objects <= 10 and r["properties"]["num_objects"] == scene.num_objects
    if decoding == "valence":  # layout-aware decoding: every sample is a scene
        assert all(r["state"] != "invalid" for r in records)


def test_sample_resumes_a_scene_file(scene_model, tmp_path):
    _, model = scene_model
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    common = ["sample", "--model", str(model), "-n", "30", "--batch-size", "10", "--device", "cpu", "--no-progress"]
    assert main([*common, "--out", str(whole)]) == 0
    lines = whole.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:12]) + lines[12][:20])  # interrupted in the middle of record 12
    assert main([*common, "--out", str(part), "--resume"]) == 0
    assert part.read_text() == whole.read_text()


def test_sample_refuses_a_molecule_file_for_scenes(scene_model, tmp_path, capsys):
    _, model = scene_model
    assert main(["sample", "--model", str(model), "-n", "2", "--out", str(tmp_path / "s.csv"), "--device", "cpu"]) == 2
    assert ".jsonl" in capsys.readouterr().err


def test_scene_path_does_not_import_rdkit(scene_model, tmp_path):
    import subprocess

    _, model = scene_model
    code = (
        "import sys; from molgen.pipeline import MolgenPipeline; "
        f"pipe = MolgenPipeline.from_pretrained({str(model)!r}, device='cpu'); pipe.sample(4, seed=0); "
        "assert 'rdkit' not in sys.modules, 'rdkit imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- design, complete, nearest on the shipped scene model ------------------------------------------------------

CLEVR_MODEL = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "checkpoints" / "clevr")


def test_scenes_design_writes_scenes_that_satisfy_the_request(tmp_path, capsys):
    from molgen.scenes.constraints import parse_request

    out = tmp_path / "designed.jsonl"
    request = "2 red cubes; something left of a metal sphere"
    assert main(["scenes", "design", request, "-n", "3", "--candidates", "16", "--model", CLEVR_MODEL, "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2]
    for r in records:
        assert r["satisfied"] and r["unmet"] == [] and r["request"] == request
        assert all(c.check(scene_from_json(r["scene"])) for c in parse_request(request))
    assert "3 satisfy their request" in capsys.readouterr().err


def test_scenes_complete_keeps_the_given_objects(tmp_path):
    partial = tmp_path / "partial.json"
    objects = [
        {"shape": "cube", "color": "red", "material": "metal", "size": "large", "position": [-1.0, 0.0]},
        {"shape": "sphere", "color": "green", "material": "rubber", "size": "small", "position": [1.0, 1.0]},
    ]
    partial.write_text(json.dumps({"objects": objects}))
    out = tmp_path / "completed.jsonl"
    assert main(["scenes", "complete", str(partial), "--request", "6 objects", "-n", "2", "--model", CLEVR_MODEL, "--out", str(out)]) == 0
    for r in (json.loads(line) for line in out.read_text().splitlines()):
        scene = scene_from_json(r["scene"])
        assert r["satisfied"] and scene.num_objects == 6
        cube, sphere = r["given"]["0"], r["given"]["1"]
        assert scene.objects[cube].describe() == "large red metal cube" and scene.objects[sphere].describe() == "small green rubber sphere"
        assert (cube, sphere) in scene.right and (cube, sphere) in scene.behind  # the sphere stays right of and behind the cube


def test_scenes_nearest_finds_a_scene_among_candidates(tmp_path):
    candidates = tmp_path / "candidates.jsonl"
    assert main(["scenes", "generate", "-n", "12", "--seed", "4", "--out", str(candidates), "--no-progress"]) == 0
    query = tmp_path / "query.json"
    query.write_text(candidates.read_text().splitlines()[7])
    out = tmp_path / "nearest.jsonl"
    assert main(["scenes", "nearest", str(query), "--candidates", str(candidates), "-k", "3", "--model", CLEVR_MODEL, "--out", str(out)]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["query"] == 0 and len(record["neighbours"]) == 3
    assert record["neighbours"][0] == {"candidate": 7, "distance": 0.0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scenes", "design", "2 red cubez"], "unknown word 'cubez'"),
        (["scenes", "design", "at least 30 objects"], "at most 18"),
        (["scenes", "design", "a cube", "--model", "checkpoints/moses"], "scene model"),
        (["scenes", "complete", "missing.json"], "no such file"),
    ],
)
def test_scenes_commands_name_bad_input(tmp_path, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(CLEVR_MODEL).parents[1])
    argv = [*argv, "--out", str(tmp_path / "out.jsonl")]
    if "--model" not in argv:
        argv += ["--model", CLEVR_MODEL]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
