"""The set flow-matching prior: latent caches, training pairs, the flow samplers, a tiny training, and sampling
through the pipeline's flow sampler, including edits, property conditioning and valence-aware decoding."""

from __future__ import annotations

import copy
import math
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from torch import Tensor

from molgen import device as device_module
from molgen.checkpoint import load_domain, load_prior, load_tokenizer, save_domain, save_tokenizer
from molgen.dataset import GraphDataset
from molgen.latents import LatentDataset, compute_property_table, encode_dataset, tokenizer_fingerprint
from molgen.pipeline import MolgenPipeline
from molgen.prior.config import PriorConfig
from molgen.prior.flow import LatentPrior
from molgen.prior.predictor import PredictorConfig
from molgen.prior.scheduling import SAMPLERS, TIME_SAMPLINGS, make_scheduler, model_time, training_pair
from molgen.prior.training import PriorTrainSettings, load_growing, prior_config_from_data, repeat_labelled, train_prior
from molgen.records import Latents
from molgen.sampling.config import SamplingConfig
from molgen.sampling.flow import FlowSampler, _begin_index

from ..conftest import REPO, STEP_COUNTED

SHIPPED = REPO / "checkpoints" / "moses"
# Two MOSES-like molecules with the same number of heavy atoms (15) but far apart in logP and TPSA.
OILY = "CCCCCc1ccc(CCC)cc1C"
POLAR = "NC(=O)c1cc(O)c(O)c(C(N)=O)c1O"


@pytest.fixture(scope="module")
def shipped():
    if not (SHIPPED / "tokenizer" / "model.safetensors").exists():
        pytest.skip("shipped tokenizer not present")
    return load_domain(SHIPPED / "domain.json"), load_tokenizer(SHIPPED / "tokenizer")


def _latents(domain, tokenizer, smiles: list[str]) -> LatentDataset:
    graphs = [domain.to_graph(s) for s in smiles]
    dataset = GraphDataset.from_graphs(graphs, [domain.canonical(s) for s in smiles], domain.vocab)
    latents = encode_dataset(tokenizer, dataset, batch_size=64)
    latents.properties = compute_property_table(domain, dataset.items, domain.property_names, workers=1)
    latents.property_names = list(domain.property_names)
    return latents


def _settings(**kw) -> PriorTrainSettings:
    base = dict(batch_size=32, lr=3e-3, warmup_steps=10, max_steps=250, val_every=1000, ema_decay=0.9,
                progress=False, accelerator="cpu", devices=1, threads=1, **STEP_COUNTED)  # fmt: skip
    base.update(kw)
    return PriorTrainSettings(**base)


def _model_dir(tmp_path, domain, tokenizer, run_dir):
    model = tmp_path / "model"
    model.mkdir(parents=True, exist_ok=True)
    save_domain(domain, model / "domain.json")
    save_tokenizer(tokenizer, model / "tokenizer")
    shutil.copytree(run_dir / "model" / "prior", model / "prior")
    return model


# --- configs and training pairs ------------------------------------------------------------------------------


def test_config_names_an_unknown_architecture():
    with pytest.raises(ValueError, match=re.escape("architecture must be one of ('discrete', 'set', 'masked'), got 'flow'")):
        PriorConfig(latent_dim=4, max_nodes=8, architecture="flow")
    assert PriorConfig(latent_dim=4, max_nodes=8).architecture == "set"


def test_make_scheduler_gives_each_flow_sampler_fresh_and_names_the_choices():
    config = PriorConfig(latent_dim=4, max_nodes=8)
    assert type(make_scheduler(config)).__name__ == "FlowMatchEulerDiscreteScheduler"  # the prior's default_sampler
    for name, kind in SAMPLERS.items():
        scheduler = make_scheduler(config, name)
        assert isinstance(scheduler, kind) and scheduler.config.num_train_timesteps == config.num_train_timesteps
        assert scheduler is not make_scheduler(config, name)  # schedulers keep state: a new one per call
    assert make_scheduler(config, "dpm").config.prediction_type == "flow_prediction"
    with pytest.raises(ValueError, match=r"sampler='ddim': choose one of \['dpm', 'euler', 'heun'\]"):
        make_scheduler(config, "ddim")


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpm"])
@pytest.mark.parametrize("steps", [6, 8, 10, 14])
def test_edits_begin_on_a_full_step_of_each_flow_sampler(sampler, steps):
    # An edit noised to ``strength`` starts at the first sigma at or below it; Heun lists each level but the first
    # twice (predictor, corrector), and the edit must start on a predictor entry to keep the pairs in step.
    scheduler = make_scheduler(PriorConfig(latent_dim=4, max_nodes=8), sampler)
    scheduler.set_timesteps(steps)
    assert _begin_index(scheduler, 1.0) == 0  # strength 1: from pure noise
    for strength in (0.3, 0.5, 0.7):
        begin = _begin_index(scheduler, strength)
        sigmas = scheduler.sigmas.tolist()
        # Heun's levels sit at the even positions (predictor steps); its level before is two entries back
        before = sigmas[begin - 2] if sampler == "heun" else sigmas[begin - 1]
        assert sigmas[begin] <= strength + 1e-6 < before
        assert begin % scheduler.order == 0


def _gaussian_flow_endpoints(sampler: str, evaluations: int, mean: float, spread: float) -> tuple[Tensor, Tensor]:
    """Solve the flow ODE of 1-D Gaussian data N(mean, spread^2) from fixed noise with ``sampler`` at about
    ``evaluations`` velocity evaluations, the velocity read at the network time the pipeline gives (``model_time``
    of each timestep); return (end points, exact end points ``mean + spread * noise``)."""
    config = PriorConfig(latent_dim=1, max_nodes=1)
    scheduler = make_scheduler(config, sampler)
    scheduler.set_timesteps(evaluations // 2 + 1 if sampler == "heun" else evaluations)
    noise = torch.linspace(-2.5, 2.5, 11)
    x = noise.clone()
    for timestep in scheduler.timesteps:
        s = float(model_time(timestep, config, 1, torch.device("cpu"))[0])
        # x_s = (1 - s) mean + sd(s) z with sd(s)^2 = (1 - s)^2 spread^2 + s^2: the exact velocity dx/ds
        sd2 = (1 - s) ** 2 * spread**2 + s**2
        velocity = -mean + (s - (1 - s) * spread**2) / sd2 * (x - (1 - s) * mean)
        x = scheduler.step(velocity, timestep, x).prev_sample
    return x, mean + spread * noise


def test_each_flow_sampler_solves_the_flow_ode_and_dpm_is_second_order():
    # With the exact velocity of Gaussian data every sampler lands near the exact end point; at the same number
    # of velocity evaluations DPM-Solver++ 2M (one evaluation per step, reusing the last) is far more accurate
    # than Euler, as a second-order method should be.
    errors = {}
    for sampler in ("euler", "heun", "dpm"):
        end, exact = _gaussian_flow_endpoints(sampler, 40, mean=1.5, spread=0.3)
        assert (end - exact).abs().max() < 0.05, sampler
        errors[sampler] = float((_gaussian_flow_endpoints(sampler, 14, 1.5, 0.3)[0] - exact).abs().max())
    assert errors["dpm"] < 0.25 * errors["euler"], errors


def test_flow_training_pair_interpolates_and_targets_the_velocity():
    x0, noise = torch.randn(6, 5, 3), torch.randn(6, 5, 3)
    x_t, t, target = training_pair(x0, noise, torch.Generator().manual_seed(0))
    s = t[:, None, None]
    assert torch.all((t >= 0) & (t <= 1))
    torch.testing.assert_close(target, noise - x0)
    torch.testing.assert_close(x_t, (1 - s) * x0 + s * noise)
    # One Euler step of the exact velocity from x_t to sigma = 0 recovers x0.
    torch.testing.assert_close(x_t - s * target, x0)
    # the same generator seed draws the same noise levels
    torch.testing.assert_close(training_pair(x0, noise, torch.Generator().manual_seed(0))[1], t)


def test_logit_normal_time_sampling_favours_middle_noise_levels():
    x0, noise = torch.zeros(4000, 1, 3), torch.randn(4000, 1, 3)
    middle = {}
    for sampling in TIME_SAMPLINGS:
        _, t, _ = training_pair(x0, noise, torch.Generator().manual_seed(0), sampling)
        assert torch.all((t >= 0) & (t <= 1))
        middle[sampling] = float(((t > 0.25) & (t < 0.75)).float().mean())
    assert abs(middle["uniform"] - 0.5) < 0.05
    assert middle["logit_normal"] > 0.65  # P(|N(0,1)| < logit(0.75) = 1.10) = 0.73
    with pytest.raises(ValueError, match="time_sampling must be one of"):
        training_pair(x0, noise, None, "cosine")


def test_prior_ignores_padding_tokens():
    config = PriorConfig(latent_dim=4, max_nodes=10, d_model=32, n_heads=4, layers=2, property_names=["a"], property_mean=[0.0], property_std=[1.0])
    prior = LatentPrior(config).eval()
    for p in prior.parameters():  # leave the zero-initialised output layers non-zero, so outputs depend on inputs
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 10, 4)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    t = torch.tensor([0.5])
    out = prior(x, t, mask)
    x2 = x.clone()
    x2[0, 6:] = 100.0  # garbage in the padding
    torch.testing.assert_close(prior(x2, t, mask)[0, :6], out[0, :6])
    assert torch.all(out[0, 6:] == 0)
    # A condition changes the output; an absent condition (mask False) is the same as none.
    given = prior(x, t, mask, torch.tensor([[2.0]]), torch.tensor([[True]]))
    absent = prior(x, t, mask, torch.tensor([[2.0]]), torch.tensor([[False]]))
    assert not torch.allclose(given, out)
    torch.testing.assert_close(absent, out)


def _random_prior(**kw) -> LatentPrior:
    shape = {"latent_dim": 4, "max_nodes": 10, "d_model": 32, "n_heads": 4, "layers": 2, **kw}
    prior = LatentPrior(PriorConfig(**shape)).eval()
    for p in prior.parameters():  # non-zero everywhere, so outputs depend on every part
        torch.nn.init.normal_(p, std=0.2)
    return prior


def test_relative_position_bias_depends_only_on_the_offset_and_is_clipped():
    prior = _random_prior(relative_positions=2)
    torch.nn.init.zeros_(prior.position.weight)  # no absolute positions: only offsets tell tokens apart
    x = torch.randn(1, 6, 4).expand(2, -1, -1).clone()
    x[1] = x[1].roll(1, dims=0)  # the same tokens, cyclically shifted
    t, mask = torch.full((2,), 0.3), torch.ones(2, 6, dtype=torch.bool)
    out = prior(x, t, mask)
    # Offsets are j - i clipped to [-2, 2]: a cyclic shift changes some clipped offsets, so outputs differ...
    assert not torch.allclose(out[1].roll(-1, dims=0), out[0], atol=1e-4)
    # ...while a network that cannot see offsets beyond the bias is indifferent to token order (a set model).
    for block in prior.blocks:
        torch.nn.init.zeros_(block.offset_bias.weight)
    out = prior(x, t, mask)
    torch.testing.assert_close(out[1].roll(-1, dims=0), out[0])
    # A bias on offset +1 alone makes each token's output depend on which token follows it.
    with torch.no_grad():
        for block in prior.blocks:
            block.offset_bias.weight[3] = 5.0
    swapped = x.clone()
    swapped[0, [4, 5]] = swapped[0, [5, 4]]
    assert not torch.allclose(prior(swapped, t, mask)[0, 3], prior(x, t, mask)[0, 3], atol=1e-4)
    with pytest.raises(ValueError, match="relative_positions must be >= 0"):
        PriorConfig(latent_dim=4, max_nodes=10, relative_positions=-1)


def test_grown_prior_starts_by_predicting_exactly_as_before():
    source = _random_prior()
    x, t, mask = torch.randn(3, 8, 4), torch.rand(3), torch.ones(3, 8, dtype=torch.bool)
    mask[0, 5:] = False
    grown_config = {**source.config.to_dict(), "layers": 4, "relative_positions": 9, "default_steps": 7, "default_sampler": "dpm"}
    grown = LatentPrior(PriorConfig(**grown_config)).eval()
    load_growing(grown, source)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, t, mask), source(x, t, mask))
    # and the new parts learn: the loss sends gradient to the offset biases and the new blocks' gates
    grown.train()
    grown(x, t, mask).pow(2).sum().backward()
    assert grown.blocks[0].offset_bias.weight.grad.abs().sum() > 0
    assert grown.blocks[3].modulation.weight.grad.abs().sum() > 0


def test_prior_carries_over_to_other_latent_statistics():
    # Fine-tuning on another tokenizer's latents: the statistics measured on the data change, the network's
    # weights are copied as they are.
    source = _random_prior()
    n = source.config.max_nodes + 1
    moved = {**source.config.to_dict(), "latent_mean": [0.5] * 4, "latent_std": [2.0] * 4, "num_nodes_counts": [0] * (n - 1) + [3]}
    target = LatentPrior(PriorConfig(**moved))
    load_growing(target, source)
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    "change, message",
    [({"d_model": 64}, "differs"), ({"latent_dim": 5}, "differs"), ({"property_names": ["QED"], "property_mean": [0.0], "property_std": [1.0]}, "differs"), ({"layers": 1}, "2 -> 1"), ({"relative_positions": 5}, "3 -> 5"), ({"relative_positions": 0}, "3 -> 0")],
)
def test_growing_refuses_any_other_change(change, message):
    source = _random_prior(relative_positions=3)
    other = LatentPrior(PriorConfig(**{**source.config.to_dict(), **change}))
    with pytest.raises(ValueError, match=message):
        load_growing(other, source)


# --- latent caches --------------------------------------------------------------------------------------------


def test_latent_dataset_dense_subset_and_round_trip(shipped, tmp_path, moses_sample):
    domain, tokenizer = shipped
    smiles = moses_sample("test", 12, 3)
    latents = _latents(domain, tokenizer, smiles)
    assert latents.tokenizer == tokenizer_fingerprint(tokenizer)
    assert latents.properties.shape == (12, len(domain.property_names))
    assert not np.isnan(latents.properties).any()
    qed = domain.property_names.index("QED")
    assert latents.properties[0, qed] == pytest.approx(domain.properties(smiles[0])["QED"], rel=1e-5)
    # Dense means equal the encoder's output for the same molecules.
    z, mask = latents.dense([4, 0])
    expected = MolgenPipeline(domain, tokenizer).encode([smiles[4], smiles[0]])
    assert torch.equal(mask, expected.mask[:, : mask.shape[1]])
    torch.testing.assert_close(z, expected.z[:, : z.shape[1]], atol=2e-3, rtol=2e-3)  # float16 storage
    # The shipped tokenizer is quantised (FSQ): its latents have no posterior spread, and sampling gives the means.
    assert latents.logvar is None
    sampled, _ = latents.dense([4, 0], sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, z)
    # A Gaussian tokenizer's latents carry log-variances: posterior samples spread around the means by their std.
    gaussian = LatentDataset(latents.mean, latents.ptr, latents.properties, latents.property_names, logvar=np.full_like(latents.mean, 2 * math.log(0.1)))
    sampled, _ = gaussian.dense([4, 0], sample=True, generator=torch.Generator().manual_seed(0))
    assert 0.08 < (sampled - z)[mask].std().item() < 0.12
    latents.save(tmp_path / "lat")
    again = LatentDataset.load(tmp_path / "lat")
    assert np.array_equal(again.mean, latents.mean) and np.array_equal(again.ptr, latents.ptr)
    np.testing.assert_array_equal(again.properties, latents.properties)
    assert again.property_names == latents.property_names and again.tokenizer == latents.tokenizer
    sub = latents.subset(np.array([5, 1]))
    assert np.array_equal(sub.num_nodes, latents.num_nodes[[5, 1]])
    np.testing.assert_array_equal(sub.dense([0])[0], latents.dense([5])[0])


def test_property_table_limit_leaves_the_rest_unknown(shipped):
    domain, _ = shipped
    items = ["CCO", "c1ccccc1", "not a smiles", "CC(=O)O", "CCN"]
    full = compute_property_table(domain, items, ["MW", "HBD"], workers=1)
    assert np.isnan(full[2]).all()  # unreadable item: unknown, not a crash
    assert full[0, 0] == pytest.approx(46.069, abs=1e-3) and full[0, 1] == 1
    part = compute_property_table(domain, items, ["MW"], limit=2, seed=1, workers=1)
    assert (~np.isnan(part[:, 0])).sum() <= 2


def test_property_table_completes_an_earlier_one_keeping_its_rows(shipped):
    domain, _ = shipped
    items = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl"]
    earlier = np.full((5, 1), np.nan, dtype=np.float32)
    earlier[1, 0] = -7.0  # a labelled row is kept as it is (not recomputed)
    table = compute_property_table(domain, items, ["MW"], limit=3, seed=0, workers=1, existing=earlier)
    assert table[1, 0] == -7.0
    assert (~np.isnan(table[:, 0])).sum() == 3  # the earlier row counts toward the limit
    everything = compute_property_table(domain, items, ["MW"], workers=1, existing=table)
    np.testing.assert_array_equal(everything[~np.isnan(table[:, 0])], table[~np.isnan(table[:, 0])])
    assert (~np.isnan(everything[:, 0])).all()
    assert everything[0, 0] == pytest.approx(46.069, abs=1e-3)
    with pytest.raises(ValueError, match="existing property table has shape"):
        compute_property_table(domain, items, ["MW", "HBD"], workers=1, existing=earlier)


def test_config_from_data_records_statistics(shipped, moses_sample):
    domain, tokenizer = shipped
    latents = _latents(domain, tokenizer, moses_sample("test", 20, 5))
    latents.properties[:10, 0] = np.nan  # QED known for half the graphs only
    config = prior_config_from_data(latents, tokenizer.config.max_nodes)
    assert config.property_names == list(domain.property_names)
    assert config.property_mean[0] == pytest.approx(float(np.nanmean(latents.properties[:, 0])), rel=1e-5)
    assert sum(config.num_nodes_counts) == 20
    assert config.num_nodes_counts[int(latents.num_nodes[0])] >= 1
    assert len(config.latent_std) == tokenizer.config.latent_dim and min(config.latent_std) > 0


# --- training and sampling --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_molecule_model(shipped, tmp_path_factory):
    """A tiny flow prior trained on two molecules (same size, far apart in logP), as a complete model directory."""
    domain, tokenizer = shipped
    latents = _latents(domain, tokenizer, [OILY, POLAR] * 64)
    config = prior_config_from_data(latents, tokenizer.config.max_nodes, d_model=32, n_heads=4, layers=2, default_steps=20)
    tmp = tmp_path_factory.mktemp("two")
    module = train_prior(latents, tmp / "run", config, _settings(max_steps=500, val_size=8, drop_each=0.0))
    return _model_dir(tmp, domain, tokenizer, tmp / "run"), module


def test_training_lowers_the_loss_and_exports_ema_weights(two_molecule_model):
    model_dir, module = two_molecule_model
    prior = load_prior(model_dir / "prior")
    for name, value in prior.state_dict().items():  # the export holds the EMA weights, not the raw ones
        torch.testing.assert_close(value, module.ema.module.state_dict()[name])
    lines = next((model_dir.parent / "run" / "logs").rglob("metrics.csv")).read_text().splitlines()
    column = lines[0].split(",").index("train/loss")
    losses = [float(r.split(",")[column]) for r in lines[1:] if r.split(",")[column]]
    assert losses[-1] < 0.5 * losses[0]


def test_sampling_reproduces_the_training_molecules(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    samples = pipe.sample(40, seed=0, batch_size=16)
    assert len(samples) == 40
    counts = Counter(m.smiles for m in samples if m.smiles)
    canonical = {pipe.domain.canonical(OILY), pipe.domain.canonical(POLAR)}
    assert sum(counts[s] for s in canonical) >= 30, counts
    # States: the first of each molecule is valid, later copies are duplicates; properties attached.
    first = next(m for m in samples if m.smiles in canonical)
    assert first.state == "valid" and first.properties["MW"] > 0
    assert sum(m.state == "valid" for m in samples) <= 2 + sum(m.smiles not in canonical for m in samples if m.smiles)
    assert all(m.state == "duplicate" for m in samples if m.smiles in canonical and m is not first and m.smiles == first.smiles)


@pytest.mark.parametrize("sampler", ["heun", "dpm"])
def test_every_flow_sampler_reproduces_the_training_molecules(two_molecule_model, sampler):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    samples = pipe.sample(24, seed=1, batch_size=12, sampler=sampler, steps=8)
    canonical = {pipe.domain.canonical(OILY), pipe.domain.canonical(POLAR)}
    assert sum(m.smiles in canonical for m in samples) >= 18, Counter(m.smiles for m in samples)


def test_sampling_is_reproducible_by_seed(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    a = pipe.sample_latents(8, seed=5, batch_size=4, steps=5)
    b = pipe.sample_latents(8, seed=5, batch_size=4, steps=5)
    c = pipe.sample_latents(8, seed=6, batch_size=4, steps=5)
    torch.testing.assert_close(a.z, b.z)
    # The temperature scales the starting noise: same seed, different latents.
    cold = pipe.sample_latents(8, seed=5, batch_size=4, steps=5, temperature=0.1)
    assert not torch.allclose(cold.z, a.z)
    assert not torch.allclose(a.z, c.z[:, : a.z.shape[1]]) if a.z.shape == c.z.shape else True
    assert all(int(s) == 15 for s in a.mask.sum(1))  # both training molecules have 15 atoms


def test_the_priors_default_temperature_applies_unless_one_is_given(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    cooler = MolgenPipeline(pipe.domain, pipe.tokenizer, copy.deepcopy(pipe.prior), "cpu", precision=pipe.precision)
    cooler.prior.config.default_temperature = 0.5
    options = dict(seed=4, batch_size=6, steps=4)
    torch.testing.assert_close(cooler.sample_latents(6, **options).z, pipe.sample_latents(6, temperature=0.5, **options).z)
    torch.testing.assert_close(cooler.sample_latents(6, temperature=1.0, **options).z, pipe.sample_latents(6, **options).z)
    assert not torch.allclose(cooler.sample_latents(6, **options).z, pipe.sample_latents(6, **options).z)
    with pytest.raises(ValueError, match="default_temperature must be > 0"):
        PriorConfig(**{**pipe.prior.config.to_dict(), "default_temperature": 0.0})


def test_set_prior_edits_keep_tokens_exactly_and_stay_near_the_start(two_molecule_model):
    """An edit noises the start to ``strength`` of the schedule and denoises from there; ``keep`` holds tokens on
    the start's own path, so they come back exactly, and every sample keeps the start's size."""
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    start = pipe.encode([OILY])
    keep = torch.zeros(1, start.z.shape[1], dtype=torch.bool)
    keep[0, :8] = True
    for sampler in ("euler", "heun", "dpm"):
        kept = pipe.sample_latents(6, seed=0, start=start, keep=keep, steps=8, sampler=sampler)
        torch.testing.assert_close(kept.z[:, :8], start.z[:, :8].expand(6, -1, -1))
        assert kept.mask.sum(1).tolist() == [15] * 6
        near = pipe.decode(pipe.sample_latents(8, seed=0, start=start, strength=0.3, steps=10, sampler=sampler))
        assert sum(m.smiles == pipe.domain.canonical(OILY) for m in near) >= 7, (sampler, [m.smiles for m in near])
    # a small strength moves the latents less than a large one, and strength 1 redraws everything
    moved = {s: (pipe.sample_latents(8, seed=0, start=start, strength=s, steps=10).z - start.z).abs().mean() for s in (0.1, 0.6)}
    assert moved[0.1] < moved[0.6], moved
    torch.testing.assert_close(pipe.sample_latents(4, seed=2, start=start, strength=1.0, steps=6).mask, start.mask.expand(4, -1))
    with pytest.raises(ValueError, match="strength=0: must be in"):
        pipe.sample_latents(2, start=start, strength=0)
    with pytest.raises(ValueError, match="keep needs start"):
        pipe.sample_latents(2, keep=keep)


def test_conditioning_steers_toward_the_requested_molecule(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    for target, other in ((OILY, POLAR), (POLAR, OILY)):
        samples = pipe.sample(24, seed=1, conditions={"logP": logp[target]}, guidance_scale=2.0, properties=False)
        counts = Counter(m.smiles for m in samples)
        assert counts[pipe.domain.canonical(target)] >= 18, (target, counts)
        assert counts[pipe.domain.canonical(other)] <= 3


def test_conditions_per_sample_steer_each_row_to_its_own_target(two_molecule_model):
    """A sequence of conditions gives each sample its own targets (here alternating between the two
    molecules, plus unconditional rows), across batches; each row samples as it would alone with that row's
    target."""
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu", precision="fp32")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    targets = [OILY if k % 2 else POLAR for k in range(24)]
    rows = [{"logP": logp[t]} for t in targets]
    samples = pipe.sample(24, seed=1, batch_size=10, conditions=rows, guidance_scale=2.0, properties=False)
    hits = sum(m.smiles == pipe.domain.canonical(t) for m, t in zip(samples, targets, strict=True))
    assert hits >= 18, [(m.smiles, t) for m, t in zip(samples, targets, strict=True)]
    # One row's sample equals that row sampled alone with a single mapping and the same noise (same seed,
    # batch of one); rows without targets (None) are unconditional.
    mixed = [None, {"logP": logp[OILY]}, {}]
    per_row = pipe.sample_latents(3, seed=4, batch_size=1, steps=4, conditions=mixed, guidance_scale=2.0)
    alone = pipe.sample_latents(3, seed=4, batch_size=1, steps=4, conditions={"logP": logp[OILY]}, guidance_scale=2.0)
    plain = pipe.sample_latents(3, seed=4, batch_size=1, steps=4)
    torch.testing.assert_close(per_row.z[1], alone.z[1])
    torch.testing.assert_close(per_row.z[0], plain.z[0])
    torch.testing.assert_close(per_row.z[2], plain.z[2])
    assert not torch.allclose(per_row.z[1], plain.z[1])


def test_sizes_per_sample(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    sizes = [3, 15, 7, 11] * 75  # 300 graphs of four sizes in one padded batch
    latents = pipe.sample_latents(300, seed=2, batch_size=300, steps=3, num_nodes=sizes)
    assert latents.mask.sum(1).tolist() == sizes
    latents = pipe.sample_latents(4, seed=2, steps=3, num_nodes=torch.tensor([5, 6, 7, 8]))
    assert latents.mask.sum(1).tolist() == [5, 6, 7, 8]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"conditions": [{"logP": 1.0}] * 3}, r"conditions holds 3 rows for 4 samples"),
        ({"conditions": [None, {"logP": 1.0}, {"QED": "high"}, None]}, r"conditions\[2\]: condition 'QED': target 'high' is not a number"),
        ({"conditions": [None, None, None, {"pIC50": 7.0}]}, r"conditions\[3\]: condition 'pIC50': this prior is conditioned on"),
        ({"conditions": [None, 3.0, None, None]}, r"conditions\[1\]: 3.0 is not a mapping"),
        ({"conditions": "logP=3"}, r"give a mapping"),
        ({"num_nodes": [5, 6, 7]}, r"num_nodes holds 3 sizes for 4 samples"),
        ({"num_nodes": [5, 6, 0, 7]}, r"num_nodes\[2\]=0: must be a whole number between 1 and"),
        ({"num_nodes": [5, 6, 7.5, 7]}, r"num_nodes\[2\]=7.5"),
        ({"num_nodes": 0}, r"num_nodes=0: must be a whole number between 1 and"),
    ],
)
def test_per_sample_options_are_checked_before_sampling(two_molecule_model, options, message):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    with pytest.raises(ValueError, match=message):
        pipe.sample_iter(4, **options)  # refused when called, before any molecule is asked for
    with pytest.raises(ValueError, match=message):
        pipe.sample_latents(4, **options)


def test_the_pipeline_samples_a_set_prior_through_the_flow_sampler(two_molecule_model, monkeypatch):
    """``pipe.sampler`` is the set prior's :class:`FlowSampler`; the pipeline splits a request into batches, has the
    sampler draw each, and returns (or decodes) what it drew."""
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    assert isinstance(pipe.sampler, FlowSampler) and pipe.sampler.prior is pipe.prior
    drawn = []  # (count, latents) of each call
    original = FlowSampler.sample
    monkeypatch.setattr(FlowSampler, "sample", lambda self, count, *args: drawn.append((count, original(self, count, *args))) or drawn[-1][1])
    config = SamplingConfig(steps=4, batch_size=4)
    through = pipe.sample_latents(10, config, seed=3)
    assert [count for count, _ in drawn] == [4, 4, 2]
    torch.testing.assert_close(through.z, Latents.concat([latents for _, latents in drawn]).z)
    torch.testing.assert_close(pipe.sample_latents(10, config, seed=3).z, through.z)  # the same seed, the same draws
    drawn.clear()
    molecules = pipe.sample(10, config, seed=3, properties=False)
    assert [m.smiles for m in molecules] == [m.smiles for m in pipe.decode(Latents.concat([latents for _, latents in drawn]), decoding="valence")]
    # keyword options change the given config's fields for this call only
    drawn.clear()
    pipe.sample_latents(10, config, seed=3, batch_size=5)
    assert [count for count, _ in drawn] == [5, 5] and config.batch_size == 4


@pytest.mark.parametrize(
    ("option", "value"),
    [("top_p", 0.9), ("repairs", 2), ("candidates", 3), ("selection", "best"), ("calibrated", True), ("property_guidance", 0.5)],
)
def test_a_set_prior_refuses_the_options_of_a_discrete_prior_naming_them(two_molecule_model, option, value):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    message = f"{option}={value!r}: an option of a discrete prior; this model's prior is a set flow-matching prior"
    with pytest.raises(ValueError, match=re.escape(message)):
        pipe.sample_iter(2, conditions={"logP": 2.0}, **{option: value})  # refused when called, before any molecule
    with pytest.raises(ValueError, match=f"{option}="):
        pipe.sample_latents(2, **{option: value})


def test_a_set_prior_accepts_the_values_that_leave_discrete_options_off(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    off = dict(top_p=1.0, repairs=0, candidates=1, calibrated=False, property_guidance=0.0, steps=4)
    torch.testing.assert_close(pipe.sample_latents(4, seed=1, **off).z, pipe.sample_latents(4, seed=1, steps=4).z)
    with pytest.raises(ValueError, match=r"sampler='ddim': choose one of"):
        pipe.sample_iter(2, sampler="ddim")
    # property predictors read a discrete prior's token prefixes: none is made for a set prior
    with pytest.raises(ValueError, match="reads a discrete prior's token prefixes; this prior is 'set'"):
        PredictorConfig.for_prior(pipe.prior.config)


def _network_dtypes(pipe: MolgenPipeline, **options) -> tuple[set[torch.dtype], Latents]:
    """The dtypes the prior's first block computed in while sampling, and the sampled latents."""
    seen: set[torch.dtype] = set()
    hook = pipe.prior.blocks[0].qkv.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
    try:
        latents = pipe.sample_latents(16, seed=3, batch_size=8, steps=6, **options)
    finally:
        hook.remove()
    return seen, latents


def test_bfloat16_precision_runs_the_networks_in_bfloat16_and_samples_the_same_molecules(two_molecule_model, monkeypatch):
    model_dir = two_molecule_model[0]
    full = MolgenPipeline.from_pretrained(model_dir, device="cpu", precision="fp32")
    half = MolgenPipeline.from_pretrained(model_dir, device="cpu", precision="bf16")
    dtypes, exact = _network_dtypes(full)
    assert dtypes == {torch.float32}
    dtypes, approx = _network_dtypes(half)
    assert dtypes == {torch.bfloat16}
    assert approx.z.dtype == torch.float32 and torch.equal(approx.mask, exact.mask)
    # bfloat16 keeps about 3 significant digits: the latents move a little, and the model still samples its
    # training molecules (a sample near the boundary between the two may decode differently)
    assert 0 < (approx.z - exact.z).abs().mean() < 0.05 * exact.z.abs().mean()
    canonical = {full.domain.canonical(OILY), full.domain.canonical(POLAR)}
    assert sum(m.smiles in canonical for m in half.decode(approx)) >= 12
    # auto: bfloat16 only where the hardware has it
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(device_module, "fast_bfloat16", lambda device, native=native: native)
        auto = MolgenPipeline.from_pretrained(model_dir, device="cpu", precision="auto")
        assert _network_dtypes(auto)[0] == {expected}
    with pytest.raises(ValueError, match="precision must be one of.*'half'"):
        MolgenPipeline.from_pretrained(model_dir, device="cpu", precision="half")


def test_bad_sampling_requests_name_the_problem(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    with pytest.raises(ValueError, match="'potency'.*conditioned on"):
        pipe.sample(2, conditions={"potency": 5})
    with pytest.raises(ValueError, match="not a finite number"):
        pipe.sample(2, conditions={"QED": math.nan})
    with pytest.raises(ValueError, match="num_nodes=99"):
        pipe.sample(2, num_nodes=99)
    with pytest.raises(ValueError, match="decoding='greedy': must be one of"):
        pipe.sample(2, decoding="greedy")
    with pytest.raises(ValueError, match="temperature=0: must be a finite number > 0"):
        pipe.sample(2, temperature=0)
    with pytest.raises(ValueError, match="steps=0: must be a whole number >= 1"):
        pipe.sample(2, steps=0)
    with pytest.raises(ValueError, match="n=0: the number of samples"):
        pipe.sample(0)
    with pytest.raises(TypeError, match=r"unknown sampling option\(s\) \['restarts'\]; the options are"):
        pipe.sample(2, restarts=1)
    with pytest.raises(ValueError, match="no prior"):
        MolgenPipeline(pipe.domain, pipe.tokenizer).sample(2)


def test_valence_decoding_is_always_valid_and_keeps_valid_raw_results(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    # Random latents: raw decoding is mostly invalid, valence-aware decoding never is.
    generator = torch.Generator().manual_seed(0)
    sizes = torch.randint(8, 26, (64,), generator=generator)
    mask = torch.arange(26)[None] < sizes[:, None]
    latents = Latents(torch.randn(64, 26, pipe.tokenizer.config.latent_dim, generator=generator) * 2 * mask[..., None], mask)
    raw = pipe.decode(latents, decoding="raw")
    valence = pipe.decode(latents, decoding="valence")
    assert sum(m.state == "invalid" for m in raw) > 0
    assert all(m.state == "valid" and "." not in m.smiles for m in valence)
    for r, v in zip(raw, valence, strict=True):
        if r.state == "valid":
            assert r.smiles == v.smiles
    # Real latents decode to the same molecules either way.
    real = pipe.encode([OILY, POLAR])
    assert [m.smiles for m in pipe.decode(real, decoding="valence")] == [m.smiles for m in pipe.decode(real)]


def test_repeat_labelled_raises_the_share_of_rows_with_properties_and_keeps_every_row():
    counts = np.array([3, 5, 4, 6, 2, 7, 3, 5, 4, 6])  # ten graphs, two of them labelled
    data = LatentDataset(
        mean=np.arange(counts.sum() * 2, dtype=np.float32).reshape(-1, 2), ptr=np.concatenate([[0], np.cumsum(counts)]),
        properties=np.full((10, 1), np.nan, dtype=np.float32), property_names=["QED"],
    )  # fmt: skip
    data.properties[[1, 6]] = [[0.5], [0.8]]
    more = repeat_labelled(data, 0.5)  # 8 unlabelled rows: each labelled row 4 times
    assert len(more) == 16
    labelled = ~np.isnan(more.properties[:, 0])
    assert labelled.sum() == 8 and np.allclose(sorted(more.properties[labelled, 0]), [0.5] * 4 + [0.8] * 4)
    for i in range(10):  # every original row comes first, unchanged
        np.testing.assert_array_equal(more.dense([i])[0], data.dense([i])[0])
    for i in np.flatnonzero(labelled)[2:]:  # the repeats are the labelled graphs, tokens and all
        source = 1 if np.isclose(more.properties[i, 0], 0.5) else 6
        np.testing.assert_array_equal(more.dense([i])[0], data.dense([source])[0])
    assert repeat_labelled(data, 0.1) is data  # already about that share: nothing repeated
    with pytest.raises(ValueError, match="labelled_share=1.0"):
        repeat_labelled(data, 1.0)
    data.properties[:] = np.nan
    with pytest.raises(ValueError, match="no training row has properties"):
        repeat_labelled(data, 0.5)
