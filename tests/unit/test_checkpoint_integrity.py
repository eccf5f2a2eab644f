"""Model files are checked at load: the SHA-256 of each component's weights is recorded in its config, and a
corrupted, truncated or unreadable file is an error naming it."""

from __future__ import annotations

import json
import shutil

import pytest

from molgen.checkpoint import WEIGHTS_DIGEST, CheckpointError, file_sha256, load_judge, load_prior, load_tokenizer, save_tokenizer

from ..conftest import REPO

SHIPPED = REPO / "checkpoints" / "moses"


@pytest.mark.parametrize("part", ["tokenizer", "prior", "predictor", "judge"])
def test_every_shipped_component_records_the_digest_of_its_weights(part):
    config = json.loads((SHIPPED / part / "config.json").read_text())
    assert config[WEIGHTS_DIGEST] == file_sha256(SHIPPED / part / "model.safetensors")


@pytest.fixture
def tokenizer_copy(tmp_path):
    shutil.copytree(SHIPPED / "tokenizer", tmp_path / "tokenizer")
    return tmp_path / "tokenizer"


def test_saving_records_the_digest_and_loading_checks_it(tokenizer_copy, tmp_path):
    save_tokenizer(load_tokenizer(tokenizer_copy), tmp_path / "again")
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config[WEIGHTS_DIGEST] == file_sha256(tmp_path / "again" / "model.safetensors")
    load_tokenizer(tmp_path / "again")


def test_corrupted_weights_are_refused_naming_the_file(tokenizer_copy):
    weights = tokenizer_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4096:] = bytes(4096)  # 4 KB of the weights zeroed: still loads as a safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: corrupted or changed"):
        load_tokenizer(tokenizer_copy)


def test_truncated_weights_are_refused_naming_the_file(tokenizer_copy):
    weights = tokenizer_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_tokenizer(tokenizer_copy)
    config = json.loads((tokenizer_copy / "config.json").read_text())
    del config[WEIGHTS_DIGEST]  # without a recorded digest the damaged file still fails by name when read
    (tokenizer_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot load"):
        load_tokenizer(tokenizer_copy)


def test_unreadable_or_wrong_configs_are_refused_naming_the_file(tmp_path):
    shutil.copytree(SHIPPED / "judge", tmp_path / "judge")
    (tmp_path / "judge" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"judge/config\.json: not a readable judge config"):
        load_judge(tmp_path / "judge")
    shutil.copytree(SHIPPED / "prior", tmp_path / "prior")
    config = json.loads((tmp_path / "prior" / "config.json").read_text())
    config["no_such_field"] = 1
    (tmp_path / "prior" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"prior/config\.json: not a valid prior config"):
        load_prior(tmp_path / "prior")
