"""Saving and loading trained components: safetensors weights + JSON config, never pickle.

A model directory (``checkpoints/<name>/``) looks like::

    domain.json                 the graph domain (name, vocabulary, standardisation)
    tokenizer/config.json       TokenizerConfig
    tokenizer/model.safetensors weights
    tokenizer/training.json     how it was trained (steps, data sizes, time)
    prior/config.json           PriorConfig (with the data statistics it normalises with)
    prior/model.safetensors     EMA weights of the prior
    prior/training.json
    predictor/                  optional: PredictorConfig + weights of a prefix property predictor (property guidance)
    judge/                      optional: JudgeConfig + weights of a graph network predicting the properties of
                                decoded candidates, to keep the one nearest a request's targets
    calibration/                optional: CalibrationConfig (molgen.calibration), ring-count histograms for resampling
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from molgen.domains import DOMAINS, domain_class
from molgen.judge.model import GraphJudge, JudgeConfig
from molgen.prior import build_prior
from molgen.prior.config import PriorConfig
from molgen.prior.predictor import PredictorConfig, PropertyPredictor
from molgen.tokenizer.config import TokenizerConfig
from molgen.tokenizer.model import GraphTokenizer

__all__ = [
    "WEIGHTS_DIGEST", "CheckpointError", "file_sha256", "load_domain", "load_judge", "load_predictor", "load_prior", "load_tokenizer", "save_domain", "save_judge", "save_predictor", "save_prior",
    "save_tokenizer",
]  # fmt: skip


log = logging.getLogger(__name__)

WEIGHTS_DIGEST = "weights_sha256"
"""Key of ``config.json`` that holds the SHA-256 of ``model.safetensors`` beside it, checked at every load."""


class CheckpointError(ValueError):
    """A model file that cannot be used: missing, unreadable, corrupted or truncated; the message names the file."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_tokenizer(model: GraphTokenizer, directory: str | Path, training: dict[str, Any] | None = None) -> None:
    """Write ``config.json``, ``model.safetensors`` (and ``training.json``) into ``directory``."""
    _save_component(model, directory, training)


def save_prior(model: torch.nn.Module, directory: str | Path, training: dict[str, Any] | None = None) -> None:
    """Write a prior's ``config.json``, ``model.safetensors`` (and ``training.json``) into ``directory``."""
    _save_component(model, directory, training)


def save_predictor(model: PropertyPredictor, directory: str | Path, training: dict[str, Any] | None = None) -> None:
    """Write a property predictor's ``config.json``, ``model.safetensors`` (and ``training.json``) into ``directory``."""
    _save_component(model, directory, training)


def save_judge(model: GraphJudge, directory: str | Path, training: dict[str, Any] | None = None) -> None:
    """Write a judge's ``config.json``, ``model.safetensors`` (and ``training.json``) into ``directory``."""
    _save_component(model, directory, training)


def _save_component(model: torch.nn.Module, directory: str | Path, training: dict[str, Any] | None) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    config = model.config.to_dict() | {WEIGHTS_DIGEST: file_sha256(directory / "model.safetensors")}
    (directory / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    if training is not None:
        (directory / "training.json").write_text(json.dumps(training, indent=1, default=str), encoding="utf-8")


def load_tokenizer(directory: str | Path, device: str | torch.device = "cpu") -> GraphTokenizer:
    """Rebuild a tokenizer from its config and load its weights (eval mode)."""
    return _load_component(directory, "tokenizer", lambda config: GraphTokenizer(TokenizerConfig(**config)), device)


def load_prior(directory: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a prior (discrete or set, as its config says) and load its (EMA) weights (eval mode)."""
    return _load_component(directory, "prior", lambda config: build_prior(PriorConfig(**config)), device)


def load_predictor(directory: str | Path, device: str | torch.device = "cpu") -> PropertyPredictor:
    """Rebuild a property predictor from its config and load its weights (eval mode)."""
    return _load_component(directory, "property predictor", lambda config: PropertyPredictor(PredictorConfig(**config)), device)


def load_judge(directory: str | Path, device: str | torch.device = "cpu") -> GraphJudge:
    """Rebuild a judge of decoded graphs from its config and load its weights (eval mode)."""
    return _load_component(directory, "judge", lambda config: GraphJudge(JudgeConfig(**config)), device)


def _load_component(directory: str | Path, kind: str, build, device: str | torch.device):
    """Rebuild a network from ``directory/config.json`` and load ``directory/model.safetensors`` into it, after checking
    the weights' SHA-256 against the one the config records (a corrupted or truncated file is refused by name)."""
    directory = Path(directory)
    config_path, weights = directory / "config.json", directory / "model.safetensors"
    for path in (config_path, weights):
        if not path.exists():
            raise FileNotFoundError(f"{directory}: not a {kind} checkpoint (missing {path.name})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not a readable {kind} config ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: not a {kind} config (a JSON object is expected)")
    expected = config.pop(WEIGHTS_DIGEST, None)
    if expected is None:
        log.warning("%s records no %s: its weights cannot be checked", config_path, WEIGHTS_DIGEST)
    elif file_sha256(weights) != expected:
        raise CheckpointError(f"{weights}: corrupted or changed since it was saved (its SHA-256 differs from the one {config_path.name} records)")
    try:
        model = build(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_path}: not a valid {kind} config ({exc})") from None
    try:
        model.load_state_dict(load_file(str(weights), device=str(device)))
    except Exception as exc:  # safetensors' own errors for a damaged file, or tensors of the wrong shape
        raise CheckpointError(f"{weights}: cannot load the {kind} weights ({str(exc).splitlines()[0][:300]})") from None
    return model.to(device).eval()


def save_domain(domain, path: str | Path) -> None:
    """Write a domain's config (vocabulary included) as JSON."""
    Path(path).write_text(json.dumps(domain.to_config(), indent=1), encoding="utf-8")


def load_domain(path: str | Path):
    """Rebuild a graph domain from its JSON config."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no domain config")
    config = json.loads(path.read_text(encoding="utf-8"))
    name = config.get("name")
    if name not in DOMAINS:
        raise ValueError(f"{path}: unknown domain {name!r}; known: {sorted(DOMAINS)}")
    return domain_class(name).from_config(config)
