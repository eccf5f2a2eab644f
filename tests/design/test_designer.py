"""Guided design on a tiny model trained in the suite: the pipeline's editing options, then every Designer call,
its per-molecule reports and its answers to bad input."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from rdkit import Chem

from molgen.design import Designer, DesignInputError, DesignResult, Filters, OptimizationResult, objectives
from molgen.design.chemistry import parse_core
from molgen.pipeline import MolgenPipeline

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


def test_step_hook_sees_every_step(pipe):
    seen = []

    def hook(index, timestep, x):
        seen.append((index, tuple(x.shape)))
        return x

    pipe.sample_latents(3, steps=4, seed=0, step_hook=hook)
    assert [i for i, _ in seen] == [0, 1, 2, 3] and all(shape[0] == 3 for _, shape in seen)


def test_restarts_renoise_half_the_schedule_and_keep_kept_tokens(pipe):
    seen = []

    def hook(index, timestep, x):
        seen.append(index)
        return x

    plain = pipe.sample_latents(3, steps=4, seed=0, restarts=0)
    restarted = pipe.sample_latents(3, steps=4, seed=0, restarts=2, step_hook=hook)
    # The first pass runs all 4 steps; each restart noises back to sigma 0.5 and runs the last 2.
    assert seen == [0, 1, 2, 3, 2, 3, 2, 3] and len(seen) == pipe.prior_evaluations(4, 2)
    assert torch.equal(plain.mask, restarted.mask) and not torch.allclose(plain.z, restarted.z)
    start = pipe.encode([TRAINING[0]])
    keep = torch.zeros_like(start.mask)
    keep[0, :5] = True
    out = pipe.sample_latents(2, seed=1, start=start, keep=keep, restarts=2)
    torch.testing.assert_close(out.z[:, :5], start.z[:, :5].expand(2, -1, -1), atol=1e-5, rtol=1e-5)
    # Edits that start part-way (analogs) stay near their start: no restarts.
    near = pipe.sample_latents(2, seed=3, start=start, strength=0.4, restarts=0)
    torch.testing.assert_close(pipe.sample_latents(2, seed=3, start=start, strength=0.4, restarts=3).z, near.z)
    with pytest.raises(ValueError, match="restarts=-1"):
        pipe.sample_latents(2, restarts=-1)
    with pytest.raises(ValueError, match="restarts=1.5: must be a whole number"):
        pipe.sample_latents(2, restarts=1.5)


def test_restart_strength_sets_where_each_restart_begins(pipe):
    def steps_run(**options) -> list[int]:
        seen = []
        pipe.sample_latents(2, steps=10, seed=0, restarts=2, step_hook=lambda i, t, x: seen.append(i) or x, **options)
        return seen

    # Each restart begins at the first of the 10 noise levels at or below the strength (Euler: sigma 1, 0.889,
    # 0.778, 0.667, 0.556, ..., 0.223, 0.112, 0.001).
    assert steps_run(restart_strength=0.25) == list(range(10)) + [7, 8, 9] * 2
    assert steps_run(restart_strength=0.65) == list(range(10)) + [4, 5, 6, 7, 8, 9] * 2
    assert pipe.prior_evaluations(10, 2, 0.65) == 22 and pipe.prior_evaluations(10, 2, 0.25) == 16
    # No strength given: the prior's own, the same samples as giving it.
    default = pipe.prior.config.restart_strength
    torch.testing.assert_close(pipe.sample_latents(3, steps=4, seed=5, restarts=1).z, pipe.sample_latents(3, steps=4, seed=5, restarts=1, restart_strength=default).z)
    assert not torch.allclose(pipe.sample_latents(3, steps=4, seed=5, restarts=1, restart_strength=0.9).z, pipe.sample_latents(3, steps=4, seed=5, restarts=1).z)
    for bad in (0, 1, 1.5, -0.2, "half"):
        with pytest.raises(ValueError, match=f"restart_strength={bad!r}: must be a number strictly between 0 and 1"):
            pipe.sample_latents(2, restarts=1, restart_strength=bad)
    with pytest.raises(ValueError, match="restart_strength=1.0"):
        pipe.sample(2, restart_strength=1.0)  # refused when called, before any sampling


def test_restart_temperature_scales_only_the_restarts_noise(pipe):
    def sample(**options):
        return pipe.sample_latents(3, steps=4, seed=2, temperature=0.8, **options).z

    base = sample(restarts=1)
    assert pipe.prior.config.restart_temperature is None  # default: the restarts use the sampling temperature
    torch.testing.assert_close(sample(restarts=1, restart_temperature=0.8), base)
    sharper = sample(restarts=1, restart_temperature=0.4)
    assert not torch.allclose(sharper, base)
    # Without restarts there is no restart noise to scale.
    torch.testing.assert_close(sample(restarts=0, restart_temperature=0.4), sample(restarts=0))
    # A model's config may set it; an explicit value still wins.
    pipe.prior.config.restart_temperature = 0.4
    try:
        torch.testing.assert_close(sample(restarts=1), sharper)
        torch.testing.assert_close(sample(restarts=1, restart_temperature=0.8), base)
    finally:
        pipe.prior.config.restart_temperature = None
    for bad in (0, -1.0, "cold"):
        with pytest.raises(ValueError, match=f"restart_temperature={bad!r}: must be a positive number"):
            pipe.sample(2, restarts=1, restart_temperature=bad)
    with pytest.raises(ValueError, match="restart_temperature must be > 0 or null"):
        type(pipe.prior.config)(**{**pipe.prior.config.to_dict(), "restart_temperature": 0})


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


def test_generate_takes_the_number_of_restarts(designer, monkeypatch):
    asked = []
    sample_latents = designer.pipe.sample_latents

    def spy(*args, **kwargs):
        asked.append(kwargs.get("restarts"))
        return sample_latents(*args, **kwargs)

    monkeypatch.setattr(designer.pipe, "sample_latents", spy)
    default = designer.generate(8, seed=4)
    more = designer.generate(8, seed=4, restarts=designer.pipe.prior.config.default_restarts + 2)
    assert asked[0] is None  # None: the model's default
    assert [r.smiles for r in more] != [r.smiles for r in default]
    assert [r.smiles for r in designer.generate(8, seed=4, restarts=designer.pipe.prior.config.default_restarts)] == [r.smiles for r in default]
    for bad in (-1, 1.5, True):
        with pytest.raises(DesignInputError, match=f"restarts={bad!r}"):
            designer.generate(4, restarts=bad)


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


def test_optimize_climbs_a_black_box_objective(designer):
    def aromatic_atoms(smiles):  # a plain Python function of SMILES; no gradients anywhere
        return [sum(a.GetIsAromatic() for a in Chem.MolFromSmiles(s).GetAtoms()) for s in smiles]

    calls = []
    result = designer.optimize(aromatic_atoms, n=12, iterations=3, seed=0, progress=lambda d, t: calls.append(d))
    assert isinstance(result, OptimizationResult) and calls == [1, 2, 3, 4]
    assert [t["iteration"] for t in result.trajectory] == [0, 1, 2, 3]
    best = [t["best_score"] for t in result.trajectory]
    assert best == sorted(best)  # elitist: never worse
    assert result.best[0].score == best[-1] and result.best[0].state == "valid"
    assert len(result.evaluated) == 4 * 12


def test_optimize_from_given_molecules_with_a_similarity_constraint(designer):
    seed = TRAINING[3]
    result = designer.optimize(
        objectives.penalized_logp(), start=[seed], n=8, iterations=2, reference=seed, filters=Filters(min_similarity=0.4)
    )
    assert result.evaluated[0].smiles == designer.pipe.decode(designer.pipe.encode([seed]), decoding="valence")[0].smiles
    assert all(r.similarity >= 0.4 for r in result.best)


def test_optimize_mutates_a_continuous_prior_at_the_default_noise_strength(designer, monkeypatch):
    from molgen.design.designer import DEFAULT_MUTATION_STRENGTH

    strengths = []
    sample_latents = designer.pipe.sample_latents

    def recording(n, **options):
        if options.get("start") is not None:
            strengths.append(options["strength"])
        return sample_latents(n, **options)

    monkeypatch.setattr(designer.pipe, "sample_latents", recording)
    designer.optimize(objectives.qed(), start=[TRAINING[0]], n=4, iterations=1, oversample=1)
    assert strengths == [DEFAULT_MUTATION_STRENGTH]


def test_objective_failures_are_per_molecule(designer):
    def flaky(smiles):
        if len(smiles) > 1:
            raise RuntimeError("batch too large")
        return [math.nan if "O" in smiles[0] else 1.0]

    result = designer.optimize(flaky, n=8, iterations=1)
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
        (lambda: designer.optimize(objectives.qed(), start=["CCO", "C1CC"]), "start SMILES 'C1CC'"),
        (lambda: designer.optimize(objectives.qed(), start=[]), "start=\\[\\]"),
    ]
    for call, message in cases:
        with pytest.raises(DesignInputError, match=message):
            call()


def test_designer_needs_a_prior(pipe):
    with pytest.raises(ValueError, match="no prior"):
        Designer(MolgenPipeline(pipe.domain, pipe.tokenizer))
