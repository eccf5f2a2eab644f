"""The latent prior: latent caches, training pairs, tiny trainings (flow and diffusion), and sampling through the
pipeline, including property conditioning and valence-aware decoding."""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from molgen.checkpoint import load_domain, load_predictor, load_prior, load_tokenizer, save_domain, save_prior, save_tokenizer
from molgen.dataset import GraphDataset
from molgen.guidance import PropertyGuidance
from molgen.latents import LatentDataset, compute_property_table, encode_dataset, tokenizer_fingerprint
from molgen import pipeline as pipeline_module
from molgen.pipeline import Latents, MolgenPipeline, _begin_index
from molgen.prior.config import PriorConfig
from molgen.prior.distillation import DistillSettings, GuidanceDistillation, config_differences, distill_prior, student_config
from molgen.prior.model import LatentPrior
from molgen.prior.predictor import PredictorConfig, PredictorTrainSettings, PropertyPredictor, train_predictor
from molgen.prior.scheduling import SAMPLERS, TIME_SAMPLINGS, clean_estimate, make_scheduler, model_time, training_pair
from molgen.prior.training import PriorModule, PriorTrainSettings, load_growing, prior_config_from_data, repeat_labelled, train_prior

from ..conftest import REPO

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
                progress=False, accelerator="cpu", devices=1, threads=1)  # fmt: skip
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


def test_config_rejects_a_prediction_the_objective_cannot_make():
    with pytest.raises(ValueError, match="predicts one of"):
        PriorConfig(latent_dim=4, max_nodes=8, objective="flow", prediction="epsilon")
    with pytest.raises(ValueError, match="objective must be"):
        PriorConfig(latent_dim=4, max_nodes=8, objective="score")


def test_sampler_must_fit_the_objective():
    config = PriorConfig(latent_dim=4, max_nodes=8)
    assert type(make_scheduler(config)).__name__ == "FlowMatchEulerDiscreteScheduler"
    with pytest.raises(ValueError, match="does not fit a flow prior"):
        make_scheduler(config, "ddim")
    diffusion = PriorConfig(latent_dim=4, max_nodes=8, objective="diffusion", prediction="epsilon", default_sampler="dpm")
    for name in SAMPLERS["diffusion"]:
        scheduler = make_scheduler(diffusion, name)
        assert scheduler.config.prediction_type == "epsilon"
        assert scheduler.config.clip_sample is False if "clip_sample" in scheduler.config else True


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpm"])
@pytest.mark.parametrize("steps", [6, 8, 10, 14])
def test_restarts_begin_on_a_full_step_of_each_flow_sampler(sampler, steps):
    # Heun lists each level but the first twice (predictor, corrector); a restart starting on a corrector
    # entry ran the pairs out of step (11% raw validity at 8 Heun steps + 2 restarts before the fix).
    scheduler = make_scheduler(PriorConfig(latent_dim=4, max_nodes=8), sampler)
    scheduler.set_timesteps(steps)
    for strength in (0.3, 0.5, 0.7):
        begin = _begin_index(scheduler, True, strength)
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
    config = PriorConfig(latent_dim=3, max_nodes=5)
    x0, noise = torch.randn(6, 5, 3), torch.randn(6, 5, 3)
    x_t, t, target = training_pair(config, x0, noise, torch.Generator().manual_seed(0))
    s = t[:, None, None]
    assert torch.all((t >= 0) & (t <= 1))
    torch.testing.assert_close(target, noise - x0)
    torch.testing.assert_close(x_t, (1 - s) * x0 + s * noise)
    # One Euler step of the exact velocity from x_t to sigma = 0 recovers x0.
    torch.testing.assert_close(x_t - s * target, x0)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_diffusion_training_pair_follows_ddpm(prediction):
    config = PriorConfig(latent_dim=3, max_nodes=5, objective="diffusion", prediction=prediction, default_sampler="dpm")
    x0, noise = torch.randn(6, 5, 3), torch.randn(6, 5, 3)
    x_t, t, target = training_pair(config, x0, noise, torch.Generator().manual_seed(0))
    timesteps = (t * config.num_train_timesteps).round().long()
    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_schedule=config.beta_schedule, prediction_type=prediction)
    torch.testing.assert_close(x_t, ddpm.add_noise(x0, noise, timesteps))
    expected = noise if prediction == "epsilon" else ddpm.get_velocity(x0, noise, timesteps)
    torch.testing.assert_close(target, expected)


@pytest.mark.parametrize("objective, prediction", [("flow", "velocity"), ("diffusion", "epsilon"), ("diffusion", "v_prediction")])
def test_clean_estimate_recovers_the_clean_latents_from_an_exact_prediction(objective, prediction):
    # What self-conditioning feeds back: the x0 a perfect prediction implies is the x0 the pair was made from.
    config = PriorConfig(latent_dim=3, max_nodes=5, objective=objective, prediction=prediction, default_sampler="dpm")
    x0, noise = torch.randn(64, 5, 3), torch.randn(64, 5, 3)
    x_t, t, target = training_pair(config, x0, noise, torch.Generator().manual_seed(0))
    keep = t < 0.98  # alpha-bar vanishes at the end of the cosine schedule: x0 is not recoverable from epsilon there
    torch.testing.assert_close(clean_estimate(config, x_t, t, target)[keep], x0[keep], atol=1e-3, rtol=1e-3)
    # and a wrong prediction gives a different estimate
    assert not torch.allclose(clean_estimate(config, x_t, t, target + 1)[keep], x0[keep], atol=1e-2)


@pytest.mark.parametrize("objective", ["flow", "diffusion"])
def test_logit_normal_time_sampling_favours_middle_noise_levels(objective):
    config = PriorConfig(latent_dim=3, max_nodes=5, objective=objective, **({"default_sampler": "dpm", "prediction": "epsilon"} if objective == "diffusion" else {}))
    x0, noise = torch.zeros(4000, 1, 3), torch.randn(4000, 1, 3)
    middle = {}
    for sampling in TIME_SAMPLINGS:
        _, t, _ = training_pair(config, x0, noise, torch.Generator().manual_seed(0), sampling)
        assert torch.all((t >= 0) & (t <= 1))
        middle[sampling] = float(((t > 0.25) & (t < 0.75)).float().mean())
    assert abs(middle["uniform"] - 0.5) < 0.05
    assert middle["logit_normal"] > 0.65  # P(|N(0,1)| < logit(0.75) = 1.10) = 0.73
    with pytest.raises(ValueError, match="time_sampling must be one of"):
        training_pair(config, x0, noise, None, "cosine")


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
    grown_config = {**source.config.to_dict(), "layers": 4, "relative_positions": 9, "default_steps": 7, "default_restarts": 2}
    grown = LatentPrior(PriorConfig(**grown_config)).eval()
    load_growing(grown, source)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, t, mask), source(x, t, mask))
    # and the new parts learn: the loss sends gradient to the offset biases and the new blocks' gates
    grown.train()
    grown(x, t, mask).pow(2).sum().backward()
    assert grown.blocks[0].offset_bias.weight.grad.abs().sum() > 0
    assert grown.blocks[3].modulation.weight.grad.abs().sum() > 0


def test_self_conditioning_added_to_a_trained_prior_starts_as_a_no_op_then_reads_the_estimate():
    source = _random_prior()
    x, t, mask = torch.randn(3, 8, 4), torch.rand(3), torch.ones(3, 8, dtype=torch.bool)
    mask[1, 6:] = False
    estimate = torch.randn(3, 8, 4)
    torch.testing.assert_close(source(x, t, mask, x_self=estimate), source(x, t, mask))  # a prior without it ignores it
    grown = LatentPrior(PriorConfig(**{**source.config.to_dict(), "self_condition": True})).eval()
    load_growing(grown, source)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, t, mask), source(x, t, mask))
        torch.testing.assert_close(grown(x, t, mask, x_self=estimate), source(x, t, mask))
        torch.nn.init.normal_(grown.self_in.weight, std=0.5)  # as training would make it
        with_estimate = grown(x, t, mask, x_self=estimate)
        assert not torch.allclose(with_estimate, grown(x, t, mask), atol=1e-3)
        # padding tokens' estimates are not read
        padded = estimate.clone()
        padded[1, 6:] = 100.0
        torch.testing.assert_close(grown(x, t, mask, x_self=padded), with_estimate)
    with pytest.raises(ValueError, match="self-conditioning added"):
        load_growing(LatentPrior(source.config), grown)  # taking it away is not growing


def test_self_conditioned_training_feeds_back_the_networks_own_estimate():
    config = PriorConfig(latent_dim=4, max_nodes=8, d_model=32, n_heads=4, layers=2, self_condition=True)
    module = PriorModule(config.to_dict())
    for p in module.model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x_t, t, mask = torch.randn(5, 8, 4), torch.rand(5), torch.ones(5, 8, dtype=torch.bool)
    props, known = torch.zeros(5, 0), torch.zeros(5, 0, dtype=torch.bool)
    network = module.model
    with torch.no_grad():
        expected = clean_estimate(config, x_t, t, network(x_t, t, mask, props, known))
    # validation (and every sampling step after the first) reads the estimate of a first pass
    torch.testing.assert_close(module.self_estimate(network, x_t, t, mask, props, known, train=False, generator=None), expected)
    # training: about half of the batches read it, the rest train the first step (no estimate)
    generator = torch.Generator().manual_seed(0)
    given = [module.self_estimate(network, x_t, t, mask, props, known, train=True, generator=generator) is not None for _ in range(200)]
    assert 70 < sum(given) < 130
    plain = PriorModule({**config.to_dict(), "self_condition": False})
    assert plain.self_estimate(plain.model, x_t, t, mask, props, known, train=False, generator=None) is None


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
    # Posterior samples differ from the means, by about the posterior's spread.
    sampled, _ = latents.dense([4, 0], sample=True, generator=torch.Generator().manual_seed(0))
    spread = (sampled - z)[mask].std().item()
    assert 0.01 < spread < 1.0
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
def test_every_flow_sampler_with_restarts_reproduces_the_training_molecules(two_molecule_model, sampler):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    samples = pipe.sample(24, seed=1, batch_size=12, sampler=sampler, steps=8, restarts=1)
    canonical = {pipe.domain.canonical(OILY), pipe.domain.canonical(POLAR)}
    assert sum(m.smiles in canonical for m in samples) >= 18, Counter(m.smiles for m in samples)


@pytest.fixture(scope="module")
def self_conditioned_model(two_molecule_model, shipped, tmp_path_factory):
    """The two-molecule prior with self-conditioning added and trained a little further."""
    domain, tokenizer = shipped
    model_dir, module = two_molecule_model
    source = load_prior(model_dir / "prior")
    latents = _latents(domain, tokenizer, [OILY, POLAR] * 64)
    config = PriorConfig(**{**source.config.to_dict(), "self_condition": True})
    tmp = tmp_path_factory.mktemp("self")
    train_prior(latents, tmp / "run", config, _settings(max_steps=150, lr=1e-3, val_size=8, drop_each=0.0), init_from=source)
    return _model_dir(tmp, domain, tokenizer, tmp / "run")


def test_a_self_conditioned_prior_learns_to_read_its_estimate_and_samples_the_training_molecules(self_conditioned_model):
    pipe = MolgenPipeline.from_pretrained(self_conditioned_model, device="cpu")
    assert pipe.prior.config.self_condition and pipe.prior.self_in.weight.abs().max() > 1e-3  # trained away from zero
    samples = pipe.sample(40, seed=0, batch_size=16)
    canonical = {pipe.domain.canonical(OILY), pipe.domain.canonical(POLAR)}
    assert sum(m.smiles in canonical for m in samples) >= 30, Counter(m.smiles for m in samples)


def test_sampling_feeds_each_evaluation_the_last_estimate_and_each_pass_starts_without(self_conditioned_model, monkeypatch):
    pipe = MolgenPipeline.from_pretrained(self_conditioned_model, device="cpu", precision="fp32")
    calls = []
    forward = LatentPrior.forward

    def spy(self, x, t, mask, properties=None, property_mask=None, x_self=None):
        out = forward(self, x, t, mask, properties, property_mask, x_self=x_self)
        calls.append((x, t, mask, x_self, out.detach()))
        return out

    monkeypatch.setattr(LatentPrior, "forward", spy)
    steps, restarts = 6, 1
    pipe.sample_latents(4, seed=3, batch_size=4, steps=steps, restarts=restarts, sampler="euler", autoguidance=1.0)
    first_pass = steps
    assert len(calls) == pipe.prior_evaluations(steps, restarts) and len(calls) > first_pass
    for k, (x, t, mask, x_self, _) in enumerate(calls):
        if k in (0, first_pass):  # a pass's first step: no estimate yet (the restart does not reuse the last pass's)
            assert x_self is None, k
            continue
        px, pt, pmask, _, pout = calls[k - 1]
        torch.testing.assert_close(x_self, clean_estimate(pipe.prior.config, px, pt, pout) * pmask.unsqueeze(-1))


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


def test_size_grouped_sampling_matches_one_padded_batch(two_molecule_model):
    """Large batches are denoised in groups of similar size (less padding); every graph's latents are the same
    as when the batch runs padded as one, and come back in the order the sizes were drawn."""
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    counts = [0] * len(pipe.prior.config.num_nodes_counts)
    for size in (3, 7, 11, 15):
        counts[size] = 1
    pipe.prior.config.num_nodes_counts = counts  # sizes 3..15, so groups differ in padding
    grouped = pipe.sample_latents(300, seed=2, batch_size=300, steps=4)
    one_batch = pipe.sample_latents(300, seed=2, batch_size=300, steps=4, step_hook=lambda i, t, x: x)  # a hook keeps one batch
    sizes = grouped.mask.sum(1)
    assert set(sizes.tolist()) == {3, 7, 11, 15}
    assert not bool((sizes[1:] >= sizes[:-1]).all())  # drawn order, not sorted by size
    torch.testing.assert_close(grouped.mask, one_batch.mask)
    torch.testing.assert_close(grouped.z, one_batch.z, atol=1e-4, rtol=1e-4)


def _with_guide(pipe: MolgenPipeline, guide: LatentPrior, prior: LatentPrior | None = None) -> MolgenPipeline:
    """``pipe`` with another guide (and prior), at the same precision, so that results compare exactly."""
    return MolgenPipeline(pipe.domain, pipe.tokenizer, copy.deepcopy(prior or pipe.prior), "cpu", guide=guide, precision=pipe.precision)


def test_autoguidance_extrapolates_away_from_the_guide_prior(two_molecule_model, tmp_path):
    # float32, so that the identities below hold to rounding (bfloat16 would round 1.5 x prior and prior differently)
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu", precision="fp32")
    zero = LatentPrior(pipe.prior.config).eval()  # a fresh prior's output layer is zero: it predicts 0 everywhere
    guided = _with_guide(pipe, zero)
    scaled = copy.deepcopy(pipe.prior)  # predicts 1.5x what the prior does
    with torch.no_grad():
        scaled.out.weight.mul_(1.5)
        scaled.out.bias.mul_(1.5)
    options = dict(seed=3, batch_size=6, steps=4, restarts=1)
    # guide + w (prior - guide) with a guide predicting 0 is w * prior, at every evaluation (restarts included),
    # also with classifier-free guidance, where the guide gets the same conditions.
    for extra in ({}, {"conditions": {"logP": 3.0}, "guidance_scale": 2.0}):
        with_guide = guided.sample_latents(6, autoguidance=1.5, **options, **extra)
        expected = _with_guide(pipe, None, scaled).sample_latents(6, **options, **extra)
        torch.testing.assert_close(with_guide.z, expected.z)
        assert not torch.allclose(with_guide.z, pipe.sample_latents(6, **options, **extra).z)
    # Weight 1 (the config's default) is the prior alone; the guide does not even run.
    torch.testing.assert_close(guided.sample_latents(6, **options).z, pipe.sample_latents(6, **options).z)
    # A model directory with guide/ loads it, and the prior's default_autoguidance applies.
    model = tmp_path / "model"
    shutil.copytree(two_molecule_model[0], model)
    save_prior(zero, model / "guide")
    config = json.loads((model / "prior" / "config.json").read_text())
    (model / "prior" / "config.json").write_text(json.dumps({**config, "default_autoguidance": 1.5}))
    loaded = MolgenPipeline.from_pretrained(model, device="cpu", precision="fp32")
    assert loaded.guide is not None
    torch.testing.assert_close(loaded.sample_latents(6, **options).z, guided.sample_latents(6, autoguidance=1.5, **options).z)
    torch.testing.assert_close(loaded.sample_latents(6, autoguidance=1, **options).z, pipe.sample_latents(6, **options).z)


class _TimeRecorder(LatentPrior):
    """A prior predicting zero that records the network times it is evaluated at."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__(config)
        self.times: list[float] = []

    def forward(self, x, t, mask, *args, **kwargs):
        self.times.extend(t.unique().tolist())
        return super().forward(x, t, mask, *args, **kwargs)


def test_autoguidance_applies_only_inside_the_priors_interval(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    options = dict(seed=3, batch_size=6, steps=6, restarts=1, autoguidance=1.5)
    everywhere = _TimeRecorder(pipe.prior.config).eval()
    full = _with_guide(pipe, everywhere).sample_latents(6, **options)
    assert min(everywhere.times) < 0.3 and max(everywhere.times) == 1.0  # [0, 1] (the default): every evaluation
    limited = _TimeRecorder(pipe.prior.config).eval()
    guided = _with_guide(pipe, limited)
    guided.prior.config.autoguidance_interval = [0.5, 1.0]
    partial = guided.sample_latents(6, **options)
    assert limited.times and all(0.5 <= t <= 1.0 for t in limited.times)
    # 6 steps at times 1, 0.8, 0.6, 0.4, 0.2, 0.001 and a restart from 0.4: the guide runs at the first three.
    assert sorted({round(t, 3) for t in limited.times}) == [0.6, 0.8, 1.0]
    assert guided.guide_evaluations(6, 1, autoguidance=1.5) == 3 and guided.prior_evaluations(6, 1) == 9
    assert _with_guide(pipe, everywhere).guide_evaluations(6, 1, autoguidance=1.5) == 9
    # Autoguidance off (weight 1, this prior's default), or no guide: the guide never runs.
    assert guided.guide_evaluations(6, 1) == 0 and _with_guide(pipe, None).guide_evaluations(6, 1, autoguidance=1.5) == 0
    assert len(limited.times) < len(everywhere.times)
    # Outside the interval the prior predicts alone; inside, guide + w (prior - guide) as before.
    assert not torch.allclose(partial.z, full.z)
    unguided = _with_guide(pipe, None).sample_latents(6, **{**options, "autoguidance": 1})
    assert not torch.allclose(partial.z, unguided.z)
    # An empty-of-steps interval is the prior alone.
    guided.prior.config.autoguidance_interval = [0.0, 0.0]
    torch.testing.assert_close(guided.sample_latents(6, **options).z, unguided.z)


def test_autoguidance_requests_and_guides_that_cannot_work_name_the_problem(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    with pytest.raises(ValueError, match="autoguidance=2: this model has no guide prior"):
        pipe.sample_latents(2, autoguidance=2)
    with pytest.raises(ValueError, match="autoguidance=2: this model has no guide prior"):
        pipe.sample(2, autoguidance=2)  # checked when called, before any molecule is asked for
    config = pipe.prior.config.to_dict()
    for bad in (0, -1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="must be a positive number"):
            _with_guide(pipe, LatentPrior(pipe.prior.config)).sample_latents(2, autoguidance=bad)
    for change, message in [
        ({"latent_dim": config["latent_dim"] + 1}, "latent_dim is"),
        ({"latent_std": [s * 2 for s in config["latent_std"]]}, "latent_std differs"),
        ({"property_names": config["property_names"][:2]}, "property_names is"),
        ({"objective": "diffusion", "prediction": "epsilon"}, "objective is"),
    ]:
        with pytest.raises(ValueError, match=f"guide prior: (its )?{message}"):
            _with_guide(pipe, LatentPrior(PriorConfig(**{**config, **change})))
    with pytest.raises(ValueError, match="default_autoguidance must be > 0"):
        PriorConfig(**{**config, "default_autoguidance": 0})
    for interval in ([0.6, 0.2], [0.0, 1.5], [-0.1, 1.0], "0:1", [0.5]):
        with pytest.raises(ValueError, match="autoguidance_interval must be"):
            PriorConfig(**{**config, "autoguidance_interval": interval})


def test_the_priors_default_temperature_applies_unless_one_is_given(two_molecule_model):
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu")
    cooler = _with_guide(pipe, None)
    cooler.prior.config.default_temperature = 0.5
    options = dict(seed=4, batch_size=6, steps=4, restarts=1)
    torch.testing.assert_close(cooler.sample_latents(6, **options).z, pipe.sample_latents(6, temperature=0.5, **options).z)
    torch.testing.assert_close(cooler.sample_latents(6, temperature=1.0, **options).z, pipe.sample_latents(6, **options).z)
    assert not torch.allclose(cooler.sample_latents(6, **options).z, pipe.sample_latents(6, **options).z)
    with pytest.raises(ValueError, match="default_temperature must be > 0"):
        PriorConfig(**{**pipe.prior.config.to_dict(), "default_temperature": 0.0})


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
    molecules, plus unconditional rows), across batches and size groups; each row samples as it would
    alone with that row's target."""
    pipe = MolgenPipeline.from_pretrained(two_molecule_model[0], device="cpu", precision="fp32")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    targets = [OILY if k % 2 else POLAR for k in range(24)]
    rows = [{"logP": logp[t]} for t in targets]
    samples = pipe.sample(24, seed=1, batch_size=10, conditions=rows, guidance_scale=2.0, properties=False)
    hits = sum(m.smiles == pipe.domain.canonical(t) for m, t in zip(samples, targets, strict=True))
    assert hits >= 20, [(m.smiles, t) for m, t in zip(samples, targets, strict=True)]
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
    sizes = [3, 15, 7, 11] * 75  # 300 graphs: one batch, denoised in size groups
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


@pytest.fixture(scope="module")
def two_molecule_predictor(two_molecule_model, shipped):
    """A property predictor trained on the two-molecule prior's noisy latents, installed in its model directory."""
    domain, tokenizer = shipped
    model_dir, _ = two_molecule_model
    prior_config = load_prior(model_dir / "prior").config
    latents = _latents(domain, tokenizer, [OILY, POLAR] * 64)
    config = PredictorConfig.for_prior(prior_config, d_model=32, layers=1)
    run = model_dir.parent / "predictor_run"
    settings = PredictorTrainSettings(batch_size=32, lr=3e-3, warmup_steps=10, max_steps=300, val_every=1000, val_size=8,
                                      progress=False, accelerator="cpu", devices=1, threads=1)  # fmt: skip
    module = train_predictor(latents, run, config, prior_config, settings)
    shutil.copytree(run / "model" / "predictor", model_dir / "predictor", dirs_exist_ok=True)
    return model_dir, module


def test_predictor_learns_the_properties_from_noisy_latents(two_molecule_predictor):
    model_dir, module = two_molecule_predictor
    training = json.loads((model_dir / "predictor" / "training.json").read_text())
    assert training["global_step"] == 300
    # logP of the two molecules is 4 training standard deviations apart (normalised ~ +-1): a predictor that
    # did not learn would have a squared error near 1 on it.
    assert training["val"]["val/mse_logP"] < 0.3, training["val"]
    predictor = load_predictor(model_dir / "predictor")
    assert predictor.config.property_names == load_prior(model_dir / "prior").config.property_names


def test_property_guidance_alone_steers_toward_the_target(two_molecule_predictor):
    pipe = MolgenPipeline.from_pretrained(two_molecule_predictor[0], device="cpu")
    assert pipe.predictor is not None
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    for target in (OILY, POLAR):
        # classifier-free guidance scale 0 is the unconditional prior: only the predictor's gradient steers
        options = {"conditions": {"logP": logp[target]}, "guidance_scale": 0.0, "properties": False, "seed": 2}
        plain = Counter(m.smiles for m in pipe.sample(32, **options))
        guided = Counter(m.smiles for m in pipe.sample(32, property_guidance=0.5, **options))
        hits = pipe.domain.canonical(target)
        assert guided[hits] >= 26 and guided[hits] >= plain[hits] + 6, (target, plain, guided)


def test_property_guidance_requests_name_the_problem(two_molecule_model, two_molecule_predictor):
    with_predictor = MolgenPipeline.from_pretrained(two_molecule_predictor[0], device="cpu")
    with pytest.raises(ValueError, match="give conditions"):
        with_predictor.sample(2, property_guidance=0.5)
    with pytest.raises(ValueError, match="property_guidance=-1"):
        with_predictor.sample(2, property_guidance=-1, conditions={"logP": 1.0})
    without = MolgenPipeline(with_predictor.domain, with_predictor.tokenizer, with_predictor.prior)
    with pytest.raises(ValueError, match="has none.*molgen train predictor"):
        without.sample(2, property_guidance=0.5, conditions={"logP": 1.0})
    other = PredictorConfig(**{**with_predictor.predictor.config.to_dict(), "latent_std": [1.0] * with_predictor.prior.config.latent_dim})
    with pytest.raises(ValueError, match="trained for another prior.*latent_std"):
        MolgenPipeline(with_predictor.domain, with_predictor.tokenizer, with_predictor.prior, predictor=PropertyPredictor(other))


def test_property_guidance_step_lowers_the_predictors_error():
    prior = _random_prior()
    config = PredictorConfig.for_prior(PriorConfig(**{**prior.config.to_dict(), "property_names": ["a", "b"], "property_mean": [0, 0], "property_std": [1, 1]}), d_model=32)
    torch.manual_seed(0)
    predictor = PropertyPredictor(config).eval()
    x, t, mask = torch.randn(8, 6, 4), torch.rand(8), torch.ones(8, 6, dtype=torch.bool)
    mask[:3, 4:] = False
    guidance = PropertyGuidance(predictor, torch.full((8, 2), 1.5), torch.tensor([[True, False]] * 8), scale=0.05)
    moved = guidance(x * mask.unsqueeze(-1), t, mask)
    assert torch.all(moved[~mask] == 0)  # padding stays zero
    before, after = guidance.error(x * mask.unsqueeze(-1), t, mask), guidance.error(moved, t, mask)
    assert torch.all(after < before), (before, after)


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
        monkeypatch.setattr(pipeline_module, "fast_bfloat16", lambda device, native=native: native)
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
    with pytest.raises(ValueError, match="decoding must be"):
        pipe.sample(2, decoding="greedy")
    with pytest.raises(ValueError, match="temperature=0"):
        pipe.sample(2, temperature=0)
    with pytest.raises(ValueError, match="steps=0"):
        pipe.sample(2, steps=0)
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


def test_diffusion_prior_trains_and_samples_with_each_scheduler(shipped, tmp_path):
    domain, tokenizer = shipped
    latents = _latents(domain, tokenizer, [OILY] * 32)
    config = prior_config_from_data(
        latents, tokenizer.config.max_nodes, objective="diffusion", prediction="v_prediction", default_sampler="dpm",
        d_model=32, n_heads=4, layers=2, default_steps=20,
    )  # fmt: skip
    train_prior(latents, tmp_path / "run", config, _settings(max_steps=200, val_size=4))
    pipe = MolgenPipeline.from_pretrained(_model_dir(tmp_path, domain, tokenizer, tmp_path / "run"), device="cpu")
    target = domain.canonical(OILY)
    for sampler in ("dpm", "ddim"):
        samples = pipe.sample(12, seed=0, sampler=sampler, properties=False)
        assert sum(m.smiles == target for m in samples) >= 9, (sampler, Counter(m.smiles for m in samples))
    assert len(pipe.sample(3, sampler="ddpm", steps=50, properties=False)) == 3


# --- guidance distillation ------------------------------------------------------------------------------------


def _inputs(config: PriorConfig, times: list[float], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = len(times)
    x = torch.randn(batch, 15, config.latent_dim, generator=g)
    mask = torch.ones(batch, 15, dtype=torch.bool)
    props = torch.randn(batch, config.num_properties, generator=g)
    known = torch.rand(batch, config.num_properties, generator=g) < 0.5
    return x, torch.tensor(times), mask, props, known


def test_distillation_regresses_onto_the_autoguided_teacher_inside_its_interval(two_molecule_model):
    teacher = load_prior(two_molecule_model[0] / "prior")
    teacher.config.autoguidance_interval = [0.5, 1.0]
    zero = LatentPrior(teacher.config).eval()  # predicts 0: guide + w (teacher - guide) = w teacher
    config = student_config(teacher.config, activation="gelu")
    assert config.default_autoguidance == 1.0 and config.activation == "gelu"  # the student samples without a guide
    module = GuidanceDistillation(
        config.to_dict(), teacher.config.to_dict(), zero.config.to_dict(), autoguidance=1.5, interval=(0.5, 1.0)
    )
    module.load_teacher(teacher, zero)
    x, t, mask, props, known = _inputs(teacher.config, [0.2, 0.6, 0.9, 0.4])
    with torch.no_grad():
        plain = teacher(x, t, mask, props, known)
    target = module.regression_target(x, t, mask, props, known, target=torch.zeros_like(x))
    torch.testing.assert_close(target[[0, 3]], plain[[0, 3]])  # outside the interval: the teacher alone
    torch.testing.assert_close(target[[1, 2]], 1.5 * plain[[1, 2]])
    # The student starts as the teacher (only the activation's approximation differs) and its average with it.
    with torch.no_grad():
        torch.testing.assert_close(module.model(x, t, mask, props, known), plain, atol=2e-3, rtol=1e-2)
        torch.testing.assert_close(module.ema.module(x, t, mask, props, known), module.model(x, t, mask, props, known))
    assert not any(p.requires_grad for p in (*module.teacher.parameters(), *module.guide.parameters()))
    # Training noise is scaled by a factor in noise_scale.
    scaled = GuidanceDistillation(config.to_dict(), teacher.config.to_dict(), zero.config.to_dict(), autoguidance=1.5, noise_scale=(0.5, 0.5))
    z = torch.zeros(2000, 3, 1)
    assert abs(float(scaled.noise(z, torch.Generator().manual_seed(0)).std()) - 0.5) < 0.02
    with pytest.raises(ValueError, match="noise_scale"):
        GuidanceDistillation(config.to_dict(), teacher.config.to_dict(), zero.config.to_dict(), autoguidance=1.5, noise_scale=(0.0, 1.0))


def test_distilling_a_self_conditioned_teacher_regresses_onto_its_second_pass(self_conditioned_model):
    teacher = load_prior(self_conditioned_model / "prior")
    zero = LatentPrior(PriorConfig(**{**teacher.config.to_dict(), "self_condition": False})).eval()
    config = student_config(teacher.config)
    module = GuidanceDistillation(config.to_dict(), teacher.config.to_dict(), zero.config.to_dict(), autoguidance=1.5, interval=(0.5, 1.0))
    module.load_teacher(teacher, zero)
    x, t, mask, props, known = _inputs(teacher.config, [0.2, 0.6, 0.9, 0.4])
    with torch.no_grad():
        estimate = clean_estimate(teacher.config, x, t, teacher(x, t, mask, props, known)) * mask.unsqueeze(-1)
        second = teacher(x, t, mask, props, known, x_self=estimate)
        first = teacher(x, t, mask, props, known)
    assert not torch.allclose(second, first, atol=1e-3)  # the trained teacher reads its estimate
    target = module.regression_target(x, t, mask, props, known, target=torch.zeros_like(x))
    torch.testing.assert_close(target[[0, 3]], second[[0, 3]])  # what it predicts at a sampling step after the first
    torch.testing.assert_close(target[[1, 2]], 1.5 * second[[1, 2]])
    # An earlier student without self-conditioning can continue as this one (its new input starts at zero) ...
    earlier = zero
    torch.nn.init.normal_(earlier.out.weight, std=0.1)
    assert config_differences(config, earlier.config) == []
    module.load_teacher(teacher, zero, earlier)
    with torch.no_grad():
        torch.testing.assert_close(module.model(x, t, mask, props, known, x_self=estimate), earlier(x, t, mask, props, known))
    # ... but a student cannot drop it
    assert config_differences(earlier.config, teacher.config) == ["self_condition"]


def test_a_distilled_student_samples_like_the_autoguided_teacher_with_half_the_evaluations(two_molecule_model, shipped, tmp_path):
    domain, tokenizer = shipped
    latents = _latents(domain, tokenizer, [OILY, POLAR] * 64)
    teacher = load_prior(two_molecule_model[0] / "prior")
    # A weaker guide: the same prior trained briefly.
    guide_run = train_prior(latents, tmp_path / "guide", teacher.config, _settings(max_steps=40, val_size=8, drop_each=0.0))
    guide = guide_run.ema.module.eval()
    module = distill_prior(
        latents, tmp_path / "distill", teacher, guide, DistillSettings(**{**_settings(max_steps=300, val_size=8).__dict__, "lr": 1e-3}),
        autoguidance=2.0, activation="gelu",
    )  # fmt: skip
    student = load_prior(tmp_path / "distill" / "model" / "prior")
    assert student.config.activation == "gelu" and student.config.default_autoguidance == 1.0
    record = json.loads((tmp_path / "distill" / "model" / "prior" / "training.json").read_text())
    assert record["distilled"]["autoguidance"] == 2.0
    # On fresh noisy inputs the student is much closer to the autoguided teacher than the teacher alone is.
    x, t, mask, props, known = _inputs(teacher.config, [0.1, 0.3, 0.5, 0.7, 0.9, 1.0] * 4, seed=1)
    target = module.regression_target(x, t, mask, props, known, target=torch.zeros_like(x))
    with torch.no_grad():
        before = (teacher(x, t, mask, props, known) - target).pow(2).mean()
        after = (student(x, t, mask, props, known) - target).pow(2).mean()
    assert after < 0.3 * before, (float(after), float(before))
    # Sampled with one network evaluation per step, its latents follow the autoguided teacher's.
    base = MolgenPipeline(domain, tokenizer, teacher, "cpu", guide=guide, precision="fp32")
    options = dict(seed=4, batch_size=8, steps=8, restarts=1)
    guided = base.sample_latents(8, autoguidance=2.0, **options)
    alone = base.sample_latents(8, autoguidance=1.0, **options)
    distilled = MolgenPipeline(domain, tokenizer, student, "cpu", precision="fp32")
    assert distilled.guide_evaluations(8, 1) == 0
    ours = distilled.sample_latents(8, **options)
    assert (ours.z - guided.z).pow(2).mean() < 0.3 * (alone.z - guided.z).pow(2).mean()
    assert sum(m.smiles in {domain.canonical(OILY), domain.canonical(POLAR)} for m in distilled.decode(ours)) >= 6


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
