"""A tiny design model: the shipped tokenizer with a small set (flow-matching) prior trained in seconds on a handful of
MOSES molecules, as a complete model directory (the suite never depends on the shipped prior's quality)."""

from __future__ import annotations

import shutil

import pytest

from molgen.checkpoint import load_domain, load_tokenizer, save_domain, save_tokenizer
from molgen.dataset import GraphDataset
from molgen.latents import compute_property_table, encode_dataset
from molgen.prior.training import PriorTrainSettings, prior_config_from_data, train_prior

from ..conftest import REPO, STEP_COUNTED

SHIPPED = REPO / "checkpoints" / "moses"
# Drug-like MOSES molecules the shipped tokenizer reconstructs exactly, with a benzamide and a pyrrolidinone.
TRAINING = [
    "O=C(NCc1ccco1)c1ccc(Cl)cc1Cl",
    "CC(=O)Nc1ccc(OCC(=O)N2CCCC2)cc1",
    "Cc1ccc(NC(=O)c2ccccc2)cc1C",
    "O=C1CCCN1Cc1ccc(F)cc1",
    "COc1ccc(CNC(=O)c2ccccc2)cc1",
    "CCOC(=O)c1ccc(NC(=O)C2CC2)cc1",
    "CN(C)CCNC(=O)c1ccccc1Cl",
    "Cc1cc(C)n(CC(=O)NC2CCCCC2)n1",
]


def model_with_tiny_prior(source, training: list[str], tmp, **shape):
    """A complete model directory in ``tmp``: ``source``'s domain and tokenizer with a tiny prior conditioned on
    properties, trained for 300 steps on ``training`` (``shape``: prior options, e.g. ``architecture``)."""
    domain, tokenizer = load_domain(source / "domain.json"), load_tokenizer(source / "tokenizer")
    smiles = training * 16
    graphs = [domain.to_graph(s) for s in smiles]
    dataset = GraphDataset.from_graphs(graphs, [domain.canonical(s) for s in smiles], domain.vocab)
    latents = encode_dataset(tokenizer, dataset, batch_size=64)
    latents.properties = compute_property_table(domain, dataset.items, domain.property_names, workers=1)
    latents.property_names = list(domain.property_names)
    config = prior_config_from_data(latents, tokenizer.config.max_nodes, d_model=32, n_heads=4, layers=2, **shape)
    settings = PriorTrainSettings(batch_size=32, lr=3e-3, warmup_steps=10, max_steps=300, val_every=1000, val_size=8,
                                  ema_decay=0.9, progress=False, accelerator="cpu", devices=1, threads=1, **STEP_COUNTED)  # fmt: skip
    train_prior(latents, tmp / "run", config, settings)
    model = tmp / "model"
    model.mkdir()
    save_domain(domain, model / "domain.json")
    save_tokenizer(tokenizer, model / "tokenizer")
    shutil.copytree(tmp / "run" / "model" / "prior", model / "prior")
    return model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Path of a complete model directory (domain, shipped tokenizer, tiny prior conditioned on properties)."""
    if not (SHIPPED / "tokenizer" / "model.safetensors").exists():
        pytest.skip("shipped tokenizer not present")
    return model_with_tiny_prior(SHIPPED, TRAINING, tmp_path_factory.mktemp("design_model"), default_steps=10)


@pytest.fixture(scope="session")
def designer(tiny_model):
    from molgen.design import Designer

    return Designer.from_pretrained(tiny_model, device="cpu", batch_size=16)
