"""The graph tokenizer: shapes, decoding, exact reconstruction of symmetric molecules after overfitting,
checkpoints, latent health, size limits, and resumable training.

Models here are tiny (d_model 32, one layer) and train for at most a few hundred steps on one CPU thread.

The encoder passes learned edge biases as a float attention mask; PyTorch's inference fast path once read
those as "masked" and produced NaN latents (pytorch/pytorch#118628). Tests below check that inference (eval,
no autograd, default torch settings) matches the ordinary path, in the pipeline and in validation.
"""

from __future__ import annotations

import dataclasses

import functools
import json
import math
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from molgen.batch import batch_from_graphs
from molgen.chem import InvalidMoleculeError, canonicalize
from molgen.checkpoint import load_domain, load_tokenizer, save_domain, save_tokenizer
from molgen.domains.molecule import MoleculeDomain
from molgen.featurize import featurize_molecules
from molgen.graph import DomainError
from molgen.io import Row
from molgen.latents import tokenizer_fingerprint
from molgen.pipeline import MolgenPipeline
from molgen.tokenizer.config import TokenizerConfig
from molgen.tokenizer.model import GraphTokenizer, node_pairs
from molgen.tokenizer.training import (
    TokenizerModule,
    TrainSettings,
    latent_health,
    load_deepening,
    noisy_latents,
    reconstruction_metrics,
    train_tokenizer,
)

from ..conftest import STEP_COUNTED

SYMMETRIC = [
    "c1ccccc1",  # benzene: six indistinguishable atoms
    "c1ccc2ccccc2c1",  # naphthalene
    "c1ccc(-c2ccccc2)cc1",  # biphenyl: two identical rings
    "CC(C)(C)C",  # neopentane: four identical methyls
    "OC(=O)c1ccc(C(=O)O)cc1",  # terephthalic acid: identical substituents
    "C1CCCCC1",  # cyclohexane
    "C1CC2CCC1CC2",  # bicyclo[2.2.2]octane
    "C1C2CC3CC1CC(C2)C3",  # adamantane
    "Cc1ccc(C)cc1",  # p-xylene
    "c1ccc2cc3ccccc3cc2c1",  # anthracene
    "c1ccncc1",  # pyridine
    "c1cnccn1",  # pyrazine
    "c1ncncn1",  # 1,3,5-triazine
    "Cc1cc(C)cc(C)c1",  # mesitylene
    "C12C3C4C1C5C2C3C45",  # cubane
    "OCC(CO)(CO)CO",  # pentaerythritol
    "C1CCC2(C1)CCCC2",  # spiro[4.4]nonane
    "O=C1C=CC(=O)C=C1",  # p-benzoquinone
    "C1COCCO1",  # 1,4-dioxane
    "C1CNCCN1",  # piperazine
    "c1cc[nH]c1",  # pyrrole
    "c1ccc(Cc2ccccc2)cc1",  # diphenylmethane
]
OVERFIT_STEPS = 400
FSQ_LEVELS = [8, 8, 8, 5, 5]


def tiny_config(domain: MoleculeDomain, bottleneck: str = "gaussian", max_nodes: int = 24, **kwargs) -> TokenizerConfig:
    settings = dict(
        node_vocab_sizes=domain.vocab.node_sizes,
        edge_vocab_size=domain.vocab.edge_size,
        max_nodes=max_nodes,
        bottleneck=bottleneck,
        latent_dim=8,
        fsq_levels=FSQ_LEVELS,
        d_model=32,
        n_heads=4,
        encoder_layers=1,
        decoder_layers=1,
        edge_hidden=32,
    )
    settings.update(kwargs)
    return TokenizerConfig(**settings)


def overfit(domain: MoleculeDomain, smiles: list[str], bottleneck: str, steps: int = OVERFIT_STEPS, seed: int = 0):
    """Train a tiny tokenizer on ``smiles`` (one full batch per step) with the TokenizerModule's loss and
    optimiser; return the network in eval mode."""
    torch.manual_seed(seed)
    module = TokenizerModule(
        tiny_config(domain, bottleneck).to_dict(), lr=3e-3, weight_decay=0.0, warmup_steps=20, total_steps=steps
    )
    optimisation = module.configure_optimizers()
    optimizer, scheduler = optimisation["optimizer"], optimisation["lr_scheduler"]["scheduler"]
    batch = batch_from_graphs([domain.to_graph(s) for s in smiles])
    module.train()
    for _ in range(steps):
        posterior, out = module.model(batch, sample=True)
        loss = module.losses(batch, posterior, out)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    return module.model.eval()


@pytest.fixture(scope="module")
def sym_domain() -> MoleculeDomain:
    return MoleculeDomain.fit(SYMMETRIC)


@pytest.fixture(scope="module")
def sym_batch(sym_domain):
    return batch_from_graphs([sym_domain.to_graph(s) for s in SYMMETRIC])


@pytest.fixture(scope="module")
def overfit_gaussian(sym_domain) -> GraphTokenizer:
    return overfit(sym_domain, SYMMETRIC, "gaussian")


@pytest.fixture(scope="module")
def overfit_fsq(sym_domain) -> GraphTokenizer:
    return overfit(sym_domain, SYMMETRIC, "fsq")


@pytest.fixture
def random_model(sym_domain, request) -> GraphTokenizer:
    torch.manual_seed(0)
    return GraphTokenizer(tiny_config(sym_domain, getattr(request, "param", "gaussian"))).eval()


# --- config -------------------------------------------------------------------------------------------


def test_config_validation():
    with pytest.raises(ValueError, match="bottleneck"):
        TokenizerConfig([3], 2, 8, bottleneck="vq")
    with pytest.raises(ValueError, match="n_heads"):
        TokenizerConfig([3], 2, 8, d_model=30, n_heads=4)
    assert TokenizerConfig([3], 2, 8, bottleneck="fsq", fsq_levels=[4, 4, 3], latent_dim=99).latent_dim == 3


def test_config_json_round_trip(tmp_path, sym_domain):
    config = tiny_config(sym_domain, "fsq")
    config.save(tmp_path / "config.json")
    assert TokenizerConfig.load(tmp_path / "config.json") == config


# --- (a) shapes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("random_model", "latent_dim"), [("gaussian", 8), ("fsq", len(FSQ_LEVELS))], indirect=["random_model"]
)
def test_encode_shape_and_zero_padding(random_model, sym_batch, latent_dim):
    z = random_model.encode(sym_batch)
    b, n = sym_batch.mask.shape
    assert z.shape == (b, n, latent_dim)
    assert torch.isfinite(z).all()
    assert (z[~sym_batch.mask] == 0).all()
    assert (z[sym_batch.mask].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("random_model", ["fsq"], indirect=True)
def test_fsq_codes_and_indices(random_model, sym_batch):
    posterior = random_model.posterior(sym_batch)
    size = random_model.bottleneck.codebook_size
    assert size == math.prod(FSQ_LEVELS)
    indices = posterior.indices[sym_batch.mask]
    assert indices.min() >= 0 and indices.max() < size
    assert posterior.mean.abs().max() <= 1.0
    # The codes are a function of the indices.
    assert torch.allclose(random_model.bottleneck.codes_from_indices(posterior.indices), posterior.mean, atol=1e-6)


def test_padding_does_not_change_a_graphs_tokens(random_model, sym_domain):
    small, large = sym_domain.to_graph("CC(C)(C)C"), sym_domain.to_graph("c1ccc2cc3ccccc3cc2c1")
    alone = random_model.encode(batch_from_graphs([small]))
    padded = random_model.encode(batch_from_graphs([small, large]))
    assert torch.allclose(alone[0], padded[0, : small.num_nodes], atol=1e-5)


# --- inference (eval, no autograd) takes the same path as training ------------------------------------


def test_encode_in_inference_mode_matches_slow_path(random_model, sym_batch):
    assert torch.backends.mha.get_fastpath_enabled()
    z = random_model.encode(sym_batch)  # eval + no_grad: the fused path
    reference = random_model.posterior(sym_batch).mean * sym_batch.mask.unsqueeze(-1)  # autograd on: ordinary path
    assert torch.isfinite(z).all()
    assert torch.allclose(z, reference.detach(), atol=1e-5)


def test_pipeline_reconstructs_with_default_torch_settings(sym_domain, overfit_gaussian):
    assert torch.backends.mha.get_fastpath_enabled()
    results = list(MolgenPipeline(sym_domain, overfit_gaussian).reconstruct(SYMMETRIC))
    assert [r.reconstructed for r in results] == [canonicalize(s) for s in SYMMETRIC]


# --- (b) decoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("random_model", ["gaussian", "fsq"], indirect=True)
def test_decode_is_symmetric_and_respects_padding(random_model, sym_batch):
    z = random_model.encode(sym_batch)
    x, adj = random_model.decode(z, sym_batch.mask)
    mask = sym_batch.mask
    assert x.shape == sym_batch.x.shape and adj.shape == sym_batch.adj.shape
    assert torch.equal(adj, adj.transpose(1, 2))
    assert (torch.diagonal(adj, dim1=1, dim2=2) == 0).all()
    pad_pairs = ~(mask[:, :, None] & mask[:, None, :])
    assert (adj[pad_pairs] == 0).all()
    assert (x[~mask] == 0).all()
    for f, size in enumerate(random_model.config.node_vocab_sizes):
        assert x[..., f].max() < size
    assert adj.max() < random_model.config.edge_vocab_size


def test_decoder_scores_each_pair_of_real_nodes_once(random_model, sym_batch):
    out = random_model.decode_logits(torch.randn(*sym_batch.mask.shape, 8), sym_batch.mask)
    sizes = sym_batch.mask.sum(1).tolist()
    assert out.pairs.shape == (sum(n * (n - 1) // 2 for n in sizes), 3)
    b, i, j = out.pairs.unbind(-1)
    assert (i < j).all()
    assert sym_batch.mask[b, i].all() and sym_batch.mask[b, j].all()
    assert out.edge_logits.shape == (len(out.pairs), random_model.config.edge_vocab_size)
    assert [t.shape[-1] for t in out.node_logits] == random_model.config.node_vocab_sizes
    assert torch.equal(node_pairs(sym_batch.mask), out.pairs)


# --- (c) symmetric molecules are reconstructed exactly after overfitting ----------------------------------


@pytest.mark.parametrize("model_fixture", ["overfit_gaussian", "overfit_fsq"])
def test_overfit_tokenizer_reconstructs_symmetric_molecules(request, model_fixture, sym_domain, sym_batch):
    model = request.getfixturevalue(model_fixture)
    pipe = MolgenPipeline(sym_domain, model)
    results = list(pipe.reconstruct(SYMMETRIC, batch_size=7))  # several chunks of different padded sizes
    assert [r.input for r in results] == SYMMETRIC
    wrong = [(r.input, r.reconstructed, r.error) for r in results if not r.exact]
    assert not wrong, f"{len(wrong)}/{len(SYMMETRIC)} not reconstructed after {OVERFIT_STEPS} steps: {wrong}"
    assert all(r.canonical == canonicalize(r.input) for r in results)
    # The training metric agrees with the pipeline.
    x_hat, adj_hat = model.decode(model.encode(sym_batch), sym_batch.mask)
    metrics = reconstruction_metrics(sym_batch, x_hat, adj_hat)
    assert metrics["graphs_exact"] == metrics["graphs"] == len(SYMMETRIC)
    assert metrics["nodes_correct"] == metrics["nodes"] and metrics["pairs_correct"] == metrics["pairs"]


def test_pipeline_encode_then_decode(sym_domain, overfit_fsq):
    pipe = MolgenPipeline(sym_domain, overfit_fsq)
    latents = pipe.encode(SYMMETRIC, batch_size=5)
    assert len(latents) == len(SYMMETRIC)
    for i, s in enumerate(SYMMETRIC):
        assert latents[i].shape == (sym_domain.to_graph(s).num_nodes, len(FSQ_LEVELS))
    decoded = pipe.decode(latents, batch_size=6)
    assert [d.state for d in decoded] == ["valid"] * len(SYMMETRIC)
    assert [d.smiles for d in decoded] == [canonicalize(s) for s in SYMMETRIC]


def test_pipeline_reconstruct_reports_bad_inputs_in_place(sym_domain, overfit_gaussian):
    inputs = ["xyz", "c1ccccc1", "C[Se]C", "CC(C)(C)C", "C1CC"]
    results = list(MolgenPipeline(sym_domain, overfit_gaussian).reconstruct(inputs))
    assert [r.input for r in results] == inputs
    assert [r.exact for r in results] == [False, True, False, True, False]
    assert "xyz" in results[0].error and results[0].canonical is None and results[0].reconstructed is None
    assert "(Se)" in results[2].error
    assert "unclosed ring" in results[4].error


def test_pipeline_encode_raises_naming_the_smiles(sym_domain, random_model):
    pipe = MolgenPipeline(sym_domain, random_model)
    with pytest.raises(InvalidMoleculeError, match="xyz"):
        pipe.encode(["CC(C)(C)C", "xyz"])
    with pytest.raises(ValueError, match="nothing to encode"):
        pipe.encode([])


def test_pipeline_decode_reports_invalid_graphs_instead_of_raising(sym_domain, random_model):
    from molgen.pipeline import Latents

    torch.manual_seed(1)
    mask = torch.ones(16, 10, dtype=torch.bool)
    mask[8:, 6:] = False
    decoded = MolgenPipeline(sym_domain, random_model).decode(Latents(torch.randn(16, 10, 8) * 3, mask))
    assert len(decoded) == 16
    # An untrained decoder bonds far too much, so this exercises the invalid branch.
    assert any(d.state == "invalid" for d in decoded)
    for d in decoded:
        if d.state == "valid":
            assert d.smiles is not None and d.error is None
        else:
            assert d.state == "invalid" and d.smiles is None
            assert "not a valid molecule" in d.error or "falls apart into" in d.error


# --- (d) checkpoints: safetensors + JSON, no pickle -------------------------------------------------------


def test_save_load_tokenizer_round_trip(tmp_path, overfit_fsq, sym_batch):
    save_tokenizer(overfit_fsq, tmp_path / "tok", training={"steps": OVERFIT_STEPS})
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["config.json", "model.safetensors", "training.json"]
    assert {p.suffix for p in (tmp_path / "tok").iterdir()} <= {".json", ".safetensors"}
    assert (tmp_path / "tok" / "model.safetensors").read_bytes()[:1] != b"\x80"  # not a pickle stream
    with safe_open(str(tmp_path / "tok" / "model.safetensors"), framework="pt") as f:
        assert set(f.keys()) == set(overfit_fsq.state_dict())
    loaded = load_tokenizer(tmp_path / "tok")
    assert not loaded.training
    assert loaded.config == overfit_fsq.config
    for key, value in overfit_fsq.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    z = overfit_fsq.encode(sym_batch)
    assert torch.equal(loaded.encode(sym_batch), z)
    for a, b in zip(loaded.decode(z, sym_batch.mask), overfit_fsq.decode(z, sym_batch.mask), strict=True):
        assert torch.equal(a, b)
    assert json.loads((tmp_path / "tok" / "training.json").read_text()) == {"steps": OVERFIT_STEPS}


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_load_tokenizer_missing_file(tmp_path, random_model, missing):
    save_tokenizer(random_model, tmp_path / "tok")
    (tmp_path / "tok" / missing).unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_tokenizer(tmp_path / "tok")
    assert str(tmp_path / "tok") in str(info.value)
    assert missing in str(info.value)


def test_load_tokenizer_from_nonexistent_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_tokenizer(tmp_path / "nowhere")


def test_save_load_domain(tmp_path, sym_domain):
    save_domain(sym_domain, tmp_path / "domain.json")
    loaded = load_domain(tmp_path / "domain.json")
    assert isinstance(loaded, MoleculeDomain) and loaded.vocab == sym_domain.vocab
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_domain(tmp_path / "missing.json")
    (tmp_path / "protein.json").write_text(json.dumps({"name": "protein", "vocab": {}}))
    with pytest.raises(ValueError, match="protein"):
        load_domain(tmp_path / "protein.json")


def test_pipeline_from_pretrained(tmp_path, sym_domain, overfit_gaussian):
    (tmp_path / "model").mkdir()
    save_domain(sym_domain, tmp_path / "model" / "domain.json")
    save_tokenizer(overfit_gaussian, tmp_path / "model" / "tokenizer")
    pipe = MolgenPipeline.from_pretrained(tmp_path / "model", device="cpu")
    assert all(r.exact for r in pipe.reconstruct(SYMMETRIC))
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        MolgenPipeline.from_pretrained(tmp_path / "absent")


# --- (e) latent health -------------------------------------------------------------------------------------


def test_latent_health_gaussian_counts_active_units(random_model):
    rng = np.random.default_rng(0)
    d = random_model.config.latent_dim
    mean = np.zeros((200, d))
    mean[:, 0] = rng.normal(0, 1.0, 200)  # variance ~1: active
    mean[:, 1] = rng.normal(0, 0.5, 200)  # variance ~0.25: active
    mean[:, 2] = rng.normal(0, 0.01, 200)  # variance ~1e-4: inactive
    kl = np.tile(np.arange(d, dtype=float), (200, 1))  # KL of dim k is k nats on every node
    health = latent_health(random_model, torch.tensor(np.hstack([mean, kl]), dtype=torch.float32))
    assert health["active_units"] == 2
    assert health["kl_per_node"] == pytest.approx(sum(range(d)))
    assert health["kl_per_dim"] == pytest.approx(list(range(d)))
    assert len(health["mean_variance_per_dim"]) == d


@pytest.mark.parametrize("random_model", ["fsq"], indirect=True)
def test_latent_health_fsq_utilisation_and_perplexity(random_model):
    size = math.prod(FSQ_LEVELS)
    health = latent_health(random_model, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert health["codebook_size"] == size
    assert health["codebook_utilization"] == pytest.approx(4 / size)
    assert health["codebook_perplexity"] == pytest.approx(4.0)  # four codes, equally often
    assert health["bits_per_node"] == pytest.approx(math.log2(size))


def test_latent_health_of_trained_models(overfit_gaussian, overfit_fsq, sym_batch):
    mask = sym_batch.mask
    posterior = overfit_gaussian.posterior(sym_batch)
    health = latent_health(overfit_gaussian, torch.cat([posterior.mean[mask], posterior.kl[mask]], -1).detach())
    assert 1 <= health["active_units"] <= overfit_gaussian.config.latent_dim
    assert math.isfinite(health["kl_per_node"]) and health["kl_per_node"] >= 0
    posterior = overfit_fsq.posterior(sym_batch)
    health = latent_health(overfit_fsq, posterior.indices[mask])
    assert 0 < health["codebook_utilization"] <= 1
    assert health["codebook_perplexity"] >= 1
    # Decoding is a function of (codes, size): distinct molecules of the same size need distinct code sequences.
    codes: dict[tuple, str] = {}
    for b, s in enumerate(SYMMETRIC):
        key = tuple(posterior.indices[b][mask[b]].tolist())
        assert key not in codes, (s, codes.get(key))
        codes[key] = s


# --- (f) size limit ------------------------------------------------------------------------------------------


def test_max_nodes_exceeded_is_a_clear_error(sym_domain):
    model = GraphTokenizer(tiny_config(sym_domain, max_nodes=4)).eval()
    batch = batch_from_graphs([sym_domain.to_graph("c1ccccc1")])
    with pytest.raises(ValueError, match=r"6 nodes.*max_nodes=4"):
        model.encode(batch)
    with pytest.raises(ValueError, match="max_nodes=4"):
        model.decode(torch.zeros(1, 6, 8), batch.mask)
    pipe = MolgenPipeline(sym_domain, model)
    with pytest.raises(DomainError, match=r"'c1ccccc1'.*max_nodes=4"):
        pipe.encode(["c1ccccc1"])
    (result,) = pipe.reconstruct(["c1ccccc1"])
    assert result.canonical is None and not result.exact and "max_nodes=4" in result.error


# --- (g) train_tokenizer: Lightning run directory, export, resume ------------------------------------------


def _settings(**kwargs) -> TrainSettings:
    base = dict(
        batch_size=16, lr=3e-3, warmup_steps=2, max_steps=3, val_every=2, val_size=8,
        accelerator="cpu", devices=1, progress=False, threads=1, **STEP_COUNTED,
    )
    base.update(kwargs)
    return TrainSettings(**base)


@pytest.fixture(scope="module")
def moses_dataset(moses_sample):
    rows = [Row(f"line {i + 1}", s) for i, s in enumerate(moses_sample("test", 64, 1))]
    return featurize_molecules(rows, workers=1).dataset


@pytest.fixture(scope="module")
def tokenizer_run(tmp_path_factory, moses_dataset):
    """A 3-step gaussian training run on 64 MOSES molecules."""
    run_dir = tmp_path_factory.mktemp("run")
    domain = MoleculeDomain(moses_dataset.vocab)
    config = tiny_config(domain, max_nodes=int(moses_dataset.num_nodes.max()))
    module = train_tokenizer(moses_dataset, run_dir, config, _settings(), domain_config=domain.to_config())
    return run_dir, module, config


def _count_training_steps(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = TokenizerModule.training_step

    @functools.wraps(original)
    def counted(self, batch, batch_idx):
        calls.append(batch_idx)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(TokenizerModule, "training_step", counted)
    return calls


def test_train_tokenizer_writes_run_and_model_dirs(tokenizer_run, moses_dataset):
    run_dir, module, config = tokenizer_run
    assert module.global_step == 3
    model_dir = run_dir / "model"
    assert (model_dir / "domain.json").is_file()
    files = sorted(p.name for p in (model_dir / "tokenizer").iterdir())
    assert files == ["config.json", "model.safetensors", "training.json"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    training = json.loads((model_dir / "tokenizer" / "training.json").read_text())
    assert training["global_step"] == 3
    assert training["train_size"] + training["val_size"] == len(moses_dataset)
    assert TokenizerConfig.load(model_dir / "tokenizer" / "config.json") == config
    assert load_domain(model_dir / "domain.json").vocab == moses_dataset.vocab
    # The exported weights are the trained module's.
    exported = load_tokenizer(model_dir / "tokenizer")
    for key, value in module.model.state_dict().items():
        assert torch.equal(exported.state_dict()[key], value), key
    # A model directory is all the pipeline needs.
    smiles = moses_dataset.items[:5]
    results = list(MolgenPipeline.from_pretrained(model_dir, device="cpu").reconstruct(smiles))
    assert [r.canonical for r in results] == smiles


def test_train_tokenizer_resumes(tokenizer_run, moses_dataset, tmp_path, monkeypatch):
    run_dir, _, config = tokenizer_run
    shutil.copytree(run_dir, tmp_path / "run")
    calls = _count_training_steps(monkeypatch)
    module = train_tokenizer(moses_dataset, tmp_path / "run", config, _settings(max_steps=6))
    assert module.global_step == 6
    assert len(calls) == 3  # continued from step 3, did not start again from 0
    training = json.loads((tmp_path / "run" / "model" / "tokenizer" / "training.json").read_text())
    assert training["global_step"] == 6


def test_train_tokenizer_no_resume_starts_afresh(tokenizer_run, moses_dataset, tmp_path, monkeypatch):
    run_dir, _, config = tokenizer_run
    shutil.copytree(run_dir, tmp_path / "run")
    calls = _count_training_steps(monkeypatch)
    module = train_tokenizer(moses_dataset, tmp_path / "run", config, _settings(max_steps=4), resume=False)
    assert module.global_step == 4
    assert len(calls) == 4


def test_train_tokenizer_validation_metrics_are_finite(tokenizer_run):
    run_dir, _, _ = tokenizer_run
    val = json.loads((run_dir / "model" / "tokenizer" / "training.json").read_text())["val"]
    assert "val/loss" in val and "val/exact" in val
    assert all(math.isfinite(v) for v in val.values()), val


def test_train_tokenizer_fsq(moses_dataset, tmp_path):
    domain = MoleculeDomain(moses_dataset.vocab)
    config = tiny_config(domain, "fsq", max_nodes=int(moses_dataset.num_nodes.max()))
    train_tokenizer(moses_dataset, tmp_path / "run", config, _settings(max_steps=2, val_every=1))
    assert json.loads((tmp_path / "run" / "model" / "tokenizer" / "training.json").read_text())["global_step"] == 2


def test_train_tokenizer_fsq_and_val_metrics_without_fast_path(moses_dataset, tmp_path):
    # The same run as above with PyTorch's fused path off: it trains, and validation reports codebook health.
    domain = MoleculeDomain(moses_dataset.vocab)
    config = tiny_config(domain, "fsq", max_nodes=int(moses_dataset.num_nodes.max()))
    module = train_tokenizer(moses_dataset, tmp_path / "run", config, _settings(max_steps=2, val_every=1))
    assert module.global_step == 2
    val = json.loads((tmp_path / "run" / "model" / "tokenizer" / "training.json").read_text())["val"]
    assert 0 < val["val/codebook_utilization"] <= 1
    assert all(math.isfinite(v) for v in val.values()), val


# --- decoder fine-tuning for robustness to prior samples ------------------------------------------------


def test_deepened_decoder_starts_by_decoding_exactly_as_before(random_model, sym_batch):
    deeper = GraphTokenizer(TokenizerConfig(**{**random_model.config.to_dict(), "decoder_layers": random_model.config.decoder_layers + 2}))
    load_deepening(deeper, random_model)
    deeper.eval()
    z = random_model.encode(sym_batch)
    assert torch.equal(deeper.encode(sym_batch), z)
    before, after = random_model.decode_logits(z, sym_batch.mask), deeper.decode_logits(z, sym_batch.mask)
    assert torch.allclose(before.edge_logits, after.edge_logits, atol=1e-5)
    for a, b in zip(before.node_logits, after.node_logits, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_deepening_refuses_any_other_change(random_model):
    wider = GraphTokenizer(TokenizerConfig(**{**random_model.config.to_dict(), "d_model": 64}))
    with pytest.raises(ValueError, match="only more decoder layers, more positions, more edge labels"):
        load_deepening(wider, random_model)
    shallower = GraphTokenizer(TokenizerConfig(**{**random_model.config.to_dict(), "decoder_layers": 0}))
    with pytest.raises(ValueError, match="only more decoder layers"):
        load_deepening(shallower, random_model)


def test_new_edge_label_starts_as_the_mean_bond_and_leaves_the_rest_unchanged(random_model, sym_batch):
    # Aromatic bonds added to a Kekulé tokenizer: graphs without the new label encode exactly as before, the
    # old labels' logits are unchanged, and the new label's logit is the mean of the bond labels' logits.
    config = random_model.config
    grown = GraphTokenizer(TokenizerConfig(**{**config.to_dict(), "edge_vocab_size": config.edge_vocab_size + 1}))
    load_deepening(grown, random_model)
    grown.eval()
    z = random_model.encode(sym_batch)
    assert torch.allclose(grown.encode(sym_batch), z, atol=1e-6)
    before, after = random_model.decode_logits(z, sym_batch.mask), grown.decode_logits(z, sym_batch.mask)
    assert torch.allclose(after.edge_logits[..., :-1], before.edge_logits, atol=1e-5)
    assert torch.allclose(after.edge_logits[..., -1], before.edge_logits[..., 1:].mean(-1), atol=1e-5)
    with pytest.raises(ValueError, match="more edge labels"):
        load_deepening(random_model, grown)  # labels cannot be removed


def test_wider_chemistry_starts_where_the_model_stands(random_model, sym_batch):
    # A flat model grown for drug chemistry: one more value in its first field (placed first, so every old label
    # moves), a new last field (chirality), more positions, E/Z bond labels, the encoder's embedding of each atom's bonds. The old labels keep their weights
    # wherever they moved, so the same graphs (relabelled) encode and decode as before.
    config = random_model.config
    sizes = config.node_vocab_sizes
    node_rows = [[None, *range(sizes[0])], *[list(range(k)) for k in sizes[1:]]]
    edge_rows = [*range(config.edge_vocab_size), None, None]
    grown = GraphTokenizer(TokenizerConfig(**{
        **config.to_dict(), "node_vocab_sizes": [sizes[0] + 1, *sizes[1:], 3], "edge_vocab_size": config.edge_vocab_size + 2,
        "max_nodes": config.max_nodes + 10, "incident_edges": True,
    }))
    load_deepening(grown, random_model, node_rows=node_rows, edge_rows=edge_rows)
    grown.eval()
    x = torch.cat([sym_batch.x[..., :1] + 1, sym_batch.x[..., 1:], torch.zeros_like(sym_batch.x[..., :1])], -1)
    relabelled = dataclasses.replace(sym_batch, x=x)
    z = random_model.encode(sym_batch)
    assert torch.allclose(grown.encode(relabelled), z, atol=1e-5)
    before, after = random_model.decode_logits(z, sym_batch.mask), grown.decode_logits(z, sym_batch.mask)
    assert torch.allclose(after.node_logits[0][..., 1:], before.node_logits[0], atol=1e-5)
    assert torch.allclose(after.edge_logits[..., : config.edge_vocab_size], before.edge_logits, atol=1e-5)
    assert after.node_logits[-1].shape[-1] == 3


def test_noisy_latents_only_touch_real_tokens_at_the_asked_scale(sym_batch):
    z = torch.zeros(*sym_batch.mask.shape, 8)
    noisy = noisy_latents(z, sym_batch.mask, 0.5, torch.Generator().manual_seed(0), fixed=True)
    assert torch.all(noisy[~sym_batch.mask] == 0)
    assert abs(float(noisy[sym_batch.mask].std()) - 0.5) < 0.05
    ranged = noisy_latents(z, sym_batch.mask, 0.5, torch.Generator().manual_seed(0))
    per_graph = torch.stack([ranged[b][sym_batch.mask[b]].std() for b in range(len(sym_batch))])
    assert float(per_graph.max()) < 0.75 and float(per_graph.min()) < 0.4  # one scale per graph, up to 0.5


def test_frozen_encoder_fine_tuning_trains_only_the_decoder(tokenizer_run, moses_dataset, tmp_path):
    run_dir, module, config = tokenizer_run
    source = module.model
    deeper = TokenizerConfig(**{**config.to_dict(), "decoder_layers": config.decoder_layers + 1})
    tuned = train_tokenizer(
        moses_dataset, tmp_path / "tune", deeper, _settings(max_steps=3, latent_noise=0.5, freeze_encoder=True),
        init_from=source,
    ).model
    for name, value in source.state_dict().items():
        if name.startswith(("encoder.", "bottleneck.")):
            assert torch.equal(tuned.state_dict()[name].cpu(), value.cpu()), name
    assert not torch.equal(tuned.decoder.latent_in.weight, source.decoder.latent_in.weight)
    # The latent tokens, and so a latent cache and a prior trained on them, are unchanged.
    assert tokenizer_fingerprint(tuned) == tokenizer_fingerprint(source)
    val = json.loads((tmp_path / "tune" / "model" / "tokenizer" / "training.json").read_text())["val"]
    assert 0 <= val["val/exact_at_noise"] <= 1
    assert "val/kl_per_node" in val
