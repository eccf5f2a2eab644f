"""Guided design on a tiny model trained in the suite: the pipeline's editing options, then every Designer call,
its per-molecule reports and its answers to bad input; last, Designer.from_pretrained() on the shipped model."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import pytest
import torch
from rdkit import Chem

from molgen.checkpoint import WEIGHTS_DIGEST
from molgen.design import Designer, DesignInputError, DesignResult, Filters, OptimizationResult, objectives
from molgen.design.chemistry import parse_core
from molgen.design.designer import EDIT_STEPS, GUIDANCE_SCALE
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.sampling import SamplingConfig

from ..conftest import REPO
from .conftest import TRAINING

# --- the pipeline's editing options ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return MolgenPipeline.from_pretrained(tiny_model, device="cpu")


def test_small_strength_returns_the_start(pipe):
    start = pipe.encode(TRAINING[:2])
    out = pipe.sample_latents(2, seed=0, start=start, strength=0.05)
    assert torch.equal(out.mask, start.mask)
    assert (out.z - start.z).abs().max() < 0.3  # the last few steps of the prior barely move real latents
    assert [m.smiles for m in pipe.decode(out)] == [pipe.domain.canonical(s) for s in TRAINING[:2]]
    far = pipe.sample_latents(2, seed=0, start=start, strength=1.0)
    assert (far.z - start.z).abs().mean() > (out.z - start.z).abs().mean()


def test_kept_tokens_come_back_exactly_and_broadcast(pipe):
    start = pipe.encode([TRAINING[0]])  # one graph, broadcast to four
    keep = torch.zeros_like(start.mask)
    keep[0, :5] = True
    out = pipe.sample_latents(4, seed=1, start=start, keep=keep)
    assert out.z.shape[0] == 4 and torch.equal(out.mask, start.mask.expand(4, -1))
    torch.testing.assert_close(out.z[:, :5], start.z[:, :5].expand(4, -1, -1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out.z[0, 5:], out.z[1, 5:])  # the rest is sampled, differently per row


def test_editing_options_are_checked(pipe):
    start = pipe.encode(TRAINING[:2])
    with pytest.raises(ValueError, match="start holds 2 graphs"):
        pipe.sample_latents(3, start=start)
    with pytest.raises(ValueError, match="strength=0"):
        pipe.sample_latents(2, start=start, strength=0)
    with pytest.raises(ValueError, match="keep needs start"):
        pipe.sample_latents(2, keep=start.mask)
    with pytest.raises(ValueError, match="adjust works on decoder probabilities"):
        pipe.decode(start, decoding="raw", adjust=lambda i, n, e: (n, e))


# --- Designer -------------------------------------------------------------------------------------------------------------


def _valid(results: list[DesignResult]) -> list[DesignResult]:
    return [r for r in results if r.state == "valid"]


def test_generate_reports_every_sample(designer):
    results = designer.generate(24, seed=0, targets={"logP": (1, 4)}, must_avoid=["[Cl]"], filters=Filters(windows={"MW": (0, 400)}))
    assert len(results) == 24
    assert set(r.state for r in results) <= {"valid", "invalid", "duplicate", "rejected"}
    for r in results:
        if r.smiles is not None:
            mol = Chem.MolFromSmiles(r.smiles)
            assert set(r.properties) == set(designer.property_names)
            assert (r.state == "rejected") == bool(r.reasons) or r.state == "duplicate"
            if r.state == "valid":
                assert not mol.HasSubstructMatch(Chem.MolFromSmarts("[Cl]")) and r.properties["MW"] <= 400
    chlorinated = [r for r in results if r.smiles and "Cl" in r.smiles and r.state != "duplicate"]
    assert all("contains forbidden substructure '[Cl]'" in r.reasons for r in chlorinated)
    seen = Counter(r.smiles for r in results if r.state in ("valid", "rejected"))
    assert all(count == 1 for count in seen.values())  # repeats are duplicates


def test_oversampling_keeps_the_candidates_nearest_the_target(designer):
    target = {"MW": 250.0}
    plain = designer.generate(16, seed=2, targets=target)
    chosen = designer.generate(16, seed=2, targets=target, oversample=4)
    error = lambda rs: sum(abs(r.properties["MW"] - 250) for r in rs if r.smiles) / sum(1 for r in rs if r.smiles)  # noqa: E731
    assert len(chosen) == 16 and error(chosen) <= error(plain)
    with pytest.raises(DesignInputError, match="oversample=0"):
        designer.generate(4, oversample=0)


def test_generate_is_reproducible_and_streams_with_progress(designer):
    calls = []
    first = designer.generate(20, seed=3, progress=lambda done, total: calls.append((done, total)))
    again = list(designer.generate_iter(20, seed=3))
    assert [r.smiles for r in first] == [r.smiles for r in again]
    assert calls == [(16, 20), (20, 20)]  # batch_size 16


def _recording(designer, monkeypatch) -> list[dict]:
    """Every ``sample_latents`` call's keywords, the calls still made."""
    calls = []
    sample_latents = designer.pipe.sample_latents

    def spy(n, **options):
        calls.append(options)
        return sample_latents(n, **options)

    monkeypatch.setattr(designer.pipe, "sample_latents", spy)
    return calls


def test_generate_samples_with_a_sampling_config(designer, monkeypatch):
    calls = _recording(designer, monkeypatch)
    designer.generate(4, seed=4, targets={"QED": 0.8})
    config = calls[-1]["config"]
    assert isinstance(config, SamplingConfig) and config.guidance_scale == GUIDANCE_SCALE and config.property_guidance == 0.0
    assert config.decoding == designer.decoding and config.steps is None
    # a config of one's own: its fields as they are, the keywords given replacing some
    sampling = SamplingConfig(steps=5, temperature=0.8, sampler="heun")
    first = designer.generate(6, seed=4, sampling=sampling)
    assert calls[-1]["config"] == sampling.replace(decoding=designer.decoding, batch_size=6)
    designer.generate(4, seed=4, sampling=sampling, steps=7, guidance_scale=1.5)
    assert (calls[-1]["config"].steps, calls[-1]["config"].guidance_scale, calls[-1]["config"].sampler) == (7, 1.5, "heun")
    same = designer.generate(6, seed=4, steps=5, temperature=0.8, sampling=SamplingConfig(sampler="heun"))
    assert [r.smiles for r in same] == [r.smiles for r in first]
    with pytest.raises(DesignInputError, match="sampling='fast': give a molgen.sampling.SamplingConfig"):
        designer.generate(4, sampling="fast")
    with pytest.raises(DesignInputError, match="steps=0: must be a whole number >= 1"):
        designer.generate(4, steps=0)
    with pytest.raises(DesignInputError, match="sampler"):
        designer.generate(4, sampling=SamplingConfig(sampler="rk4"))
    assert designer.generate(2, seed=0, repairs=0, candidates=1)  # a discrete prior's options at the values that leave them off


@pytest.mark.parametrize(
    "options, message",
    [
        ({"targets": {"QED": 0.8}, "property_guidance": 2.0}, "property_guidance=2.0: an option of a discrete prior"),
        ({"repairs": 1}, "repairs=1: an option of a discrete prior"),
        ({"candidates": 4}, "candidates=4: an option of a discrete prior"),
        ({"selection": "draw"}, "selection='draw': an option of a discrete prior"),
        ({"sampling": SamplingConfig(top_p=0.9)}, "top_p=0.9: an option of a discrete prior"),
        ({"repairs": -1}, "repairs=-1: must be a whole number >= 0"),
        ({"candidates": 0}, "candidates=0: must be a whole number >= 1"),
    ],
)
def test_a_set_prior_refuses_the_options_of_a_discrete_one(designer, options, message):
    with pytest.raises(DesignInputError, match=re.escape(message)):
        designer.generate(4, **options)


def test_edits_sample_with_the_config_too(designer, monkeypatch):
    calls = _recording(designer, monkeypatch)
    designer.analogs(TRAINING[0], 4, strength=0.5, new=False)
    assert {c["config"].steps for c in calls} == {max(designer.pipe.prior.config.default_steps, EDIT_STEPS)}
    calls.clear()
    designer.analogs(TRAINING[0], 4, strength=0.5, new=False, sampling=SamplingConfig(steps=12, sampler="dpm"))
    assert {(c["config"].steps, c["config"].sampler) for c in calls} == {(12, "dpm")}
    calls.clear()
    designer.decorate("O=C1CCCN1", 4, layout="first", steps=6)
    designer.interpolate(TRAINING[2], TRAINING[4], 4, refine=0.3, steps=6)
    designer.optimize(objectives.qed(), n=4, calls=12, strategy="remask", sampling=SamplingConfig(steps=6))
    assert calls and {c["config"].steps for c in calls} == {6}
    with pytest.raises(DesignInputError, match="candidates=2"):
        designer.analogs(TRAINING[0], 4, strength=0.5, sampling=SamplingConfig(candidates=2))


def test_analogs_report_similarity_to_the_seed(designer):
    seed = TRAINING[0]
    close = designer.analogs(seed, 16, strength=0.1, seed=0)
    far = designer.analogs(seed, 16, strength=1.0, seed=0)
    assert all(r.similarity is not None and 0 <= r.similarity <= 1 for r in close + far if r.smiles)
    mean = lambda rs: sum(r.similarity for r in rs if r.smiles) / sum(1 for r in rs if r.smiles)  # noqa: E731
    assert mean(close) > mean(far)
    canonical = designer.pipe.domain.canonical(seed)
    assert all(r.state == "duplicate" for r in close if r.smiles == canonical)  # the seed itself is not news
    constrained = designer.analogs(seed, 16, strength=1.0, filters=Filters(min_similarity=0.9))
    assert all(r.similarity >= 0.9 for r in _valid(constrained))


def test_analogs_count_new_molecules_and_report_the_repeats(designer, caplog):
    seed = TRAINING[0]  # the tiny model memorised its eight molecules: edits give the seed and its neighbours back
    results = designer.analogs(seed, 4, strength=0.7, seed=0)
    fresh = [r for r in results if r.state != "duplicate"]
    assert len(fresh) == 4 and results[-1].state != "duplicate"  # stops at the fourth new molecule
    assert len({r.smiles for r in fresh if r.smiles}) == sum(1 for r in fresh if r.smiles)  # new: no repeats among them
    canonical = designer.pipe.domain.canonical(seed)
    assert all(r.smiles != canonical for r in fresh)
    assert len(results) > 4 and all(r.state == "duplicate" for r in results if r.smiles == canonical)  # repeats reported, not counted
    every = designer.analogs(seed, 4, strength=0.7, seed=0, new=False)
    assert len(every) == 4 and [r.smiles for r in every] == [r.smiles for r in results[:4]]  # the same samples, counted as drawn
    with caplog.at_level("WARNING", logger="molgen.design.designer"):
        capped = designer.analogs(seed, 16, strength=0.05, seed=0, max_attempts=20)
    assert len(capped) <= 20 and sum(r.state != "duplicate" for r in capped) < 16
    assert "new molecules of the 16 asked for in 20 samples" in caplog.text
    with pytest.raises(DesignInputError, match="max_attempts=3: must be a whole number >= n=4"):
        designer.analogs(seed, 4, max_attempts=3)


def test_similarity_knob_maps_to_a_strength(designer):
    # The tiny model memorises its eight molecules, so only the ends of the knob are meaningful here (the
    # bisection itself is tested in test_parts).
    seed = TRAINING[1]
    identical = designer.strength_for_similarity(seed, 1.0)
    anything = designer.strength_for_similarity(seed, 0.0)
    assert 0 < identical < anything <= 1.0
    # Aiming at new molecules, the closest knob stops where a quarter of the samples are still other molecules
    seed = TRAINING[0]  # the tiny model gives other molecules from this one at strengths around 0.6
    identical = designer.strength_for_similarity(seed, 1.0)
    closest_new = designer.strength_for_similarity(seed, 1.0, new=True, probe=32)
    assert identical < closest_new < 1.0

    def new_share(strength):
        out = designer.pipe.decode(designer.pipe.sample_latents(64, seed=5, start=designer.pipe.encode([seed]), strength=strength))
        return sum(m.smiles != designer.pipe.domain.canonical(seed) for m in out) / len(out)

    # the bisection ends between a strength whose probe gave the seed back nearly always and one giving >= 25% new
    # molecules (MIN_NEW_SHARE); the tiny model's step between them is steep, so other draws see fewer
    assert new_share(identical) == 0 < new_share(closest_new)


@pytest.mark.parametrize("core", ["O=C(N[*:1])c1ccccc1", "c1ccc(cc1)[*:1]", "O=C1CCCN1"])
def test_decorated_outputs_keep_the_core(designer, core):
    results = designer.decorate(core, 16, seed=0)
    parsed = parse_core(core)
    assert len(results) == 16
    for r in results:
        if r.state in ("valid", "duplicate") or (r.state == "rejected" and "not retained" not in (r.error or "")):
            assert parsed.retained(Chem.MolFromSmiles(r.smiles)), r
        if r.state == "rejected" and "not retained" in (r.error or ""):
            assert not parsed.retained(Chem.MolFromSmiles(r.smiles))
    assert _valid(results), Counter(r.state for r in results)


def test_both_layouts_keep_the_core(designer):
    core = "O=C(N[*:1])c1ccccc1"
    parsed = parse_core(core)
    for layout in ("first", "last"):
        results = designer.decorate(core, 8, seed=1, layout=layout)
        assert all(parsed.retained(Chem.MolFromSmiles(r.smiles)) for r in results if r.state == "valid")
    with pytest.raises(DesignInputError, match="layout='middle'"):
        designer.decorate(core, 4, layout="middle")


def test_decoration_size_and_bad_cores(designer):
    results = designer.decorate("O=C1CCCN1", 8, extra_atoms=3)
    assert all(Chem.MolFromSmiles(r.smiles).GetNumAtoms() <= 6 + 3 for r in results if r.smiles)
    with pytest.raises(DesignInputError, match="no free valence"):
        designer.decorate("FC(F)(F)C(F)(F)F", 4)
    with pytest.raises(DesignInputError, match="invalid SMILES 'c1cc'"):
        designer.decorate("c1cc", 4)
    with pytest.raises(DesignInputError, match="extra_atoms=99"):
        designer.decorate("O=C1CCCN1", 4, extra_atoms=99)
    with pytest.raises(DesignInputError, match=r"core '\[Se\]C\[\*:1\]'.*Se"):
        designer.decorate("[Se]C[*:1]", 4)


def test_interpolation_runs_between_the_two_molecules(designer):
    a, b = TRAINING[2], TRAINING[4]
    path = designer.interpolate(a, b, 6)
    assert len(path) == 6
    ends = [m.smiles for m in designer.pipe.decode(designer.pipe.encode([a, b]), decoding="valence")]
    assert path[0].smiles == ends[0] and path[-1].smiles == ends[1]
    assert path[0].similarity == 1.0 or path[0].smiles != designer.pipe.domain.canonical(a)
    refined = designer.interpolate(a, b, 4, refine=0.3)
    assert refined[0].smiles == ends[0] and len(refined) == 4


def test_optimize_climbs_a_black_box_objective_within_its_budget(designer):
    def aromatic_atoms(smiles):  # a plain Python function of SMILES; no gradients anywhere
        return [sum(a.GetIsAromatic() for a in Chem.MolFromSmiles(s).GetAtoms()) for s in smiles]

    progress = []
    result = designer.optimize(aromatic_atoms, n=12, calls=60, seed=0, progress=lambda used, total, best: progress.append((used, total, best)))
    assert isinstance(result, OptimizationResult) and result.stopped == "budget of 60 objective calls used"
    assert len(result.evaluated) == 60 and len({r.smiles for r in result.evaluated}) == 60  # never a molecule twice
    assert [p[0] for p in progress] == sorted(p[0] for p in progress) and progress[-1][:2] == (60, 60)
    best = [t["best_score"] for t in result.trajectory]
    assert best == sorted(best) and progress[-1][2] == best[-1]  # elitist: never worse
    assert result.best[0].score == best[-1] and result.best[0].state == "valid" and result.best[0].properties
    assert all(Chem.MolFromSmiles(r.smiles) is not None for r in result.evaluated)
    assert {c.operator for c in result.history} >= {"sample", "remask", "graph-ga"}
    assert all(c.parent for c in result.history if c.operator in ("remask", "graph-ga"))


def test_optimize_accepts_an_objective_of_one_smiles(designer):
    result = designer.optimize(lambda smiles: float(len(smiles)), n=8, calls=20, seed=0)
    assert len(result.evaluated) == 20 and all(r.score == len(r.smiles) for r in result.evaluated)


def test_optimize_from_given_molecules_with_a_similarity_constraint(designer):
    seed = TRAINING[3]
    result = designer.optimize(
        objectives.penalized_logp(), start=[seed], n=8, calls=24, reference=seed, filters=Filters(min_similarity=0.4), strategy="remask"
    )
    assert result.evaluated[0].smiles == designer.pipe.domain.canonical(seed)
    assert all(r.similarity >= 0.4 for r in result.best)


def test_optimize_resumes_from_its_history_without_scoring_a_molecule_twice(designer, tmp_path):
    history = tmp_path / "history.csv"
    seen = []

    def qed(smiles):
        seen.extend(smiles)
        return objectives.qed()(smiles)

    first = designer.optimize(qed, n=8, calls=20, seed=0, history=history)
    assert len(first.evaluated) == 20 and len(history.read_text().splitlines()) == 21
    second = designer.optimize(qed, n=8, calls=40, seed=1, history=history)
    assert len(second.evaluated) == 40 and second.evaluated[:20] == first.evaluated
    assert len(seen) == len(set(seen)) == 40  # the objective saw each molecule once, across both runs
    assert second.best[0].score == max(r.score for r in second.evaluated)


def test_objective_failures_are_per_molecule(designer):
    def flaky(smiles):
        if len(smiles) > 1:
            raise RuntimeError("batch too large")
        return [math.nan if "O" in smiles[0] else 1.0]

    result = designer.optimize(flaky, n=8, calls=16)
    assert len(result.evaluated) == 16
    failed = [r for r in result.evaluated if r.smiles and "O" in r.smiles]
    assert failed and all(r.state == "invalid" and r.error == "objective returned nan" for r in failed)
    assert all(r.score == 1.0 for r in result.best)


def test_bad_input_names_the_input(designer):
    cases = [
        (lambda: designer.generate(0), "n=0"),
        (lambda: designer.generate(4, targets={"MW": 5000}), "MW 5000"),
        (lambda: designer.generate(4, must_contain=["c1ccc"]), "must_contain SMARTS 'c1ccc'"),
        (lambda: designer.analogs("C1CC", 4), "seed SMILES 'C1CC'.*unclosed ring"),
        (lambda: designer.analogs("CCO", 4, similarity=2), "similarity=2"),
        (lambda: designer.interpolate("CCO", "XX", 4), "second SMILES 'XX'"),
        (lambda: designer.interpolate("CCO", "CCN", 1), "n_points=1"),
        (lambda: designer.optimize("qed"), "objective 'qed' is not callable"),
        (lambda: designer.optimize(lambda s: "high", n=4, calls=8), "scores neither a list of SMILES nor one SMILES"),
        (lambda: designer.optimize(objectives.qed(), calls=0), "calls=0"),
        (lambda: designer.optimize(objectives.qed(), calls=None, seconds=None), "give a number of objective calls"),
        (lambda: designer.optimize(objectives.qed(), strategy="annealing"), "strategy='annealing': choose one of mixed"),
        (lambda: designer.optimize(objectives.qed(), start=["CCO", "C1CC"]), "start SMILES 'C1CC'"),
        (lambda: designer.optimize(objectives.qed(), start=[]), "start=\\[\\]"),
    ]
    for call, message in cases:
        with pytest.raises(DesignInputError, match=message):
            call()


def test_designer_needs_a_prior(pipe):
    with pytest.raises(ValueError, match="no prior"):
        Designer(MolgenPipeline(pipe.domain, pipe.tokenizer))


def test_from_pretrained_without_a_path_loads_the_shipped_model(monkeypatch):
    """The shipped model is discrete: its options go to the pipeline (checked there, sampling stubbed out here)."""
    if not (DEFAULT_MODEL / "prior" / "model.safetensors").exists():
        pytest.skip("shipped model not present")
    shipped = Designer.from_pretrained(device="cpu")
    assert shipped.pipe.prior.config.architecture == "discrete"
    assert DEFAULT_MODEL == REPO / "checkpoints" / "moses"
    saved = json.loads((DEFAULT_MODEL / "prior" / "config.json").read_text())
    assert shipped.pipe.prior.config.to_dict() == {k: v for k, v in saved.items() if k != WEIGHTS_DIGEST}
    calls = []

    def stub(n, **options):
        calls.append(options)
        return shipped.pipe.encode(["CCO"] * n)

    monkeypatch.setattr(shipped.pipe, "sample_latents", stub)
    results = shipped.generate(2, targets={"QED": 0.9}, repairs=3, property_guidance=2.0, candidates=2, selection="draw")
    assert [r.smiles for r in results] == ["CCO", "CCO"]
    config = calls[0]["config"]
    assert (config.repairs, config.property_guidance, config.candidates, config.selection) == (3, 2.0, 2, "draw")
    with pytest.raises(DesignInputError, match="property_guidance steers toward property targets"):
        shipped.generate(2, property_guidance=2.0)
    with pytest.raises(DesignInputError, match="sampler='heun'"):
        shipped.generate(2, sampling=SamplingConfig(sampler="heun"))
    with pytest.raises(DesignInputError, match="candidates=2"):
        shipped.analogs("CCO", 2, strength=0.5, sampling=SamplingConfig(candidates=2))
