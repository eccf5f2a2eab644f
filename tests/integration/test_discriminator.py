"""Discriminator guidance: a discriminator of the data's latents against the prior's samples, trained on a tiny
setting where the prior is wrong on purpose (it samples two molecules, the "data" holds one), steers the prior's
samples toward the data."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
import torch

from molgen.checkpoint import load_discriminator, load_prior
from molgen.guidance import DiscriminatorGuidance
from molgen.latents import LatentDataset, tokenizer_fingerprint
from molgen.pipeline import MolgenPipeline
from molgen.prior.config import PriorConfig
from molgen.prior.discriminator import (
    DiscriminatorConfig,
    DiscriminatorTrainSettings,
    LatentDiscriminator,
    generated_dataset,
    real_and_fake,
    train_discriminator,
)

from .test_prior import OILY, POLAR, _latents, _random_prior, shipped, two_molecule_model  # noqa: F401  (fixtures)


def _table(sizes: list[int], dim: int = 3, logvar: bool = True) -> LatentDataset:
    total = sum(sizes)
    rng = np.random.default_rng(len(sizes))
    return LatentDataset(
        mean=rng.normal(size=(total, dim)).astype(np.float32), ptr=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        properties=np.zeros((len(sizes), 2), np.float32), property_names=["a", "b"],
        logvar=np.full((total, dim), -2.0, np.float32) if logvar else None,
    )  # fmt: skip


def test_real_and_fake_labels_as_many_real_graphs_as_generated_ones():
    real, fake = _table([3, 4, 5, 6, 7]), _table([2, 9], logvar=False)
    data = real_and_fake(real, fake, seed=1)
    assert len(data) == 4 and data.property_names == ["real"]
    assert data.properties[:, 0].tolist() == [1, 1, 0, 0]
    assert data.num_nodes[2:].tolist() == [2, 9]
    np.testing.assert_array_equal(data.mean[-11:], fake.mean)  # generated tokens come last, unchanged ...
    assert np.all(data.logvar[-11:] < -20) and np.all(data.logvar[:-11] == -2.0)  # ... and exact; real ones keep their posterior
    with pytest.raises(ValueError, match="need at least as many real"):
        real_and_fake(fake, real)
    with pytest.raises(ValueError, match="no generated latents"):
        real_and_fake(real, _table([]))


def test_generated_dataset_keeps_each_graphs_tokens():
    z, mask = torch.randn(3, 5, 2), torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    table = generated_dataset(z, mask, "abc")
    assert table.num_nodes.tolist() == [2, 5, 1] and table.tokenizer == "abc"
    dense, dense_mask = table.dense([0, 1, 2])
    torch.testing.assert_close(dense * dense_mask.unsqueeze(-1), z * mask.unsqueeze(-1))


def test_a_guidance_step_raises_the_logit_weighted_by_the_noise_level():
    prior = _random_prior()
    torch.manual_seed(0)
    discriminator = LatentDiscriminator(DiscriminatorConfig.for_prior(prior.config, d_model=32)).eval()
    x, mask = torch.randn(8, 6, 4), torch.ones(8, 6, dtype=torch.bool)
    mask[:3, 4:] = False
    x = x * mask.unsqueeze(-1)
    t = torch.linspace(0.1, 0.9, 8)
    guidance = DiscriminatorGuidance(discriminator, scale=0.02)
    moved = guidance(x, t, mask)
    assert torch.all(moved[~mask] == 0)  # padding stays zero
    with torch.no_grad():
        assert torch.all(discriminator(moved, t, mask) > discriminator(x, t, mask))
    # the move is scale * t / (1 - t) times the logit's gradient, the factor capped at 4 (t = 0.99 would give 99)
    same, one = x[:1].expand(3, -1, -1).clone(), mask[:1].expand(3, -1)
    levels = torch.tensor([0.5, 0.75, 0.99])
    with torch.enable_grad():
        inputs = same.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(discriminator(inputs, levels, one).sum(), inputs)
    expected = 0.02 * torch.tensor([1.0, 3.0, 4.0])[:, None, None] * grad * one.unsqueeze(-1)
    torch.testing.assert_close(guidance(same, levels, one) - same, expected, rtol=1e-4, atol=1e-7)


def test_a_discriminator_for_another_prior_is_refused(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    config = DiscriminatorConfig.for_prior(pipe.prior.config, d_model=16, layers=1)
    other = DiscriminatorConfig(**{**config.to_dict(), "latent_std": [2.0] * pipe.prior.config.latent_dim})
    with pytest.raises(ValueError, match="another prior.*latent_std.*molgen train discriminator"):
        MolgenPipeline(pipe.domain, pipe.tokenizer, pipe.prior, discriminator=LatentDiscriminator(other))
    with pytest.raises(ValueError, match="no discriminator.*molgen train discriminator"):
        pipe.sample(2, discriminator_guidance=1.0)
    with pytest.raises(ValueError, match="discriminator_guidance=-1"):
        MolgenPipeline(pipe.domain, pipe.tokenizer, pipe.prior, discriminator=LatentDiscriminator(config)).sample(2, discriminator_guidance=-1)


@pytest.fixture(scope="module")
def oily_model(two_molecule_model, shipped, tmp_path_factory):  # noqa: F811
    """The two-molecule prior (it samples both molecules about equally) with a discriminator trained against a
    "data set" holding only the oily one: the prior is wrong on purpose, and the discriminator sees where."""
    domain, tokenizer = shipped
    source, _ = two_molecule_model
    model_dir = tmp_path_factory.mktemp("oily") / "model"
    shutil.copytree(source, model_dir)
    pipe = MolgenPipeline.from_pretrained(model_dir, device="cpu")
    generated = pipe.sample_latents(128, seed=0, batch_size=64)
    fake = generated_dataset(generated.z, generated.mask, tokenizer_fingerprint(tokenizer))
    real = _latents(domain, tokenizer, [OILY] * 160)
    prior_config = pipe.prior.config
    settings = DiscriminatorTrainSettings(batch_size=32, lr=3e-3, warmup_steps=10, max_steps=300, val_every=1000, val_size=16,
                                          progress=False, accelerator="cpu", devices=1, threads=1)  # fmt: skip
    run = model_dir.parent / "run"
    module = train_discriminator(real_and_fake(real, fake), run, DiscriminatorConfig.for_prior(prior_config, d_model=32, layers=1), prior_config, settings)
    shutil.copytree(run / "model" / "discriminator", model_dir / "discriminator")
    return model_dir, module


def test_discriminator_guidance_steers_the_priors_samples_toward_the_data(oily_model):
    model_dir, module = oily_model
    assert module.trainer.callback_metrics["val/accuracy"] > 0.6  # real vs generated is learnable here (half the generated are oily)
    discriminator = load_discriminator(model_dir / "discriminator")
    assert discriminator.config.default_scale == 0.0
    pipe = MolgenPipeline.from_pretrained(model_dir, device="cpu")
    assert pipe.discriminator is not None
    oily = pipe.domain.canonical(OILY)
    plain = Counter(m.smiles for m in pipe.sample(48, seed=2, properties=False))  # default: off
    guided = Counter(m.smiles for m in pipe.sample(48, seed=2, properties=False, discriminator_guidance=0.5))
    assert plain[oily] <= 36, plain  # the prior alone samples both
    assert guided[oily] >= 42 and guided[oily] >= plain[oily] + 8, (plain, guided)
