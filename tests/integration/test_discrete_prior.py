"""The discrete autoregressive prior over a quantised (FSQ) tokenizer's codes: its vocabulary, causal context,
cross-entropy loss, a tiny training, and sampling through the pipeline's discrete sampler (conditions, edits,
reproducibility, temperature, nucleus, repairs, property guidance, resampling by predictor, judge and calibration,
and the options it refuses)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from molgen.calibration import fit_calibration
from molgen.checkpoint import load_domain, load_prior, save_prior
from molgen.cli import main
from molgen.dataset import GraphDataset
from molgen.domains.molecule import MoleculeDomain
from molgen.graph import ValenceTable
from molgen.judge.model import GraphJudge, JudgeConfig, walk_returns
from molgen.judge.training import JudgeTrainSettings, LabelledGraphs, train_judge
from molgen.latents import LatentDataset, compute_property_table
from molgen.pipeline import MolgenPipeline
from molgen.prior import build_prior
from molgen.prior.config import PriorConfig
from molgen.prior.discrete import DiscreteAutoregressivePrior
from molgen.prior.predictor import PredictorConfig, PropertyPredictor
from molgen.prior.training import (
    DiscreteAutoregressiveModule, PredictorTrainSettings, prefix_pair, prior_config_from_data, token_vocabulary, train_predictor, train_prior,
)  # fmt: skip
from molgen.records import DecodedMolecule, Latents
from molgen.sampling.config import SamplingConfig, condition_table
from molgen.sampling.base import nucleus
from molgen.sampling.discrete import DiscreteSampler
from molgen.sampling.guidance import PrefixPropertyGuidance, PropertyTargets, RepairSites, Resampling, components

from ..conftest import STEP_COUNTED
from .test_prior import OILY, POLAR, _latents, _model_dir, _settings
from .test_tokenizer import overfit

SMALL = "CC(=O)Nc1ccccc1"  # 10 heavy atoms: a second size
MOLECULES = [OILY, POLAR, SMALL]
ROOT = Path(__file__).resolve().parents[2]
VOCABULARY = [[a, b, c] for a in (-1.0, 0.0, 1.0) for b in (-0.5, 0.5) for c in (-1.0, 1.0)]  # 12 codes of 3 numbers


def _randomised(prior: torch.nn.Module) -> torch.nn.Module:
    """Zero-initialised gates and outputs make a fresh network ignore its inputs: give every weight a value."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0, 0.3)
    return prior.eval()


def _config(**kw) -> PriorConfig:
    base = dict(latent_dim=3, max_nodes=12, d_model=32, n_heads=4, layers=2, relative_positions=5, architecture="discrete", vocabulary=VOCABULARY,
                latent_mean=[0.0] * 3, latent_std=[1.0] * 3)
    return PriorConfig(**(base | kw))


def test_config_needs_a_vocabulary_of_latent_sized_codes():
    with pytest.raises(ValueError, match="needs its vocabulary"):
        _config(vocabulary=[])
    with pytest.raises(ValueError, match="needs its vocabulary"):
        _config(vocabulary=[[0.0, 1.0]])
    with pytest.raises(ValueError, match="default_repairs must be a whole number >= 0, got -1"):
        _config(default_repairs=-1)
    with pytest.raises(ValueError, match="default_top_p"):
        _config(default_top_p=0.0)
    with pytest.raises(ValueError, match="default_top_p"):
        _config(architecture="set", vocabulary=[], default_top_p=0.9)  # a set prior has no softmax to truncate
    assert isinstance(build_prior(_config()), DiscreteAutoregressivePrior)
    assert PriorConfig(**_config().to_dict()) == _config()


def test_ids_and_values_convert_between_codes_and_vocabulary_ids():
    prior = DiscreteAutoregressivePrior(_config())
    ids = torch.tensor([[0, 5, 11], [3, 3, 7]])
    values = prior.values(ids)
    assert values.shape == (2, 3, 3)
    torch.testing.assert_close(values[0, 1], torch.tensor(VOCABULARY[5]))
    assert torch.equal(prior.ids(values), ids)
    assert torch.equal(prior.ids(values + 0.1), ids)  # nearest code


def test_log_likelihood_is_a_distribution_over_the_token_sequences_of_a_size():
    config = _config(property_names=["a"], property_mean=[0.0], property_std=[1.0])
    prior = _randomised(DiscreteAutoregressivePrior(config)).eval()
    pairs = torch.cartesian_prod(torch.arange(12), torch.arange(12))  # every sequence of two tokens
    z, mask = prior.values(pairs), torch.ones(144, 2, dtype=torch.bool)
    with torch.no_grad():
        plain = prior.log_likelihood(z, mask)
        conditioned = prior.log_likelihood(z, mask, torch.full((144, 1), 1.5), torch.ones(144, 1, dtype=torch.bool))
        padded = prior.log_likelihood(torch.cat([z, prior.values(torch.zeros(144, 1, dtype=torch.long))], 1), torch.cat([mask, torch.zeros(144, 1, dtype=torch.bool)], 1))
    torch.testing.assert_close(plain.exp().sum(), torch.tensor(1.0))
    torch.testing.assert_close(conditioned.exp().sum(), torch.tensor(1.0))
    assert not torch.allclose(plain, conditioned)  # the condition changes which sequences are likely
    torch.testing.assert_close(padded, plain)  # padding is not scored


def test_context_reads_only_the_tokens_before_each_position_and_the_cache_agrees():
    config = _config(property_names=["a", "b"], property_mean=[0.0, 0.0], property_std=[1.0, 1.0])
    prior = _randomised(DiscreteAutoregressivePrior(config))
    ids, sizes = torch.randint(0, 12, (3, 9), generator=torch.Generator().manual_seed(0)), torch.tensor([9, 8, 9])
    values, given = torch.randn(3, 2), torch.tensor([[True, False], [True, True], [False, False]])
    base = prior.context(ids, sizes, values, given)
    changed = ids.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 12
    out = prior.context(changed, sizes, values, given)
    torch.testing.assert_close(out[:, :5], base[:, :5])
    assert (out[:, 5:] - base[:, 5:]).abs().amax() > 1e-3
    cache = prior.start_cache()
    steps = [prior.context_step(None if j == 0 else ids[:, j - 1], cache, sizes, values, given) for j in range(9)]
    torch.testing.assert_close(torch.stack(steps, 1), base, atol=1e-5, rtol=1e-4)


def test_vocabulary_is_the_distinct_codes_and_continuous_latents_are_refused():
    rng = np.random.default_rng(0)
    codes = np.array(VOCABULARY, dtype=np.float32)
    tokens = codes[rng.integers(0, 6, 200)]  # only the first 6 codes occur
    quantised = LatentDataset(mean=tokens, ptr=np.arange(0, 201, 10), properties=np.zeros((20, 0)), property_names=[])
    assert token_vocabulary(quantised) == sorted(map(list, codes[:6].tolist()))
    continuous = LatentDataset(mean=rng.normal(size=(200, 3)).astype(np.float32), ptr=np.arange(0, 201, 10), properties=np.zeros((20, 0)), property_names=[])
    with pytest.raises(ValueError, match="needs a quantised tokenizer"):
        token_vocabulary(continuous)


def test_loss_is_the_cross_entropy_of_the_real_tokens_only():
    config = _config()
    module = DiscreteAutoregressiveModule(config.to_dict())
    with torch.no_grad():  # a head that knows nothing: every code equally likely, loss log(V)
        module.model.head.weight.zero_()
        module.model.head.bias.zero_()
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    z = torch.tensor(VOCABULARY)[torch.randint(0, 12, (2, 6))] * mask.unsqueeze(-1)
    batch = (z, mask, torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool))
    assert module.loss(module.model, batch, drop=False).item() == pytest.approx(np.log(12), abs=1e-5)
    # with a real head, the loss is the cross entropy of the next token at the 9 real positions, padding ignored
    model = _randomised(module.model)
    ids = model.ids(z)
    expected = F.cross_entropy(model.head(model.context(ids, mask.sum(1)))[mask], ids[mask])
    z[1, 3:] = torch.tensor([1.0, 0.5, 1.0])  # padding values must not count
    assert module.loss(model, batch, drop=False).item() == pytest.approx(expected.item(), rel=1e-5)


def test_checkpoint_round_trip_rebuilds_the_discrete_network(tmp_path):
    prior = _randomised(DiscreteAutoregressivePrior(_config()))
    save_prior(prior, tmp_path / "prior")
    loaded = load_prior(tmp_path / "prior")
    assert isinstance(loaded, DiscreteAutoregressivePrior) and loaded.config == prior.config
    ids = torch.randint(0, 12, (2, 6))
    torch.testing.assert_close(loaded.context(ids, torch.tensor([6, 5])), prior.context(ids, torch.tensor([6, 5])))


@pytest.fixture(scope="module")
def discrete_model(tmp_path_factory):
    """A tiny FSQ tokenizer overfit on three molecules (two sizes) and a discrete prior trained on its codes,
    as a complete model directory."""
    domain = MoleculeDomain.fit(MOLECULES)
    tokenizer = overfit(domain, MOLECULES, "fsq", steps=300)
    pipe = MolgenPipeline(domain, tokenizer)
    assert [m.smiles for m in pipe.decode(pipe.encode(MOLECULES), decoding="raw")] == [domain.canonical(s) for s in MOLECULES]
    latents = _latents(domain, tokenizer, MOLECULES * 48)
    config = prior_config_from_data(latents, tokenizer.config.max_nodes, d_model=32, n_heads=4, layers=2, relative_positions=8, architecture="discrete")
    assert len(config.vocabulary) <= 15 + 15 + 10  # the codes of three molecules' atoms
    tmp = tmp_path_factory.mktemp("discrete")
    train_prior(latents, tmp / "run", config, _settings(max_steps=600, val_size=8, drop_each=0.0))
    return _model_dir(tmp, domain, tokenizer, tmp / "run")


def test_discrete_prior_samples_its_training_molecules(discrete_model):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    assert isinstance(pipe.prior, DiscreteAutoregressivePrior)
    samples = pipe.sample(36, seed=0, batch_size=18, decoding="raw", properties=False)
    counts = Counter(m.smiles for m in samples)
    known = {pipe.domain.canonical(s) for s in MOLECULES}
    assert sum(counts[s] for s in known) >= 30, counts  # a ~1% slip per token at temperature 1
    assert all(counts[s] >= 3 for s in known), counts  # every training molecule, not one mode
    small = pipe.sample(24, seed=1, num_nodes=10, decoding="raw", properties=False)
    assert Counter(m.smiles for m in small)[pipe.domain.canonical(SMALL)] >= 18  # the one training molecule of 10 atoms
    # every token is one of the vocabulary's codes, exactly
    latents = pipe.sample_latents(20, seed=2)
    codes = pipe.prior.values(pipe.prior.ids(latents.z))
    torch.testing.assert_close(latents.z[latents.mask], codes[latents.mask], atol=1e-5, rtol=0)


def test_discrete_sampling_is_reproducible_and_follows_the_temperature(discrete_model):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    first = pipe.sample_latents(30, seed=3, batch_size=10)
    torch.testing.assert_close(first.z, pipe.sample_latents(30, seed=3, batch_size=10).z)
    assert not torch.equal(first.z, pipe.sample_latents(30, seed=4, batch_size=10).z)
    # a high temperature flattens the softmax: far fewer samples are training molecules
    known = {pipe.domain.canonical(s) for s in MOLECULES}
    hot = pipe.sample(30, seed=3, temperature=50.0, decoding="raw", properties=False)
    cold = pipe.sample(30, seed=3, temperature=0.5, decoding="raw", properties=False)
    assert sum(m.smiles in known for m in cold) >= 28
    assert sum(m.smiles in known for m in hot) <= 10


def test_discrete_conditioning_steers_toward_the_requested_molecule(discrete_model):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    for target, other in ((OILY, POLAR), (POLAR, OILY)):
        samples = pipe.sample(20, seed=1, num_nodes=15, conditions={"logP": logp[target]}, guidance_scale=2.0, decoding="raw")
        counts = Counter(m.smiles for m in samples)
        assert counts[pipe.domain.canonical(target)] >= 14, (target, counts)
        assert counts[pipe.domain.canonical(other)] <= 4, (target, counts)


def test_discrete_edits_keep_tokens_exactly_and_stay_near_the_start(discrete_model):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    start = pipe.encode([OILY])
    keep = torch.zeros(1, start.z.shape[1], dtype=torch.bool)
    keep[0, :8] = True
    out = pipe.sample_latents(6, seed=0, start=start, strength=1.0, keep=keep)
    torch.testing.assert_close(out.z[:, :8], start.z[:, :8].expand(6, -1, -1))
    near = pipe.decode(pipe.sample_latents(32, seed=0, start=start, strength=0.2), decoding="raw")
    assert sum(m.smiles == pipe.domain.canonical(OILY) for m in near) >= 22  # about 7 in 8; from scratch, about 1 in 2
    # strength 0 would keep everything: a tiny strength changes at most a token or two of 15
    tiny = pipe.sample_latents(8, seed=0, start=start, strength=0.05)
    changed = (pipe.prior.ids(tiny.z) != pipe.prior.ids(start.z)).sum(1)
    assert int(changed.max()) <= 3


def test_nucleus_sampling_narrows_each_choice_to_the_likeliest_codes(discrete_model):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    # a tiny nucleus is the single likeliest code: every seed gives the same (greedy) tokens, even when hot
    greedy = [pipe.sample_latents(6, seed=s, num_nodes=15, temperature=50.0, top_p=1e-6).z for s in (0, 1)]
    torch.testing.assert_close(greedy[0], greedy[1])
    assert torch.equal(greedy[0], greedy[0][:1].expand(6, -1, -1))
    # at a high temperature the full softmax wanders off the training molecules; a nucleus of 0.5 keeps them
    known = {pipe.domain.canonical(s) for s in MOLECULES}
    wide = pipe.sample(30, seed=3, temperature=2.0, decoding="raw", properties=False)
    narrow = pipe.sample(30, seed=3, temperature=2.0, top_p=0.5, decoding="raw", properties=False)
    assert sum(m.smiles in known for m in narrow) >= 27
    assert sum(m.smiles in known for m in wide) <= 10
    # the model's default_top_p applies when none is given
    pipe.prior.config.default_top_p = 1e-6
    torch.testing.assert_close(pipe.sample_latents(6, seed=5, num_nodes=15, temperature=50.0).z, greedy[0])
    with pytest.raises(ValueError, match="top_p=0: must be a finite number > 0"):
        pipe.sample_latents(2, seed=0, top_p=0)
    with pytest.raises(ValueError, match=r"top_p=1.5: must be a number in \(0, 1\]"):
        pipe.sample_latents(2, seed=0, top_p=1.5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampler": "heun"}, "sampler='heun': a discrete prior draws each token from its softmax and uses no scheduler"),
        ({"property_guidance": 1.0, "conditions": {"logP": 1.0}}, "property_guidance needs a property predictor.*molgen train predictor"),
        ({"calibrated": True}, r"calibrated=True: this model has no calibration \(calibration/ in its directory"),
        ({"candidates": 3}, "candidates=3: nothing to choose among the candidates by"),
        ({"candidates": 0}, "candidates=0: must be a whole number >= 1"),
        ({"repairs": -1}, "repairs=-1: must be a whole number >= 0"),
    ],
)
def test_discrete_sampling_refuses_what_it_cannot_do(discrete_model, options, message):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    with pytest.raises(ValueError, match=message):
        pipe.sample_iter(2, seed=0, **options)  # refused when called, before any molecule is asked for
    with pytest.raises(ValueError, match=message):
        pipe.sample_latents(2, seed=0, **options)


def test_the_pipeline_samples_a_discrete_prior_through_the_discrete_sampler(discrete_model, monkeypatch):
    """``pipe.sampler`` is the discrete prior's :class:`DiscreteSampler`, made from the pipeline's current parts; the
    pipeline splits a request into batches, has the sampler draw each, and returns (or decodes) what it drew."""
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu", precision="fp32")
    sampler = pipe.sampler
    assert isinstance(sampler, DiscreteSampler) and sampler.prior is pipe.prior and sampler.decoder is pipe.decoder
    assert sampler.predictor is None and sampler.judge is None and sampler.calibration is None
    drawn = []  # (count, latents) of each call
    original = DiscreteSampler.sample
    monkeypatch.setattr(DiscreteSampler, "sample", lambda self, count, *args: drawn.append((count, original(self, count, *args))) or drawn[-1][1])
    config = SamplingConfig(batch_size=4)
    through = pipe.sample_latents(10, config, seed=3)
    assert [count for count, _ in drawn] == [4, 4, 2]
    torch.testing.assert_close(through.z, Latents.concat([latents for _, latents in drawn]).z)
    torch.testing.assert_close(pipe.sample_latents(10, config, seed=3).z, through.z)  # the same seed, the same draws
    drawn.clear()
    molecules = pipe.sample(10, config, seed=3, decoding="raw", properties=False)
    assert [m.smiles for m in molecules] == [m.smiles for m in pipe.decode(Latents.concat([latents for _, latents in drawn]), decoding="raw")]
    pipe.precision = "bf16"
    assert pipe.sampler.precision.dtype == torch.bfloat16


def test_export_last_weights_replaces_the_ema_average_with_the_trained_network(discrete_model, tmp_path):
    """scripts/export_last_weights.py: RUN/model copied with the prior's weights taken from RUN/checkpoints/last.ckpt."""
    spec = importlib.util.spec_from_file_location("export_last_weights", ROOT / "scripts" / "export_last_weights.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = discrete_model.parent / "run"
    script.main(str(run), str(tmp_path / "last"))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    exported, ema = load_prior(tmp_path / "last" / "prior").state_dict(), load_prior(run / "model" / "prior").state_dict()
    trained = {k[len("model.") :]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    assert exported.keys() == trained.keys()
    for name, value in exported.items():
        torch.testing.assert_close(value, trained[name])
    assert any(not torch.equal(exported[k], ema[k]) for k in exported)  # not the EMA export it started from
    training = json.loads((tmp_path / "last" / "prior" / "training.json").read_text())
    assert training["weights"] == "last (not EMA)" and training["global_step"] == checkpoint["global_step"] == 600


def test_nucleus_keeps_the_most_likely_codes_that_hold_top_p():
    probs = torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05], [0.9, 0.04, 0.03, 0.02, 0.01]])
    kept = nucleus(probs, 0.75)
    torch.testing.assert_close(kept, torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.0], [0.9, 0.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(nucleus(probs, 0.85), torch.tensor([[0.1, 0.5, 0.0, 0.3, 0.0], [0.9, 0.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(nucleus(probs, 1.0), probs)


def test_bf16_mixed_training_learns_the_codes_and_exports_float32_weights(discrete_model, tmp_path):
    """precision="bf16-mixed" (molgen train ... --precision bf16-mixed): the network runs under bfloat16 autocast,
    its weights stay float32, and it learns the training molecules as the float32 training does."""
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    latents = _latents(pipe.domain, pipe.tokenizer, MOLECULES * 48)
    config = prior_config_from_data(latents, pipe.tokenizer.config.max_nodes, d_model=32, n_heads=4, layers=2, relative_positions=8, architecture="discrete")
    train_prior(latents, tmp_path / "run", config, _settings(max_steps=600, val_size=8, drop_each=0.0, precision="bf16-mixed"))
    lines = next((tmp_path / "run" / "logs").rglob("metrics.csv")).read_text().splitlines()
    column = lines[0].split(",").index("train/loss")
    losses = [float(r.split(",")[column]) for r in lines[1:] if r.split(",")[column]]
    assert losses[-1] < 0.25 * losses[0]
    prior = load_prior(tmp_path / "run" / "model" / "prior")
    assert all(value.dtype == torch.float32 for value in prior.state_dict().values())
    model = _model_dir(tmp_path, pipe.domain, pipe.tokenizer, tmp_path / "run")
    known = {pipe.domain.canonical(s) for s in MOLECULES}
    bf16 = sum(m.smiles in known for m in MolgenPipeline.from_pretrained(model, device="cpu").sample(60, seed=0, decoding="raw", properties=False))
    fp32 = sum(m.smiles in known for m in pipe.sample(60, seed=0, decoding="raw", properties=False))  # the same training in float32
    assert bf16 >= 48 and bf16 >= fp32 - 6, (bf16, fp32)


def test_prefix_pair_keeps_a_prefix_of_each_graph_and_says_how_much_is_unknown():
    z = torch.randn(200, 6, 3)
    mask = torch.arange(6)[None, :] < torch.tensor([6, 4] * 100)[:, None]
    x, t = prefix_pair(z * mask.unsqueeze(-1), mask, torch.Generator().manual_seed(0))
    known = (x != 0).all(-1)  # (B, N)
    k = known.sum(1)
    assert torch.equal(known, torch.arange(6)[None, :] < k[:, None])  # a prefix, nothing after it
    torch.testing.assert_close(x[known], z[known])
    torch.testing.assert_close(t, 1 - k / mask.sum(1))
    assert set(k[::2].tolist()) == set(range(7)) and set(k[1::2].tolist()) == set(range(5))  # every length, none past the graph


def test_property_guidance_steers_a_discrete_prior_with_a_prefix_predictor(discrete_model, tmp_path):
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    latents = _latents(pipe.domain, pipe.tokenizer, MOLECULES * 48)
    config = PredictorConfig.for_prior(pipe.prior.config, d_model=32, n_heads=4, layers=2)
    settings = PredictorTrainSettings(batch_size=32, lr=3e-3, warmup_steps=10, max_steps=300, val_size=8, progress=False, accelerator="cpu", devices=1, threads=1, **STEP_COUNTED)
    train_predictor(latents, tmp_path / "run", config, pipe.prior.config, settings)
    assert json.loads((tmp_path / "run" / "model" / "predictor" / "training.json").read_text())["global_step"] == 300
    model = tmp_path / "model"
    shutil.copytree(discrete_model, model)
    shutil.copytree(tmp_path / "run" / "model" / "predictor", model / "predictor")
    guided = MolgenPipeline.from_pretrained(model, device="cpu")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    for target, other in ((OILY, POLAR), (POLAR, OILY)):
        # guidance scale 0: the prior samples unconditionally; only the predictor knows the target
        options = dict(seed=1, num_nodes=15, conditions={"logP": logp[target]}, guidance_scale=0.0, decoding="raw", properties=False)
        plain = Counter(m.smiles for m in guided.sample(40, **options))
        steered = Counter(m.smiles for m in guided.sample(40, property_guidance=1.0, **options))
        assert steered[pipe.domain.canonical(target)] >= 31, (target, steered)  # about 37 of 40; about 20 unsteered
        assert steered[pipe.domain.canonical(target)] > plain[pipe.domain.canonical(target)] + 5, (target, plain, steered)
        # resampling 4 candidates per sample by the predictor's reading of the whole graph keeps the target too, never
        # the other molecule (a few raw decodings break)
        chosen = Counter(m.smiles for m in guided.sample(40, property_guidance=1.0, candidates=4, **options))
        assert chosen[pipe.domain.canonical(target)] >= 31 and chosen[pipe.domain.canonical(other)] == 0, (target, chosen)
        assert chosen[pipe.domain.canonical(target)] > plain[pipe.domain.canonical(target)] + 5, (target, plain, chosen)
    guided.predictor.config.default_candidates = 3  # the predictor's default applies with conditions only
    calls = []
    original = Resampling.pick
    Resampling.pick = lambda self, *a, **k: calls.append((self.candidates, self.properties.scale)) or original(self, *a, **k)
    try:
        guided.sample(6, seed=0, conditions={"logP": 1.0}, property_guidance=2.0, properties=False)
        guided.sample(6, seed=0, conditions={"logP": 1.0}, properties=False)  # no steering: still judged by the predictor, at weight 1
        guided.sample(6, seed=0, properties=False)
    finally:
        Resampling.pick = original
    assert calls == [(3, 2.0), (3, 1.0)]
    # without token-by-token steering, the candidates nearest the target by the predictor are kept
    options = dict(seed=1, num_nodes=15, conditions={"logP": logp[OILY]}, guidance_scale=0.0, decoding="raw", properties=False)
    unsteered = Counter(m.smiles for m in guided.sample(40, candidates=6, selection="best", **options))
    plain = Counter(m.smiles for m in guided.sample(40, candidates=1, **options))
    assert unsteered[pipe.domain.canonical(OILY)] >= 32 and unsteered[pipe.domain.canonical(OILY)] > plain[pipe.domain.canonical(OILY)] + 5, (plain, unsteered)
    guided.predictor.config.default_candidates = 1
    # selection: the predictor's default_selection under property guidance, else a draw; a request's own wins
    selections = []
    Resampling.pick = lambda self, *a, **k: selections.append(self.selection) or original(self, *a, **k)
    try:
        guided.predictor.config.default_selection = "best"
        guided.sample(4, seed=0, conditions={"logP": 1.0}, property_guidance=1.0, candidates=2, properties=False)
        guided.sample(4, seed=0, conditions={"logP": 1.0}, property_guidance=1.0, candidates=2, selection="draw", properties=False)
        guided.predictor.config.default_selection = "draw"
        guided.sample(4, seed=0, conditions={"logP": 1.0}, property_guidance=1.0, candidates=2, properties=False)
    finally:
        Resampling.pick = original
    assert selections == ["best", "draw", "draw"]
    with pytest.raises(ValueError, match="selection='top'"):
        guided.sample_iter(4, conditions={"logP": 1.0}, property_guidance=1.0, candidates=2, selection="top")
    # requests that cannot work are refused when called, before any sampling
    with pytest.raises(ValueError, match="give conditions"):
        guided.sample_iter(2, property_guidance=0.5)
    with pytest.raises(ValueError, match="property_guidance=-1: must be a finite number >= 0"):
        guided.sample_iter(2, property_guidance=-1, conditions={"logP": 1.0})
    other = PredictorConfig(**{**guided.predictor.config.to_dict(), "latent_std": [1.0] * guided.prior.config.latent_dim})
    with pytest.raises(ValueError, match="trained for another prior.*latent_std"):
        MolgenPipeline(guided.domain, guided.tokenizer, guided.prior, predictor=PropertyPredictor(other))


def test_prefix_guidance_reweights_the_likeliest_codes_by_the_predicted_error_and_drops_the_rest():
    def first_token(x, t, mask):  # a "predictor" of one property: the first coordinate of the graph's first token
        return x[:, 0, :1]

    codes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    steer = PrefixPropertyGuidance(PropertyTargets(first_token, torch.tensor([[2.0], [2.0]]), torch.ones(2, 1), 1.0), codes, top_k=3)
    logp = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1]]))
    mask = torch.tensor([[True, True], [False, False]])  # the second graph gets no token at position 0
    out = steer(logp, torch.zeros(2, 2, 2), 0, mask)
    # codes 0, 1, 2 tried: predicted 0, 1, 2 against target 2 -> errors 4, 1, 0; code 3 (least likely) not drawn
    torch.testing.assert_close(out[0, :3], logp[0, :3] - torch.tensor([4.0, 1.0, 0.0]))
    assert out[0, 3] == float("-inf")
    torch.testing.assert_close(out[1], logp[1])
    # the same guidance for a subset of the graphs, in any order; a stronger scale weighs the error more
    torch.testing.assert_close(steer.rows(torch.tensor([0]))(logp[:1], torch.zeros(1, 2, 2), 0, mask[:1]), out[:1])
    strong = PrefixPropertyGuidance(PropertyTargets(first_token, torch.tensor([[2.0]]), torch.ones(1, 1), 3.0), codes, top_k=3)
    torch.testing.assert_close(strong(logp[:1], torch.zeros(1, 2, 2), 0, mask[:1])[0, :3], logp[0, :3] - 3 * torch.tensor([4.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="top_k=0"):
        PrefixPropertyGuidance(steer.inner, codes, top_k=0)


def test_repair_sites_are_nodes_over_capacity_their_neighbours_and_stray_fragments():
    """RepairSites reads the argmax graph: in graph 0 node 1 carries three double bonds (6 > carbon's 4), so it and
    its three neighbours are at fault; graph 1 falls apart into 0-1 and 2-3, so 2 and 3 are; graph 2 is a valid
    chain; padding never counts."""
    pairs, labels = [], []
    bonds = {0: {(0, 1): 2, (1, 2): 2, (1, 3): 2}, 1: {(0, 1): 1, (2, 3): 1}, 2: {(0, 1): 1, (1, 2): 2}}
    for b in range(3):
        for i in range(4):
            for j in range(i + 1, 4):
                pairs.append((b, i, j))
                labels.append(bonds[b].get((i, j), 0))
    edge_logits = F.one_hot(torch.tensor(labels), 4).float() * 10
    out = SimpleNamespace(node_logits=[torch.zeros(3, 4, 1)], edge_logits=edge_logits, pairs=torch.tensor(pairs))
    tokenizer = SimpleNamespace(decode_logits=lambda z, mask: out)
    sites = RepairSites(tokenizer, ValenceTable(capacity=[[4.0]], edge_orders=[0.0, 1.0, 2.0, 3.0]))
    mask = torch.tensor([[True] * 4, [True] * 4, [True, True, True, False]])
    faulty = sites(torch.zeros(3, 4, 2), mask)
    assert faulty.tolist() == [[True] * 4, [False, False, True, True], [False] * 4]


def _adjacency(n: int, edges: list[tuple[int, int]]) -> torch.Tensor:
    adj = torch.zeros(n, n, dtype=torch.bool)
    for i, j in edges:
        adj[i, j] = adj[j, i] = True
    return adj


def test_components_label_each_fragment_by_its_smallest_node():
    adj = torch.stack([_adjacency(6, [(0, 3), (3, 5), (1, 2)]), _adjacency(6, [(0, 1), (1, 2), (2, 3)])])
    mask = torch.tensor([[True] * 6, [True, True, True, True, False, False]])
    labels = components(adj, mask)
    assert labels[0].tolist() == [0, 1, 1, 0, 4, 0]
    assert labels[1].tolist() == [0, 0, 0, 0, 4, 5]  # padding keeps its own index


def test_valence_table_of_the_molecule_domain():
    """What repair passes check against: the largest valence of each element (and charge) of the shipped model's
    vocabulary, and each bond label's order."""
    domain = load_domain(ROOT / "checkpoints" / "moses" / "domain.json")
    table = domain.valence_table()
    assert isinstance(table, ValenceTable)
    by_element = dict(zip(domain.vocab.node_values[0], (row[0] for row in table.capacity), strict=True))
    assert by_element[6] == 4 and by_element[7] == 3 and by_element[8] == 2 and by_element[9] == 1
    assert table.edge_orders == [0.0, 1.0, 2.0, 3.0]


def test_resampling_keeps_one_candidate_per_group_by_the_predicted_error_to_its_targets():
    def reader(x, t, mask):  # a "predictor" reading the second latent of the first token as the one property
        assert torch.all(t == 0)  # finished graphs: every token known
        return x[:, 0, 1:2]

    x = torch.zeros(12, 2, 3)
    x[:, 0, 1] = torch.tensor([0.0, 1.0, 2.0] * 4)
    mask = torch.ones(12, 2, dtype=torch.bool)
    values, given = torch.tensor([[0.0], [1.0], [2.0], [2.0]]), torch.tensor([[1.0], [1.0], [1.0], [0.0]])
    by_error = Resampling(3, properties=PropertyTargets(reader, values, given, scale=100.0))
    # the score is minus scale x the squared error to the group's targets (groups of 3, across chunks of 5 graphs)
    errors = torch.tensor([0.0, 1.0, 4.0, 1.0, 0.0, 1.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(by_error.scores(x, mask, batch=5), -100.0 * errors)
    # each group keeps its candidate nearest its target; a group without a target: any of them
    chosen = by_error.choose(x, mask, torch.Generator().manual_seed(1), batch=4).tolist()
    assert chosen[:3] == [0, 4, 8] and 9 <= chosen[3] <= 11
    # "draw" keeps one in proportion to exp(score): with scale 0, each candidate about a third of the time
    flat = Resampling(3, properties=PropertyTargets(reader, values, given, scale=0.0))
    picks = torch.cat([flat.choose(x, mask, torch.Generator().manual_seed(s)) % 3 for s in range(300)])
    assert all(350 <= int((picks == k).sum()) <= 450 for k in range(3))
    # "best" keeps the highest score of each group whatever the seed, even where a draw spreads (scale 0.01)
    mild = PropertyTargets(reader, values, given, scale=0.01)
    best = Resampling(3, properties=mild, selection="best")
    assert {tuple(best.choose(x, mask, torch.Generator().manual_seed(s)).tolist()) for s in range(20)} == {(0, 4, 8, 9)}
    assert len({tuple(Resampling(3, properties=mild).choose(x, mask, torch.Generator().manual_seed(s)).tolist()) for s in range(20)}) > 1
    # without a predictor (a calibration's or a judge's log weights, added by the sampler) the scores start at zero
    judged = Resampling(2, judged=True, selection="best")
    assert torch.equal(judged.scores(x, mask), torch.zeros(12))
    assert judged.pick(torch.tensor([0.0, 5.0, 3.0, -1.0]), torch.Generator().manual_seed(0)).tolist() == [1, 2]
    with pytest.raises(ValueError, match="selection='nearest'"):
        Resampling(3, properties=mild, selection="nearest")
    with pytest.raises(ValueError, match="12 graphs do not split into groups of 5"):
        Resampling(5, properties=mild).choose(x, mask, torch.Generator())
    with pytest.raises(ValueError, match="candidates=0"):
        Resampling(0, properties=mild)
    with pytest.raises(ValueError, match="nothing to choose"):
        Resampling(2)


class _Donors(MoleculeDomain):
    """The molecule domain with hydrogen-bond donors as its calibration statistic: the three training molecules
    all have one (aromatic) ring, but 0 (OILY), 5 (POLAR) and 1 (SMALL) donors."""

    statistic_names = ("HBD",)


def test_calibration_resamples_a_discrete_priors_samples_toward_the_datas_statistics(discrete_model):
    base = MolgenPipeline.from_pretrained(discrete_model, device="cpu")
    domain = _Donors(base.domain.vocab, base.domain.standardize_with, base.domain.hydrogens)
    calibration = fit_calibration(MolgenPipeline(domain, base.tokenizer, base.prior), [OILY] * 30, 90, seed=0, candidates=4)
    assert calibration.config.data_counts == {"0": 30} and {"0", "1", "5"} <= set(calibration.config.model_counts)
    assert calibration.config.sampling == {"samples": 90, "seed": 0, "data_items": 30}
    pipe = MolgenPipeline(domain, base.tokenizer, base.prior, calibration=calibration)
    oily = domain.canonical(OILY)
    options = dict(seed=2, decoding="raw", properties=False)
    plain = Counter(m.smiles for m in pipe.sample(48, calibrated=False, **options))
    kept = Counter(m.smiles for m in pipe.sample(48, **options))  # on by default: the calibration's 4 candidates per sample
    assert plain[oily] <= 24, plain
    # each group keeps the oily molecule unless none of its 4 candidates is (about (2/3)^4 = 20% of groups)
    assert kept[oily] >= 32 and kept[oily] >= plain[oily] + 12, (plain, kept)
    # the molecules sample_iter returns are the decoding of the latents it kept (decoded once, to choose)
    latents = pipe.sample_latents(20, seed=5, batch_size=8)
    assert [m.smiles for m in pipe.decode(latents, decoding="valence")] == [m.smiles for m in pipe.sample(20, seed=5, batch_size=8, properties=False)]
    assert latents.decoding == "valence" and [m.smiles for m in latents.decoded] == [m.smiles for m in pipe.decode(latents, decoding="valence")]
    # resampled latents are seeded, trimmed to the longest graph kept, and a given size holds for every candidate
    again = pipe.sample_latents(20, seed=4, batch_size=7)
    torch.testing.assert_close(again.z, pipe.sample_latents(20, seed=4, batch_size=7).z)
    assert again.mask.sum(1).max() == again.mask.shape[1]
    assert pipe.sample_latents(6, seed=0, num_nodes=10).mask.sum(1).tolist() == [10] * 6
    assert len(pipe.sample(5, seed=0, candidates=1, properties=False)) == 5  # 1: no resampling
    # edits sample as drawn; asking for calibration or candidates there, or for calibration without one, is refused
    # before sampling
    start = pipe.encode([OILY])
    torch.testing.assert_close(pipe.sample_latents(4, seed=0, start=start, strength=0.3).z, base.sample_latents(4, seed=0, start=start, strength=0.3).z)
    with pytest.raises(ValueError, match="calibrated=True: .* not edits"):
        pipe.sample_latents(4, seed=0, start=start, strength=0.3, calibrated=True)
    with pytest.raises(ValueError, match="candidates=3: resampling whole graphs needs .* not edits"):
        pipe.sample_latents(4, seed=0, start=start, strength=0.3, candidates=3)
    with pytest.raises(ValueError, match="calibrated=True: this model has no calibration"):
        base.sample_iter(4, calibrated=True)
    with pytest.raises(ValueError, match="calibrated='yes'"):
        pipe.sample_iter(4, calibrated="yes")
    with pytest.raises(ValueError, match=r"calibration over \['HBD'\]: not statistics"):
        MolgenPipeline(base.domain, base.tokenizer, base.prior, calibration=calibration)


def test_molgen_calibrate_writes_a_calibration_the_model_then_samples_with(discrete_model, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(discrete_model, model)
    data = tmp_path / "train.smi"
    data.write_text("\n".join([*MOLECULES * 4, "not a smiles"]) + "\n")
    with caplog.at_level("WARNING", logger="molgen.calibration"):
        assert main(["calibrate", str(data), "--model", str(model), "--samples", "24", "--data-size", "100", "--candidates", "3", "--no-progress"]) == 0
    assert "1 of 13 data items could not be read" in caplog.text  # the bad row is reported and skipped
    config = json.loads((model / "calibration" / "config.json").read_text())
    assert config["properties"] == ["rings", "aromatic_rings", "unusual_rings"] and config["candidates"] == 3
    assert config["data_counts"] == {"1,1,0": 12} and sum(config["model_counts"].values()) <= 24
    pipe = MolgenPipeline.from_pretrained(model, device="cpu")
    assert pipe.calibration is not None and pipe.calibration.check_prior(model / "prior" / "model.safetensors")
    assert len(pipe.sample(6, seed=0, properties=False)) == 6
    # retraining the prior makes it stale: loading warns
    prior = load_prior(model / "prior")
    with torch.no_grad():
        prior.head.bias.add_(0.01)
    save_prior(prior, model / "prior")
    with caplog.at_level("WARNING", logger="molgen.calibration"):
        MolgenPipeline.from_pretrained(model, device="cpu")
    assert "stale" in caplog.text
    assert main(["calibrate", str(data), "--model", str(model), "--samples", "0"]) == 2


def test_optimize_remasks_one_span_of_a_discrete_prior(discrete_model):
    from molgen.design import Designer, objectives
    from molgen.design.optimization import DEFAULT_STRENGTH

    designer = Designer.from_pretrained(discrete_model, device="cpu", batch_size=16)
    redrawn = []  # per mutation call: (share of each parent's tokens drawn again, all in one contiguous span)
    sample_latents = designer.pipe.sample_latents

    def recording(n, **options):
        if options.get("start") is not None:
            assert options["strength"] == 1.0  # span edits: the kept tokens stay exactly, the span is drawn anew
            sizes = options["start"].mask.sum(1)
            again = ~options["keep"] & options["start"].mask
            spans = again.sum(1)
            first = again.float().argmax(1)
            assert all(again[r, f : f + k].all() for r, (f, k) in enumerate(zip(first.tolist(), spans.tolist())))
            redrawn.append({round(float(k) / float(size), 1) for k, size in zip(spans, sizes)})
        return sample_latents(n, **options)

    designer.pipe.sample_latents = recording
    designer.optimize(objectives.qed(), start=[OILY], n=4, calls=12, strategy="remask")
    shares = set().union(*redrawn)
    assert redrawn and all(abs(share - DEFAULT_STRENGTH) <= 0.15 for share in shares)  # round(0.3 x size) tokens


def test_analogs_of_a_discrete_prior_redraw_one_contiguous_span(discrete_model):
    from molgen.design import Designer

    designer = Designer.from_pretrained(discrete_model, device="cpu", batch_size=16)
    start = designer.pipe.encode([OILY])
    size = int(start.mask[0].sum())
    ids = lambda z: designer.pipe.prior.ids(z)  # noqa: E731
    out = designer._edit(start, 64, 0.5, None, seed=3)
    changed = ids(out.z[:, :size]) != ids(start.z[:, :size])
    assert changed.any(1).sum() >= 2  # the span's tokens drawn again (the tiny prior mostly draws its own tokens back)
    span = round(0.5 * size)
    for row in changed:
        where = row.nonzero().flatten()
        if len(where):  # every changed token inside one window of the span's length
            assert where.max() - where.min() < span, (where.tolist(), span)
    results = designer.analogs(OILY, 4, strength=0.25, seed=0)
    assert sum(r.state != "duplicate" for r in results) <= 4 and all(r.similarity is not None for r in results if r.smiles)


def _judge_data(pipe: MolgenPipeline, smiles: list[str]) -> LabelledGraphs:
    graphs = GraphDataset.from_graphs([pipe.domain.to_graph(s) for s in smiles], [pipe.domain.canonical(s) for s in smiles], pipe.domain.vocab)
    table = compute_property_table(pipe.domain, graphs.items, pipe.domain.property_names, workers=1)
    return LabelledGraphs(graphs, table, list(pipe.domain.property_names))


def test_a_judge_of_decoded_graphs_keeps_the_candidate_nearest_the_targets(discrete_model, tmp_path, monkeypatch):
    """The judge reads each decoded candidate and the sampler keeps, of each group, the one it predicts nearest the
    targets. Trained for a fixed number of steps from a fixed seed, and sampled in float32 (``precision="auto"`` would
    pick bfloat16 on some CPUs and float32 on others, and so other draws): the same molecules on every machine and
    under any load. What is asserted of the choice holds for any draw: a group keeps the target whenever one of its
    candidates decodes to it, and never a molecule it did not draw."""
    pipe = MolgenPipeline.from_pretrained(discrete_model, device="cpu", precision="fp32")
    tokenizer = pipe.tokenizer.config
    config = JudgeConfig.for_prior(pipe.prior.config, tokenizer.node_vocab_sizes, tokenizer.edge_vocab_size, d_model=32, layers=2, walk_steps=6)
    settings = JudgeTrainSettings(batch_size=16, lr=3e-3, warmup_steps=10, max_steps=150, val_size=6, progress=False, accelerator="cpu", devices=1, threads=1, **STEP_COUNTED)
    judge_run = train_judge(_judge_data(pipe, MOLECULES * 16), tmp_path / "run", config, settings)
    assert judge_run.global_step == 150
    model = tmp_path / "model"
    shutil.copytree(discrete_model, model)
    shutil.copytree(tmp_path / "run" / "model" / "judge", model / "judge")
    judged = MolgenPipeline.from_pretrained(model, device="cpu", precision="fp32")
    assert isinstance(judged.judge, GraphJudge) and judged.predictor is None and judged.sampler.judge is judged.judge
    # it has learnt the three molecules' logP from their graphs
    logp = {s: pipe.domain.properties(s)["logP"] for s in MOLECULES}
    column = config.property_names.index("logP")
    targets = condition_table(judged.prior.config, [{"logP": logp[s]} for s in MOLECULES], 3, judged.device)
    errors = judged.sampler._judge_errors([DecodedMolecule(pipe.domain.canonical(s), "valid") for s in MOLECULES], targets)
    assert float(errors.max()) < 0.1 * ((logp[OILY] - logp[POLAR]) / config.property_std[column]) ** 2, errors
    # guidance scale 0: the prior samples unconditionally; only the judge, reading each decoded candidate, knows the target
    read = []  # the decoded candidates the judge reads, each group's 6 together
    judge_errors = DiscreteSampler._judge_errors
    monkeypatch.setattr(DiscreteSampler, "_judge_errors", lambda self, molecules, *a: read.extend(m.smiles for m in molecules) or judge_errors(self, molecules, *a))
    for target in (OILY, POLAR):
        goal = pipe.domain.canonical(target)
        options = dict(seed=1, num_nodes=15, conditions={"logP": logp[target]}, guidance_scale=0.0, decoding="raw", properties=False)
        plain = Counter(m.smiles for m in judged.sample(40, candidates=1, **options))
        read.clear()
        chosen = [m.smiles for m in judged.sample(40, candidates=6, **options)]
        groups = [read[6 * g : 6 * g + 6] for g in range(40)]
        assert len(read) == 240
        for group, kept in zip(groups, chosen, strict=True):
            assert kept in group  # one of the group's own candidates
            assert kept == goal or goal not in group, (target, group, kept)
        # the prior draws the target about half the time, so nearly every group holds it: far more targets than drawn alone
        assert sum(goal in group for group in groups) >= 32, (target, groups)
        assert chosen.count(goal) > plain[goal] + 8, (target, plain, Counter(chosen))
    monkeypatch.undo()
    # the judge's defaults apply to requests with targets only, and it takes the predictor's place in the score
    judged.judge.config.default_candidates, judged.judge.config.default_selection = 3, "draw"
    calls = []
    pick = Resampling.pick
    monkeypatch.setattr(Resampling, "pick", lambda self, *a, **k: calls.append((self.candidates, self.judged, self.properties, self.selection)) or pick(self, *a, **k))
    judged.sample(6, seed=0, conditions={"logP": 1.0}, properties=False)
    judged.sample(6, seed=0, properties=False)
    judged.sample(6, seed=0, conditions=[{}] * 6, properties=False)  # no targets in any row: nothing to judge
    assert calls == [(3, True, None, "draw")]
    # a judge made for another model is refused when loaded with it
    other_config = JudgeConfig(**{**config.to_dict(), "property_names": ["logP"], "property_mean": [0.0], "property_std": [1.0]})
    with pytest.raises(ValueError, match="judge was trained for another model .*property_names"):
        MolgenPipeline(pipe.domain, pipe.tokenizer, pipe.prior, judge=GraphJudge(other_config))
    wider = JudgeConfig(**{**config.to_dict(), "edge_vocab_size": config.edge_vocab_size + 1})
    with pytest.raises(ValueError, match="graph vocabulary"):
        MolgenPipeline(pipe.domain, pipe.tokenizer, pipe.prior, judge=GraphJudge(wider))


def test_walk_returns_see_rings_and_their_sizes():
    ring6 = torch.zeros(1, 7, 7, dtype=torch.long)
    for i in range(6):
        ring6[0, i, (i + 1) % 6] = ring6[0, (i + 1) % 6, i] = 1 + i % 2  # bond labels do not matter, only edges
    ring6[0, 0, 6] = ring6[0, 6, 0] = 1  # a substituent on atom 0
    mask = torch.ones(1, 7, dtype=torch.bool)
    walks = walk_returns(ring6, mask, 6)[0]  # (7, 6)
    assert torch.all(walks[:, [0, 2, 4]] == 0)  # an even ring and a tree: no odd closed walks
    ring_atom, chain_atom = walks[3], walks[6]
    assert ring_atom[5] > 0 and float(ring_atom[1]) == pytest.approx(0.5)  # two neighbours: back after 2 steps with p 1/2
    assert float(chain_atom[1]) == pytest.approx(1 / 3)  # one neighbour of degree 3
    padded = walk_returns(torch.nn.functional.pad(ring6, (0, 2, 0, 2)), torch.nn.functional.pad(mask, (0, 2)), 6)[0]
    torch.testing.assert_close(padded[:7], walks)
    assert torch.all(padded[7:] == 0)
