"""The autoregressive prior: causal context, its config, a tiny training, and sampling through the pipeline
(conditions, edits, reproducibility, the options it refuses)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from molgen.checkpoint import load_prior, save_prior
from molgen.pipeline import MolgenPipeline
from molgen.prior.autoregressive import AutoregressivePrior, build_prior
from molgen.prior.config import PriorConfig
from molgen.prior.model import LatentPrior
from molgen.prior.training import AutoregressiveModule, prior_config_from_data, train_prior

from .test_prior import OILY, POLAR, _latents, _model_dir, _settings, shipped  # noqa: F401  (shipped is a fixture)

SMALL = "CC(=O)Nc1ccccc1"  # 10 heavy atoms: a second size


def _config(**kw) -> PriorConfig:
    base = dict(latent_dim=4, max_nodes=12, d_model=32, n_heads=4, layers=2, relative_positions=5, architecture="autoregressive", head_width=16, head_blocks=2)
    return PriorConfig(**(base | kw))


def _randomised(prior: torch.nn.Module) -> torch.nn.Module:
    """Zero-initialised gates and outputs make a fresh network ignore its inputs: give every weight a value."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0, 0.3)
    return prior.eval()


def test_context_at_each_position_reads_only_the_tokens_before_it():
    prior = _randomised(AutoregressivePrior(_config()))
    z = torch.randn(3, 9, 4)
    sizes = torch.tensor([9, 9, 7])
    base = prior.context(z, sizes)
    for k in (0, 4, 8):
        changed = z.clone()
        changed[:, k] += 1.0
        out = prior.context(changed, sizes)
        torch.testing.assert_close(out[:, : k + 1], base[:, : k + 1])  # positions 0..k have not read token k
        if k < 8:
            assert (out[:, k + 1 :] - base[:, k + 1 :]).abs().amax() > 1e-3  # the ones after it have
    # the graph's size is read everywhere, from the first position on
    assert (prior.context(z, torch.tensor([8, 9, 7]))[0, 0] - base[0, 0]).abs().amax() > 1e-3


def test_incremental_context_with_a_cache_equals_the_full_causal_pass():
    config = _config(property_names=["a", "b"], property_mean=[0.0, 0.0], property_std=[1.0, 1.0])
    prior = _randomised(AutoregressivePrior(config))
    z, sizes = torch.randn(3, 9, 4), torch.tensor([9, 8, 9])
    values, given = torch.randn(3, 2), torch.tensor([[True, False], [True, True], [False, False]])
    cache = prior.start_cache()
    steps = [prior.context_step(None if j == 0 else z[:, j - 1], cache, sizes, values, given) for j in range(9)]
    torch.testing.assert_close(torch.stack(steps, 1), prior.context(z, sizes, values, given), atol=1e-5, rtol=1e-4)


def test_token_head_broadcasts_several_draws_against_one_context():
    prior = _randomised(AutoregressivePrior(_config()))
    context = torch.randn(5, 32)
    modulations = prior.head.modulations(context)
    x, t = torch.randn(3, 5, 4), torch.rand(3, 5)
    together = prior.head(x, t, modulations)
    for k in range(3):
        torch.testing.assert_close(together[k], prior.head(x[k], t[k], modulations))


def test_config_names_what_an_autoregressive_prior_cannot_be():
    with pytest.raises(ValueError, match="objective must be 'flow'"):
        _config(objective="diffusion", prediction="epsilon")
    with pytest.raises(ValueError, match="self_condition"):
        _config(self_condition=True)
    with pytest.raises(ValueError, match="architecture must be one of"):
        _config(architecture="recurrent")
    with pytest.raises(ValueError, match="head_width"):
        _config(head_width=0)
    assert isinstance(build_prior(_config()), AutoregressivePrior)
    assert isinstance(build_prior(_config(architecture="set")), LatentPrior)


def test_checkpoint_round_trip_rebuilds_the_autoregressive_network(tmp_path):
    prior = _randomised(AutoregressivePrior(_config()))
    save_prior(prior, tmp_path / "prior")
    loaded = load_prior(tmp_path / "prior")
    assert isinstance(loaded, AutoregressivePrior) and loaded.config == prior.config
    z = torch.randn(2, 6, 4)
    torch.testing.assert_close(loaded.context(z, torch.tensor([6, 5])), prior.context(z, torch.tensor([6, 5])))


def test_training_loss_regresses_the_velocity_of_every_real_token():
    """The loss is the mean squared error of the head's velocity at noisy real tokens only: a network whose
    head outputs zero scores E|noise - token|^2 = 1 + E|token|^2 per dimension, padding excluded."""
    config = _config()
    module = AutoregressiveModule(config.to_dict(), draws_per_token=64)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    z = torch.full((2, 6, 4), 2.0) * mask.unsqueeze(-1)
    z[1, 3:] = 100.0  # padding values must not count
    batch = (z, mask, torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool))
    loss = module.loss(module.model, batch, drop=False, generator=torch.Generator().manual_seed(0))
    assert abs(loss.item() - 5.0) < 0.3  # 1 (noise) + 4 (token), the head's output layer starting at zero
    with pytest.raises(ValueError, match="draws_per_token"):
        AutoregressiveModule(config.to_dict(), draws_per_token=0)


@pytest.fixture(scope="module")
def ar_model(shipped, tmp_path_factory):  # noqa: F811
    """A tiny autoregressive prior trained on three molecules (two sizes), as a complete model directory."""
    domain, tokenizer = shipped
    latents = _latents(domain, tokenizer, [OILY, POLAR, SMALL] * 48)
    config = prior_config_from_data(
        latents, tokenizer.config.max_nodes, d_model=32, n_heads=4, layers=2, relative_positions=8, default_steps=10,
        architecture="autoregressive", head_width=64, head_blocks=2,
    )  # fmt: skip
    tmp = tmp_path_factory.mktemp("ar")
    module = train_prior(latents, tmp / "run", config, _settings(max_steps=500, val_size=8, drop_each=0.0, draws_per_token=4))
    return _model_dir(tmp, domain, tokenizer, tmp / "run"), module


def test_autoregressive_prior_samples_its_training_molecules(ar_model):
    pipe = MolgenPipeline.from_pretrained(ar_model[0], device="cpu")
    assert isinstance(pipe.prior, AutoregressivePrior)
    samples = pipe.sample(36, seed=0, batch_size=18, properties=False)
    counts = Counter(m.smiles for m in samples)
    known = {pipe.domain.canonical(s) for s in (OILY, POLAR, SMALL)}
    assert sum(counts[s] for s in known) >= 30, counts
    assert all(counts[s] >= 3 for s in known), counts  # every training molecule, not one mode
    # sizes given: only the 10-atom molecule fits
    small = pipe.sample(12, seed=1, num_nodes=10, properties=False)
    assert Counter(m.smiles for m in small)[pipe.domain.canonical(SMALL)] >= 10


def test_autoregressive_sampling_is_reproducible_and_follows_the_temperature(ar_model):
    pipe = MolgenPipeline.from_pretrained(ar_model[0], device="cpu")
    first = pipe.sample_latents(10, seed=3, batch_size=5)
    torch.testing.assert_close(first.z, pipe.sample_latents(10, seed=3, batch_size=5).z)
    assert not torch.allclose(first.z, pipe.sample_latents(10, seed=4, batch_size=5).z)
    assert not torch.allclose(first.z, pipe.sample_latents(10, seed=3, batch_size=5, temperature=0.5).z)
    euler = pipe.sample(12, seed=2, sampler="euler", steps=12, properties=False)
    known = {pipe.domain.canonical(s) for s in (OILY, POLAR, SMALL)}
    assert sum(m.smiles in known for m in euler) >= 10


def test_autoregressive_conditioning_steers_toward_the_requested_molecule(ar_model):
    pipe = MolgenPipeline.from_pretrained(ar_model[0], device="cpu")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    for target, other in ((OILY, POLAR), (POLAR, OILY)):
        samples = pipe.sample(20, seed=1, num_nodes=15, conditions={"logP": logp[target]}, guidance_scale=2.0)
        counts = Counter(m.smiles for m in samples)
        assert counts[pipe.domain.canonical(target)] >= 10, (target, counts)
        assert counts[pipe.domain.canonical(other)] <= 3, (target, counts)
        nearer = [abs(m.properties["logP"] - logp[target]) < abs(m.properties["logP"] - logp[other]) for m in samples if m.smiles]
        assert sum(nearer) >= 18, (target, counts)


def test_autoregressive_edits_keep_tokens_exactly_and_stay_near_the_start(ar_model):
    pipe = MolgenPipeline.from_pretrained(ar_model[0], device="cpu")
    start = pipe.encode([OILY])
    keep = torch.zeros(1, start.z.shape[1], dtype=torch.bool)
    keep[0, :8] = True
    out = pipe.sample_latents(6, seed=0, start=start, strength=1.0, keep=keep)
    torch.testing.assert_close(out.z[:, :8], start.z[:, :8].expand(6, -1, -1))
    near = pipe.decode(pipe.sample_latents(8, seed=0, start=start, strength=0.2), decoding="raw")
    assert sum(m.smiles == pipe.domain.canonical(OILY) for m in near) >= 7


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"restarts": 2}, "restarts: not available"),
        ({"step_hook": lambda i, t, x: x}, "step_hook: not available"),
        ({"steps": 0}, "at least one sampling step"),
    ],
)
def test_autoregressive_sampling_refuses_what_it_cannot_do(ar_model, options, message):
    pipe = MolgenPipeline.from_pretrained(ar_model[0], device="cpu")
    with pytest.raises(ValueError, match=message):
        pipe.sample_latents(2, seed=0, **options)
