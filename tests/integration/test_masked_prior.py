"""The masked diffusion prior over a quantised (FSQ) tokenizer's codes: its config, the masking of training inputs,
the loss on masked tokens, a bidirectional network, the checkpoint round trip, diffusers' AmusedScheduler with
graphs of several sizes in one batch, and a tiny prior trained on the shipped tokenizer's codes of three molecules,
sampled through the pipeline (training molecules, reproducibility, conditions, inpainting, refused options), and
``molgen train prior --architecture masked`` end to end."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import AmusedScheduler

from molgen.checkpoint import load_prior, save_prior
from molgen.cli import main
from molgen.pipeline import MolgenPipeline
from molgen.prior import build_prior
from molgen.prior.config import PriorConfig
from molgen.prior.masked import MaskedDiffusionPrior, mask_tokens
from molgen.prior.training import MaskedDiffusionModule, prior_config_from_data, train_prior
from molgen.records import Latents
from molgen.sampling.config import Edit, SamplingConfig
from molgen.sampling.masked import MaskedSampler

from .test_discrete_prior import MOLECULES, SMALL, VOCABULARY, _randomised
from .test_prior import OILY, POLAR, SHIPPED, _latents, _model_dir, _settings, shipped  # noqa: F401  (fixture: the shipped domain and tokenizer)


def _config(**kw) -> PriorConfig:
    base = dict(latent_dim=3, max_nodes=12, d_model=32, n_heads=4, layers=2, relative_positions=5, architecture="masked", vocabulary=VOCABULARY,
                latent_mean=[0.0] * 3, latent_std=[1.0] * 3, num_nodes_counts=[0] * 4 + [1] * 9)  # fmt: skip
    return PriorConfig(**(base | kw))


# --- the network and its training inputs ------------------------------------------------------------------------


def test_config_needs_a_vocabulary_and_builds_the_masked_network():
    with pytest.raises(ValueError, match="a masked prior needs its vocabulary"):
        _config(vocabulary=[])
    with pytest.raises(ValueError, match="a masked prior needs its vocabulary"):
        _config(vocabulary=[[0.0, 1.0]])
    assert _config(default_top_p=0.9).default_top_p == 0.9  # a softmax over codes: a nucleus default is allowed
    prior = build_prior(_config())
    assert isinstance(prior, MaskedDiffusionPrior) and prior.mask_id == len(VOCABULARY)
    assert prior.token_in.num_embeddings == len(VOCABULARY) + 1 and prior.head.out_features == len(VOCABULARY)  # reads [MASK], never predicts it
    assert PriorConfig(**_config().to_dict()) == _config()
    ids = torch.tensor([[0, 5, 11], [3, 3, 7]])
    assert torch.equal(prior.ids(prior.values(ids) + 0.1), ids)  # the nearest code, as the discrete prior's


def test_mask_tokens_hides_a_cosine_share_of_the_real_tokens_only():
    mask = torch.arange(10)[None, :] < torch.tensor([10, 4] * 2000)[:, None]
    hidden = mask_tokens(mask, torch.Generator().manual_seed(0))
    assert not (hidden & ~mask).any()  # never padding
    counts = hidden.sum(1)
    assert counts.min() >= 1 and torch.all(counts <= mask.sum(1))  # every graph is scored
    # ceil(cos(pi/2 u) n) tokens, u ~ U(0, 1): P(count <= k) = P(cos(pi/2 u) <= k / n) = 1 - 2/pi arccos(k / n)
    for n, rows in ((10, counts[::2]), (4, counts[1::2])):
        for k in range(1, n):
            expected = 1 - 2 / math.pi * math.acos(k / n)
            assert float((rows <= k).float().mean()) == pytest.approx(expected, abs=0.04), (n, k)
    # which tokens: uniform over the positions
    share = hidden[::2].float().mean(0)
    assert float(share.max() - share.min()) < 0.06


def test_loss_is_the_cross_entropy_of_the_masked_real_tokens_only():
    config = _config()
    module = MaskedDiffusionModule(config.to_dict())
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    z = torch.tensor(VOCABULARY)[torch.randint(0, 12, (2, 6), generator=torch.Generator().manual_seed(1))] * mask.unsqueeze(-1)
    batch = (z, mask, torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool))
    with torch.no_grad():  # a head that knows nothing: every code equally likely, loss log(V)
        module.model.head.weight.zero_()
        module.model.head.bias.zero_()
    assert module.loss(module.model, batch, drop=False).item() == pytest.approx(np.log(12), abs=1e-5)
    # with a real network: the cross entropy at the masked positions of its masked input, nothing else
    model = _randomised(module.model)
    ids = model.ids(z) * mask
    hidden = mask_tokens(mask, torch.Generator().manual_seed(3))
    logits = model(ids.masked_fill(hidden, model.mask_id), mask)
    expected = F.cross_entropy(logits[hidden], ids[hidden])
    assert module.loss(model, batch, drop=False, generator=torch.Generator().manual_seed(3)).item() == pytest.approx(expected.item(), rel=1e-5)
    z[1, 3:] = torch.tensor([1.0, 0.5, 1.0])  # padding values must not count
    assert module.loss(model, batch, drop=False, generator=torch.Generator().manual_seed(3)).item() == pytest.approx(expected.item(), rel=1e-5)
    assert hidden.any(1).all() and not (hidden & ~mask).any()


def test_the_network_reads_the_tokens_after_each_position_and_not_the_padding():
    config = _config(property_names=["a"], property_mean=[0.0], property_std=[1.0])
    prior = _randomised(MaskedDiffusionPrior(config))
    ids = torch.randint(0, 12, (3, 9), generator=torch.Generator().manual_seed(0))
    ids[:, 2] = prior.mask_id
    mask = torch.arange(9)[None, :] < torch.tensor([9, 8, 7])[:, None]
    values, given = torch.randn(3, 1), torch.tensor([[True], [True], [False]])
    with torch.no_grad():
        base = prior(ids, mask, values, given)
        later = ids.clone()
        later[:, 6] = (later[:, 6] + 1) % 12
        out = prior(later, mask, values, given)
        assert (out[:, 2] - base[:, 2]).abs().amax(-1).min() > 1e-3  # bidirectional: position 2 reads position 6 after it
        padded = ids.clone()
        padded[2, 7:] = (padded[2, 7:] + 5) % 12
        torch.testing.assert_close(prior(padded, mask, values, given)[2, :7], base[2, :7])  # padding is not read
        assert (prior(ids, mask, -values, given)[:2] - base[:2]).abs().amax() > 1e-3  # the condition is read
        torch.testing.assert_close(prior(ids, mask, -values, given)[2], base[2])  # ... only where it is given
    assert base.shape == (3, 9, 12)


def test_checkpoint_round_trip_rebuilds_the_masked_network(tmp_path):
    prior = _randomised(MaskedDiffusionPrior(_config()))
    save_prior(prior, tmp_path / "prior")
    loaded = load_prior(tmp_path / "prior")
    assert isinstance(loaded, MaskedDiffusionPrior) and loaded.config == prior.config
    ids, mask = torch.randint(0, 13, (2, 6)), torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask), prior(ids, mask))


def test_each_graph_is_unmasked_along_its_own_schedule_whatever_its_padding(monkeypatch):
    """AmusedScheduler counts the tokens left masked as a share of the whole row; the sampler's per-graph
    ``starting_mask_ratio`` makes the count follow each graph's own number of tokens to draw: a graph of 4 tokens
    padded to 12 (or with 8 of 12 tokens kept) is unmasked as a graph of 4 alone."""
    prior = _randomised(MaskedDiffusionPrior(_config()))
    sampler = MaskedSampler(prior, torch.device("cpu"))
    left: list[list[int]] = []  # tokens still masked after each step, per graph
    step = AmusedScheduler.step

    def counted(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        left.append((out.prev_sample == prior.mask_id).sum(1).tolist())
        return out

    monkeypatch.setattr(AmusedScheduler, "step", counted)
    steps = 5  # n cos(pi/2 k / 5) is far from whole numbers for n = 4 and 12: no rounding at the floor
    expected = {}
    for n in (4, 12):  # the unmasking of a graph alone, without padding: floor(n cos(pi/2 (i + 1) / steps)), at least one, at most one less than before
        counts, masked = [], n
        for i in range(steps - 1):
            masked = max(1, min(masked - 1, math.floor(n * math.cos(math.pi / 2 * (i + 1) / steps))))
            counts.append(masked)
        expected[n] = counts + [0]
    sampler.sample(2, SamplingConfig(steps=steps), torch.Generator().manual_seed(0), None, torch.tensor([4, 12]), None)
    assert [row[0] for row in left] == expected[4] and [row[1] for row in left] == expected[12]
    left.clear()
    keep = torch.arange(12)[None, :] < 8  # 8 tokens given: 4 to draw
    start = Latents(prior.values(torch.randint(0, 12, (1, 12))), torch.ones(1, 12, dtype=torch.bool))
    sampler.sample(1, SamplingConfig(steps=steps), torch.Generator().manual_seed(0), None, None, Edit(start, 1.0, keep))
    assert [row[0] for row in left] == expected[4]
    # strength < 1: that share of the tokens not kept is masked (rounded), chosen anew by each random stream
    keep = torch.arange(12)[None, :] < 4  # 8 tokens not kept: 2 masked at strength 0.25
    given = [sampler._given(torch.ones(3, 12, dtype=torch.bool), Edit(start, 0.25, keep), torch.Generator().manual_seed(seed)) for seed in (0, 1)]
    for g in given:
        assert g.sum(1).tolist() == [10] * 3 and g[:, :4].all()
    assert not torch.equal(given[0], given[1]) and not torch.equal(given[0][0], given[0][1])


# --- a tiny prior on the shipped tokenizer's codes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def masked_model(shipped, tmp_path_factory):  # noqa: F811
    """The shipped FSQ tokenizer and a tiny masked prior trained on its codes of three molecules (two sizes), as a
    complete model directory."""
    domain, tokenizer = shipped
    latents = _latents(domain, tokenizer, MOLECULES * 48)
    config = prior_config_from_data(
        latents, tokenizer.config.max_nodes, d_model=32, n_heads=4, layers=2, relative_positions=8, architecture="masked", default_steps=8
    )
    assert config.architecture == "masked" and len(config.vocabulary) <= 15 + 15 + 10  # the codes of three molecules' atoms
    tmp = tmp_path_factory.mktemp("masked")
    train_prior(latents, tmp / "run", config, _settings(max_steps=600, val_size=8, drop_each=0.0))
    return _model_dir(tmp, domain, tokenizer, tmp / "run")


def _known(pipe: MolgenPipeline) -> set[str]:
    return {pipe.domain.canonical(s) for s in MOLECULES}


def test_masked_prior_samples_its_training_molecules(masked_model):
    pipe = MolgenPipeline.from_pretrained(masked_model, device="cpu")
    assert isinstance(pipe.prior, MaskedDiffusionPrior) and isinstance(pipe.sampler, MaskedSampler)
    assert json.loads((masked_model / "prior" / "training.json").read_text())["global_step"] == 600
    samples = pipe.sample(36, seed=0, batch_size=18, decoding="raw", properties=False)  # sizes 10 and 15 in each batch
    counts = Counter(m.smiles for m in samples)
    assert sum(counts[s] for s in _known(pipe)) >= 27, counts  # about 31 of 36: a few tokens drawn together in a step clash
    assert all(counts[s] >= 3 for s in _known(pipe)), counts  # every training molecule, not one mode
    small = pipe.sample(24, seed=1, num_nodes=10, decoding="raw", properties=False)
    assert Counter(m.smiles for m in small)[pipe.domain.canonical(SMALL)] >= 20  # the one training molecule of 10 atoms
    # every token is one of the vocabulary's codes, exactly; padding is zero
    latents = pipe.sample_latents(20, seed=2)
    torch.testing.assert_close(latents.z[latents.mask], pipe.prior.values(pipe.prior.ids(latents.z))[latents.mask], atol=0, rtol=0)
    assert not latents.z[~latents.mask.bool()].any()


def test_masked_sampling_is_reproducible_and_takes_its_steps(masked_model, monkeypatch):
    pipe = MolgenPipeline.from_pretrained(masked_model, device="cpu")
    first = pipe.sample_latents(30, seed=3, batch_size=10)
    torch.testing.assert_close(first.z, pipe.sample_latents(30, seed=3, batch_size=10).z)
    assert not torch.equal(first.z, pipe.sample_latents(30, seed=4, batch_size=10).z)
    calls = []
    forward = MaskedDiffusionPrior.forward
    monkeypatch.setattr(MaskedDiffusionPrior, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    pipe.sample_latents(4, seed=0)
    assert len(calls) == 8  # the model's default_steps
    calls.clear()
    pipe.sample_latents(4, seed=0, steps=3)
    assert len(calls) == 3
    calls.clear()
    pipe.sample_latents(4, seed=0, steps=5, conditions={"logP": 1.0}, guidance_scale=2.0)
    assert len(calls) == 5  # conditional and unconditional rows in one pass
    monkeypatch.undo()
    # a high temperature flattens the softmax: far fewer samples are training molecules; a tiny nucleus is greedy
    hot = pipe.sample(30, seed=3, temperature=50.0, decoding="raw", properties=False)
    narrow = pipe.sample(30, seed=3, temperature=50.0, top_p=1e-6, decoding="raw", properties=False)
    assert sum(m.smiles in _known(pipe) for m in hot) <= 10
    assert sum(m.smiles in _known(pipe) for m in narrow) >= 27


def test_masked_conditioning_steers_toward_the_requested_molecule(masked_model):
    pipe = MolgenPipeline.from_pretrained(masked_model, device="cpu")
    logp = {s: pipe.domain.properties(s)["logP"] for s in (OILY, POLAR)}
    for target, other in ((OILY, POLAR), (POLAR, OILY)):
        samples = pipe.sample(20, seed=1, num_nodes=15, conditions={"logP": logp[target]}, guidance_scale=2.0, decoding="raw")
        counts = Counter(m.smiles for m in samples)
        assert counts[pipe.domain.canonical(target)] >= 14, (target, counts)
        assert counts[pipe.domain.canonical(other)] <= 4, (target, counts)


def test_inpainting_keeps_the_kept_tokens_exactly(masked_model):
    pipe = MolgenPipeline.from_pretrained(masked_model, device="cpu")
    start = pipe.encode([OILY])
    start_ids = pipe.prior.ids(start.z)
    # kept tokens anywhere (not a prefix), the rest drawn again: the kept ones come back exactly, at any strength
    keep = torch.zeros(1, 15, dtype=torch.bool)
    keep[0, [0, 3, 4, 9, 14]] = True
    for strength in (1.0, 0.5, 0.1):
        out = pipe.sample_latents(16, seed=0, start=start, strength=strength, keep=keep)
        torch.testing.assert_close(out.z[:, keep[0]], start.z[:, keep[0]].expand(16, -1, -1), atol=0, rtol=0)
    # the prior fills in the rest: the molecule the kept tokens belong to
    filled = pipe.decode(pipe.sample_latents(16, seed=0, start=start, keep=keep), decoding="raw")
    assert sum(m.smiles == pipe.domain.canonical(OILY) for m in filled) >= 14
    # strength: that share of the other tokens is masked and drawn again, the rest stay as they were
    out = pipe.sample_latents(16, seed=0, start=start, strength=0.2)
    changed = pipe.prior.ids(out.z) != start_ids
    assert int(changed.sum(1).max()) <= 3  # 3 of 15 masked; a redrawn token may come back the same
    # a graph with every token kept is returned as it is
    everything = pipe.sample_latents(3, seed=0, start=start, keep=torch.ones(1, 15, dtype=torch.bool))
    torch.testing.assert_close(everything.z, start.z.expand(3, -1, -1), atol=0, rtol=0)
    # one start per sample, of two sizes in one batch, each keeping its own tokens
    two = pipe.encode([OILY, SMALL])
    keep_two = torch.zeros(2, 15, dtype=torch.bool)
    keep_two[0, :5], keep_two[1, 5:10] = True, True
    out = pipe.sample_latents(2, seed=0, start=two, keep=keep_two)
    assert torch.equal(out.mask, two.mask)
    torch.testing.assert_close(out.z[keep_two], two.z[keep_two], atol=0, rtol=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"repairs": 1}, "repairs=1: an option of a discrete autoregressive prior; this model's prior is a masked diffusion prior"),
        ({"candidates": 3}, "candidates=3: an option of a discrete autoregressive prior"),
        ({"selection": "best"}, "selection='best': an option of a discrete autoregressive prior"),
        ({"calibrated": True}, "calibrated=True: an option of a discrete autoregressive prior"),
        ({"property_guidance": 1.0, "conditions": {"logP": 1.0}}, "property_guidance=1.0: an option of a discrete autoregressive prior"),
        ({"sampler": "euler"}, "sampler='euler': an option of a set flow-matching prior"),
        ({"steps": 0}, "steps=0: must be a whole number >= 1"),
    ],
)
def test_masked_sampling_refuses_what_it_cannot_do(masked_model, options, message):
    pipe = MolgenPipeline.from_pretrained(masked_model, device="cpu")
    with pytest.raises(ValueError, match=message):
        pipe.sample_iter(2, seed=0, **options)  # refused when called, before any molecule is asked for
    with pytest.raises(ValueError, match=message):
        pipe.sample_latents(2, seed=0, **options)
    # the values that leave them off are accepted
    pipe.sample_latents(2, seed=0, repairs=0, candidates=1, calibrated=False, property_guidance=0.0)


# --- the command line ----------------------------------------------------------------------------------------


def test_train_prior_masked_from_the_command_line(tmp_path, capsys):
    """``molgen train prior --architecture masked`` on the shipped model's tokenizer and a few molecules, then
    ``molgen sample`` from the model directory it makes."""
    if not (SHIPPED / "tokenizer" / "model.safetensors").exists():
        pytest.skip("shipped tokenizer not present")
    data = tmp_path / "train.smi"
    data.write_text("\n".join(MOLECULES * 4) + "\n")
    run = tmp_path / "run"
    args = [
        "train", "prior", str(data), "--model", str(SHIPPED), "--out", str(run), "--architecture", "masked", "--max-steps", "6",
        "--d-model", "32", "--heads", "4", "--layers", "1", "--batch-size", "8", "--warmup-steps", "2", "--default-steps", "4",
        "--no-progress", "--accelerator", "cpu", "--devices", "1", "--threads", "1",
    ]  # fmt: skip
    assert main(args) == 0
    config = json.loads((run / "model" / "prior" / "config.json").read_text())
    assert (config["architecture"], config["default_steps"], config["activation"], config["layers"]) == ("masked", 4, "gelu", 1)
    assert 0 < len(config["vocabulary"]) <= 40  # the codes of the three molecules' atoms
    assert json.loads((run / "model" / "prior" / "training.json").read_text())["global_step"] == 6
    assert (run / "model" / "tokenizer" / "model.safetensors").read_bytes() == (SHIPPED / "tokenizer" / "model.safetensors").read_bytes()
    out = tmp_path / "samples.csv"
    sample = ["sample", "-n", "6", "--out", str(out), "--model", str(run / "model"), "--seed", "0", "--steps", "3", "--top-p", "0.9",
              "--device", "cpu", "--no-progress", "--no-properties"]  # fmt: skip
    assert main(sample) == 0
    assert "wrote 6 samples" in capsys.readouterr().err
    assert main([*sample, "--overwrite", "--repairs", "1"]) == 2
    assert "repairs=1: an option of a discrete autoregressive prior" in capsys.readouterr().err
    # the other code family starts from this prior's trunk (--init-from with --architecture); a set prior cannot
    def from_masked(architecture: str, out: str) -> list[str]:
        return ["train", "prior", str(data), "--model", str(SHIPPED), "--out", str(tmp_path / out), "--init-from", str(run / "model"),
                "--architecture", architecture, "--max-steps", "2", "--batch-size", "8", "--warmup-steps", "1", "--no-progress",
                "--accelerator", "cpu", "--devices", "1", "--threads", "1"]  # fmt: skip

    assert main(from_masked("discrete", "ar")) == 0
    config = json.loads((tmp_path / "ar" / "model" / "prior" / "config.json").read_text())
    assert (config["architecture"], config["layers"], config["default_repairs"]) == ("discrete", 1, 0)
    assert main(from_masked("set", "set")) == 2
    assert "can start only another code prior" in capsys.readouterr().err


def test_a_masked_prior_starts_from_an_autoregressive_ones_trunk_and_back():
    from molgen.prior.training import load_growing

    torch.manual_seed(0)
    autoregressive, masked = build_prior(_config(architecture="discrete", default_steps=20)), build_prior(_config())
    load_growing(masked, autoregressive)
    theirs, mine = autoregressive.state_dict(), masked.state_dict()
    shared = [name for name in theirs if name in mine and name != "token_in.weight"]
    assert shared and all(torch.equal(theirs[name], mine[name]) for name in shared)
    assert torch.equal(mine["token_in.weight"][: len(VOCABULARY)], theirs["token_in.weight"])  # codes carried over, [MASK] fresh
    back = build_prior(_config(architecture="discrete"))
    load_growing(back, masked)
    assert torch.equal(back.head.weight, masked.head.weight) and torch.equal(back.token_in.weight, masked.token_in.weight[: len(VOCABULARY)])
    with pytest.raises(ValueError, match="differ in d_model"):
        load_growing(build_prior(_config(d_model=64)), autoregressive)
