"""The model shipped in checkpoints/moses: it loads without pickle, and reconstructs real molecules.

The reconstruction *rate* is measured by benchmarks/tokenizer.py on 10,000 molecules (BENCHMARKS.md); here a
smaller sample guards against a broken or mismatched checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from molgen.pipeline import MolgenPipeline

MODEL = Path(__file__).resolve().parents[2] / "checkpoints" / "moses"
EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples" / "molecules.smi"


@pytest.fixture(scope="module")
def pipe() -> MolgenPipeline:
    return MolgenPipeline.from_pretrained(MODEL, device="cpu")


def _assert_pickle_free_and_small(model: Path) -> None:
    """A shipped model directory holds only JSON and safetensors, tens of MB at most."""
    files = [p for p in model.rglob("*") if p.is_file()]
    assert files, f"no shipped model under {model}"
    assert {p.suffix for p in files} <= {".json", ".safetensors"}
    assert sum(p.stat().st_size for p in files) < 50 * 2**20


def test_checkpoint_holds_only_json_and_safetensors():
    _assert_pickle_free_and_small(MODEL)


def test_shipped_model_reconstructs_held_out_moses_molecules(pipe):
    smiles = pd.read_csv(MODEL.parents[1] / "data" / "moses" / "test.csv.gz")["SMILES"].sample(300, random_state=123)
    results = list(pipe.reconstruct(smiles.tolist()))
    assert all(r.canonical is not None for r in results)  # every MOSES molecule fits the vocabulary
    exact = sum(r.exact for r in results) / len(results)
    assert exact >= 0.97, [(r.canonical, r.reconstructed) for r in results if not r.exact][:5]


def test_latents_have_one_token_per_heavy_atom(pipe):
    # Molecules in the training distribution (MOSES: 14-26 heavy atoms for 99.9% of it).
    smiles = ["CC(=O)Oc1ccccc1C(=O)O", "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21"]
    latents = pipe.encode(smiles)
    assert latents.mask.sum(1).tolist() == [13, 20]
    assert latents.z.shape[-1] == pipe.tokenizer.config.latent_dim
    assert [m.smiles for m in pipe.decode(latents)] == smiles


def test_example_file_round_trips_except_its_broken_row(pipe):
    rows = [ln.split()[0] for ln in EXAMPLES.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    results = list(pipe.reconstruct(rows))
    bad = [r for r in results if r.canonical is None]
    assert [r.input for r in bad] == ["C1C(N)"] and "unclosed ring" in bad[0].error
    assert all(r.exact for r in results if r.canonical is not None)


def test_shipped_model_samples_checked_molecules(pipe):
    """The shipped prior samples; every valence-aware output is one valid molecule of MOSES' size, with properties.

    Sample quality (validity of raw decoding, FCD, ...) is measured by benchmarks/sampling.py on 30,000 samples.
    """
    from rdkit import Chem

    assert pipe.prior is not None, "checkpoints/moses has no prior/"
    samples = pipe.sample(24, seed=0, batch_size=12, decoding="valence")
    assert len(samples) == 24
    for m in samples:
        assert m.state in ("valid", "duplicate")
        mol = Chem.MolFromSmiles(m.smiles)
        assert mol is not None and len(Chem.GetMolFrags(mol)) == 1
        assert 5 <= mol.GetNumHeavyAtoms() <= pipe.prior.config.max_nodes
        assert 0 < m.properties["QED"] <= 1 and m.properties["MW"] > 50
    assert len({m.smiles for m in samples}) >= 20  # not collapsed onto a few molecules
    raw = pipe.sample(24, seed=0, batch_size=12, decoding="raw")  # same latents, raw decoding: invalid ones kept with a reason
    assert [m.state == "invalid" for m in raw].count(True) == sum(m.error is not None for m in raw)
    for r, v in zip(raw, samples, strict=True):  # where raw decoding is valid, both decodings agree
        if r.smiles is not None:
            assert r.smiles == v.smiles


AROMATIC_MODEL = MODEL.parent / "moses_aromatic"


def test_aromatic_bond_model_reconstructs_and_samples_valid_molecules():
    """checkpoints/moses_aromatic (aromatic bonds as their own label): pickle-free, same molecules, and its
    valence-aware samples are single valid molecules whose aromatic rings survive (not all given up)."""
    from rdkit import Chem

    files = [p for p in AROMATIC_MODEL.rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} <= {".json", ".safetensors"}
    pipe = MolgenPipeline.from_pretrained(AROMATIC_MODEL, device="cpu")
    assert pipe.domain.bonds == "aromatic" and pipe.predictor is not None
    smiles = pd.read_csv(MODEL.parents[1] / "data" / "moses" / "test.csv.gz")["SMILES"].sample(100, random_state=5)
    results = list(pipe.reconstruct(smiles.tolist()))
    assert sum(r.exact for r in results) >= 97, [(r.canonical, r.reconstructed) for r in results if not r.exact][:5]
    samples = pipe.sample(24, seed=0, batch_size=12, decoding="valence", properties=False)
    mols = [Chem.MolFromSmiles(m.smiles) for m in samples]
    assert all(m is not None and len(Chem.GetMolFrags(m)) == 1 for m in mols)
    aromatic_rings = [Chem.rdMolDescriptors.CalcNumAromaticRings(m) for m in mols]
    assert sum(aromatic_rings) / len(mols) >= 0.5, aromatic_rings  # a guard; the rate is in BENCHMARKS.md (MOSES: 2.0)


TEACHER_MODEL = MODEL.parent / "moses_teacher"


def test_shipped_prior_is_a_distilled_student_of_the_teacher_and_its_guide():
    """checkpoints/moses/prior is ``molgen train distill`` of the teacher its training record names (prior + guide,
    checkpoints/moses_teacher or, self-conditioned, checkpoints/moses_teacher_sc): it needs no guide, and on noisy
    MOSES latents its prediction (after reading its own estimate, if self-conditioned: as it samples) is nearer the
    teacher's autoguided one than the teacher alone is. How near, and its sample quality and speed, are in
    BENCHMARKS.md (``benchmarks.distillation``, ``benchmarks.samplers``)."""
    import json

    import torch
    from rdkit import Chem

    from molgen.prior.distillation import GuidanceDistillation
    from molgen.prior.scheduling import clean_estimate

    record = json.loads((MODEL / "prior" / "training.json").read_text())
    assert record["teacher"]["path"] in ("checkpoints/moses_teacher", "checkpoints/moses_teacher_sc")
    teacher_dir = MODEL.parents[1] / record["teacher"]["path"]
    files = [p for p in teacher_dir.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".json", ".safetensors"}
    assert sum(p.stat().st_size for p in files) < 50 * 2**20
    pipe = MolgenPipeline.from_pretrained(teacher_dir, device="cpu", precision="fp32")
    assert pipe.guide is not None
    student = MolgenPipeline.from_pretrained(MODEL, device="cpu", precision="fp32")
    assert student.guide is None and student.guide_evaluations() == 0
    assert student.prior.config.default_autoguidance == 1.0
    assert student.prior.config.self_condition == pipe.prior.config.self_condition
    teacher = pipe.prior.config
    assert record["distilled"]["autoguidance"] == teacher.default_autoguidance
    assert student.tokenizer.state_dict().keys() == pipe.tokenizer.state_dict().keys()
    for name, value in student.tokenizer.state_dict().items():  # the teacher's tokenizer: the same latent space
        assert torch.equal(value, pipe.tokenizer.state_dict()[name])
    smiles = pd.read_csv(MODEL.parents[1] / "data" / "moses" / "test.csv.gz")["SMILES"].sample(64, random_state=9).tolist()
    latents = pipe.encode(smiles)
    mask = latents.mask.bool()
    real = mask.unsqueeze(-1).float()
    z = (latents.z - torch.tensor(teacher.latent_mean)) / torch.tensor(teacher.latent_std) * real
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(0)) * teacher.default_temperature * real
    t = torch.full((len(z),), 0.5)  # inside the autoguidance interval, where the correction is largest
    x = 0.5 * z + 0.5 * noise
    target = GuidanceDistillation(teacher.to_dict(), teacher.to_dict(), pipe.guide.config.to_dict(), teacher.default_autoguidance, tuple(teacher.autoguidance_interval))
    target.load_teacher(pipe.prior, pipe.guide)
    none = torch.zeros(len(z), teacher.num_properties)

    def predict(prior):  # as sampling evaluates it: a self-conditioned prior reads its own first estimate
        first = prior(x, t, mask)
        if not prior.config.self_condition:
            return first
        return prior(x, t, mask, x_self=clean_estimate(prior.config, x, t, first) * real)

    with torch.no_grad():
        goal = target.regression_target(x, t, mask, none, none.bool(), None)
        alone = ((predict(pipe.prior) - goal) ** 2 * real).sum()
        ours = ((predict(student.prior) - goal) ** 2 * real).sum()
    assert ours < 0.8 * alone, (float(ours), float(alone))
    samples = student.sample(12, seed=0, batch_size=12, properties=False)
    assert all(m.smiles and len(Chem.GetMolFrags(Chem.MolFromSmiles(m.smiles))) == 1 for m in samples)


TEACHER_SC_MODEL = MODEL.parent / "moses_teacher_sc"


def test_self_conditioned_teacher_reads_its_estimate_and_samples_with_its_guide():
    """checkpoints/moses_teacher_sc: the teacher trained on with self-conditioning (stop 21), with the same guide,
    tokenizer and latent space. Its sample quality against the teacher without it is in BENCHMARKS.md
    ("Self-conditioning: ...")."""
    import torch

    from molgen.prior.scheduling import clean_estimate

    files = [p for p in TEACHER_SC_MODEL.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".json", ".safetensors"}
    assert sum(p.stat().st_size for p in files) < 50 * 2**20
    pipe = MolgenPipeline.from_pretrained(TEACHER_SC_MODEL, device="cpu", precision="fp32")
    before = MolgenPipeline.from_pretrained(TEACHER_MODEL, device="cpu", precision="fp32")
    config = pipe.prior.config
    assert config.self_condition and pipe.guide is not None and not pipe.guide.config.self_condition
    for name, value in pipe.tokenizer.state_dict().items():  # the same latent space as the teacher it continues
        assert torch.equal(value, before.tokenizer.state_dict()[name])
    # on noisy MOSES latents its estimate of the clean latents changes its prediction
    smiles = pd.read_csv(MODEL.parents[1] / "data" / "moses" / "test.csv.gz")["SMILES"].sample(16, random_state=4).tolist()
    latents = pipe.encode(smiles)
    real = latents.mask.unsqueeze(-1).float()
    z = (latents.z - torch.tensor(config.latent_mean)) / torch.tensor(config.latent_std) * real
    x = 0.4 * z + 0.6 * torch.randn(z.shape, generator=torch.Generator().manual_seed(0)) * real
    t = torch.full((len(z),), 0.6)
    with torch.no_grad():
        first = pipe.prior(x, t, latents.mask)
        estimate = clean_estimate(config, x, t, first) * real
        second = pipe.prior(x, t, latents.mask, x_self=estimate)
    assert (second - first).abs().mean() > 0.01 * first.abs().mean()
    samples = pipe.sample(16, seed=0, steps=6, restarts=1)
    assert sum(m.smiles is not None for m in samples) == 16  # valence-aware: all valid


def test_shipped_discriminator_scores_moses_latents_above_the_priors_own_samples():
    """checkpoints/moses/discriminator (stop 22): trained on 30,000 of the shipped prior's samples against as many
    MOSES train latents. Off unless asked for (default_scale 0); what it does to sample quality is in BENCHMARKS.md
    ("Discriminator guidance: ..."). Here: at noise level 0.3 its logit ranks held-out MOSES test latents above
    the prior's own samples (0.67 of pairs when measured; 0.5 is chance)."""
    import torch

    files = [p for p in (MODEL / "discriminator").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".json", ".safetensors"}
    pipe = MolgenPipeline.from_pretrained(MODEL, device="cpu", precision="fp32")
    assert pipe.discriminator is not None and pipe.discriminator.config.default_scale == 0.0
    config = pipe.prior.config
    smiles = pd.read_csv(MODEL.parents[1] / "data" / "moses" / "test.csv.gz")["SMILES"].sample(200, random_state=11).tolist()
    real, fake = pipe.encode(smiles), pipe.sample_latents(200, seed=0, batch_size=200)
    mean, std = torch.tensor(config.latent_mean), torch.tensor(config.latent_std)
    logits = []
    for latents in (real, fake):
        keep = latents.mask.unsqueeze(-1)
        z = (latents.z - mean) / std * keep
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(1)) * config.default_temperature * keep
        t = torch.full((len(z),), 0.3)
        with torch.no_grad():
            logits.append(pipe.discriminator((1 - t[:, None, None]) * z + t[:, None, None] * noise, t, latents.mask))
    real_logit, fake_logit = logits
    auc = (real_logit[:, None] > fake_logit[None, :]).float().mean()  # probability a test molecule outranks a sample
    assert auc > 0.6, float(auc)


AUTOREGRESSIVE_MODEL = MODEL.parent / "moses_ar"


def test_autoregressive_model_samples_checked_molecules_token_by_token():
    """checkpoints/moses_ar (the shipped tokenizer with an autoregressive prior): pickle-free, loads as an
    autoregressive prior, and its valence-aware samples are single valid molecules of MOSES' size, reproducible
    by seed. Sample quality is measured by benchmarks.samplers (BENCHMARKS.md)."""
    from rdkit import Chem

    from molgen.prior.autoregressive import AutoregressivePrior

    _assert_pickle_free_and_small(AUTOREGRESSIVE_MODEL)
    pipe = MolgenPipeline.from_pretrained(AUTOREGRESSIVE_MODEL, device="cpu")
    assert isinstance(pipe.prior, AutoregressivePrior)
    samples = pipe.sample(24, seed=0, batch_size=12)
    mols = [Chem.MolFromSmiles(m.smiles) for m in samples]
    assert all(m is not None and len(Chem.GetMolFrags(m)) == 1 for m in mols)
    assert all(10 <= m.GetNumHeavyAtoms() <= pipe.prior.config.max_nodes for m in mols)
    assert len({m.smiles for m in samples}) >= 20
    assert all(0 < s.properties["QED"] <= 1 for s in samples)
    assert [m.smiles for m in pipe.sample(24, seed=0, batch_size=12, properties=False)] == [m.smiles for m in samples]


def test_autoregressive_model_repairs_broken_graphs_with_validity_guidance():
    """With validity guidance, the autoregressive prior's finished tokens of graphs whose raw decoding is broken
    move toward a valid graph; graphs that decode valid are not moved at all."""
    import torch

    pipe = MolgenPipeline.from_pretrained(AUTOREGRESSIVE_MODEL, device="cpu")
    plain = pipe.sample_latents(80, seed=4, batch_size=80)
    repaired = pipe.sample_latents(80, seed=4, batch_size=80, validity_guidance=0.1)
    before = [m.smiles is not None for m in pipe.decode(plain, decoding="raw")]
    after = [m.smiles is not None for m in pipe.decode(repaired, decoding="raw")]
    valid_before = torch.tensor(before)
    torch.testing.assert_close(repaired.z[valid_before], plain.z[valid_before])  # only broken graphs move
    assert not torch.equal(repaired.z[~valid_before], plain.z[~valid_before])
    # about 66% raw-valid without it and 90% with it (scratch measurement, 2,000 samples): a wide guard
    assert sum(after) >= sum(before) + 8, (sum(before), sum(after))
    # an edit's kept tokens stay exactly as given while the rest is repaired
    start = pipe.encode(["Cc1ccc(NC(=O)CN2CCN(C(=O)c3ccco3)CC2)cc1C"])
    keep = torch.zeros(1, start.z.shape[1], dtype=torch.bool)
    keep[0, :6] = True
    kept = pipe.sample_latents(40, seed=4, start=start, keep=keep)
    kept_repaired = pipe.sample_latents(40, seed=4, start=start, keep=keep, validity_guidance=0.1)
    torch.testing.assert_close(kept_repaired.z[:, :6], start.z[:, :6].expand(40, -1, -1))
    assert not torch.equal(kept_repaired.z[:, 6:], kept.z[:, 6:])


DISCRETE_MODEL = MODEL.parent / "moses_discrete"


def test_the_default_model_is_the_discrete_prior_and_samples_checked_molecules():
    """checkpoints/moses_discrete is what `molgen sample`, `molgen design` and `python app.py` use without --model:
    pickle-free, small, loads as a discrete prior, its valence-aware samples are single valid molecules of MOSES'
    size, varied, reproducible by seed, and its property conditioning moves the samples. Sample quality is measured
    by benchmarks.sampling (BENCHMARKS.md)."""
    from rdkit import Chem

    from molgen.cli import DEFAULT_MODEL
    from molgen.prior.autoregressive import DiscreteAutoregressivePrior

    assert DEFAULT_MODEL == DISCRETE_MODEL
    _assert_pickle_free_and_small(DISCRETE_MODEL)
    pipe = MolgenPipeline.from_pretrained(DISCRETE_MODEL, device="cpu")
    assert isinstance(pipe.prior, DiscreteAutoregressivePrior)
    samples = pipe.sample(48, seed=0, batch_size=24)
    mols = [Chem.MolFromSmiles(m.smiles) for m in samples]
    assert all(m is not None and len(Chem.GetMolFrags(m)) == 1 for m in mols)
    assert all(8 <= m.GetNumHeavyAtoms() <= pipe.prior.config.max_nodes for m in mols)
    assert len({m.smiles for m in samples}) >= 46
    assert [m.smiles for m in pipe.sample(48, seed=0, batch_size=24, properties=False)] == [m.smiles for m in samples]
    low = pipe.sample(48, seed=1, conditions={"logP": 1.0}, guidance_scale=2.0)
    high = pipe.sample(48, seed=1, conditions={"logP": 4.5}, guidance_scale=2.0)
    mean = lambda rs: sum(r.properties["logP"] for r in rs) / len(rs)  # noqa: E731
    assert mean(high) > mean(low) + 1.5, (mean(low), mean(high))  # about 0.4 vs 4.3 (three seeds, scratch run)


def test_the_default_models_design_tasks_run_on_the_discrete_prior():
    """Analogs, scaffold decoration and interpolation edit the discrete prior's codes: analogs stay near the seed
    (closer at a small strength), decorations keep the core, an interpolation starts and ends at its molecules."""
    from rdkit import Chem

    from molgen.design import Designer
    from molgen.design.chemistry import parse_core

    designer = Designer.from_pretrained(DISCRETE_MODEL, device="cpu")
    seed = "CC(=O)Nc1ccc(cc1)C(=O)NCc1ccco1"
    close = [r for r in designer.analogs(seed, 16, strength=0.2, seed=0) if r.smiles]
    far = [r for r in designer.analogs(seed, 16, strength=1.0, seed=0) if r.smiles]
    mean = lambda rs: sum(r.similarity for r in rs) / len(rs)  # noqa: E731
    assert len(close) >= 12 and len(far) >= 12
    assert mean(close) > mean(far) + 0.1, (mean(close), mean(far))
    core = "O=C(N[*:1])c1ccccc1"
    decorated = designer.decorate(core, 12, seed=0)
    kept = [r for r in decorated if r.state == "valid"]
    assert len(kept) >= 6, [r.state for r in decorated]
    assert all(parse_core(core).retained(Chem.MolFromSmiles(r.smiles)) for r in kept)
    a, b = "CC(=O)Nc1ccc(O)cc1", "O=C(NCc1ccco1)c1ccc(Cl)cc1"
    path = designer.interpolate(a, b, 5)
    ends = [m.smiles for m in designer.pipe.decode(designer.pipe.encode([a, b]), decoding="valence")]
    assert len(path) == 5 and path[0].smiles == ends[0] and path[-1].smiles == ends[1]


def test_design_requests_with_targets_get_the_shipped_judges_resampling_unless_they_set_it(monkeypatch):
    """checkpoints/moses_discrete/judge (stop 35: a graph network reading decoded candidates) ships default_candidates
    K > 1 and default_selection "best", and the predictor default_scale 0 (BENCHMARKS.md, stop 35): a generate request
    with targets draws K candidates per molecule, decodes them and keeps the one the judge puts nearest the targets,
    without token-by-token steering; one without targets is not judged; a request's own candidates, selection and
    property guidance win (steering is the predictor's, the choice still the judge's); bad defaults are refused."""
    from molgen.design import Designer
    from molgen.guidance import Resampling
    from molgen.judge.model import JudgeConfig
    from molgen.prior.predictor import PredictorConfig

    designer = Designer.from_pretrained(DISCRETE_MODEL, device="cpu")
    config = designer.pipe.judge.config
    assert designer.default_property_guidance == 0.0 and config.default_candidates > 1 and config.default_selection == "best"
    seen, picks = [], []
    original, pick = designer.pipe.sample_latents, Resampling.pick

    def spy(*args, **kwargs):
        seen.append(kwargs.get("property_guidance"))
        return original(*args, **kwargs)

    monkeypatch.setattr(designer.pipe, "sample_latents", spy)
    monkeypatch.setattr(
        Resampling, "pick", lambda self, *a, **k: picks.append((self.candidates, self.selection, self.judged, self.properties is None)) or pick(self, *a, **k)
    )
    chosen = designer.generate(4, targets={"QED": 0.9}, seed=0)
    designer.generate(4, seed=0)  # no targets: calibrated by ring counts, not judged
    designer.generate(4, targets={"QED": 0.9}, seed=0, candidates=2, selection="draw", property_guidance=3.0)
    assert seen == [0.0, 0.0, 3.0]
    assert picks[0] == (config.default_candidates, "best", True, True) and picks[1][2] is False and picks[2] == (2, "draw", True, True)
    assert len(chosen) == 4 and all(r.smiles for r in chosen)
    # the judge's pick is near the target: QED 0.9 is at the top of MOSES' range
    assert all(r.properties["QED"] > 0.8 for r in chosen), [r.properties["QED"] for r in chosen]
    with pytest.raises(ValueError, match="default_scale=-1"):
        PredictorConfig(**{**designer.pipe.predictor.config.to_dict(), "default_scale": -1.0})
    with pytest.raises(ValueError, match="default_selection='top'"):
        JudgeConfig(**{**config.to_dict(), "default_selection": "top"})
    with pytest.raises(ValueError, match="default_candidates=0"):
        JudgeConfig(**{**config.to_dict(), "default_candidates": 0})


def test_repair_passes_redraw_the_broken_graphs_of_the_discrete_prior_from_their_first_fault():
    """``restarts`` on a discrete prior: graphs whose argmax decoding breaks a valence or falls apart keep their
    tokens before the first atom at fault and draw the rest again. Graphs that decoded valid are untouched, raw
    validity rises (about 84% -> 97% with 2 passes on 1,000 samples, scratch run), kept tokens of an edit stay,
    and the shipped model's default (``default_restarts``) applies when none is given."""
    import torch

    pipe = MolgenPipeline.from_pretrained(DISCRETE_MODEL, device="cpu")
    pipe.calibration = None  # the repairs alone: calibrated resampling (the model's default) would draw other candidates
    plain = pipe.sample_latents(200, seed=5, batch_size=200, restarts=0)
    repaired = pipe.sample_latents(200, seed=5, batch_size=200, restarts=2)
    before = torch.tensor([m.smiles is not None for m in pipe.decode(plain, decoding="raw")])
    after = torch.tensor([m.smiles is not None for m in pipe.decode(repaired, decoding="raw")])
    torch.testing.assert_close(repaired.z[before], plain.z[before])
    assert not torch.equal(repaired.z[~before], plain.z[~before])
    assert after.float().mean() >= 0.92 and after.sum() >= before.sum() + 10, (int(before.sum()), int(after.sum()))
    default = pipe.prior.config.default_restarts
    assert default >= 1
    torch.testing.assert_close(pipe.sample_latents(200, seed=5, batch_size=200).z, pipe.sample_latents(200, seed=5, batch_size=200, restarts=default).z)
    start = pipe.encode(["Cc1ccc(NC(=O)CN2CCN(C(=O)c3ccco3)CC2)cc1C"])
    keep = torch.zeros(1, start.z.shape[1], dtype=torch.bool)
    keep[0, :6] = True
    kept = pipe.sample_latents(40, seed=4, start=start, keep=keep, restarts=3)
    torch.testing.assert_close(kept.z[:, :6], start.z[:, :6].expand(40, -1, -1))


def test_the_shipped_calibration_was_measured_on_the_shipped_prior_weights():
    """A prior retrained without `molgen calibrate` leaves a stale calibration (its model histogram is another
    prior's): this fails until it is measured again. Loading the model uses it for unconditional sampling."""
    from molgen.calibration import Calibration

    calibration = Calibration.load(DISCRETE_MODEL / "calibration")
    assert calibration.check_prior(DISCRETE_MODEL / "prior" / "model.safetensors")
    assert calibration.properties == ["rings", "aromatic_rings", "unusual_rings"] and calibration.config.candidates == 2
    rings, aromatic = calibration.means()["rings"], calibration.means()["aromatic_rings"]
    assert rings[0] > rings[1] and aromatic[0] > aromatic[1]  # the deficit it corrects: data above the prior's samples
    pipe = MolgenPipeline.from_pretrained(DISCRETE_MODEL, device="cpu")
    assert pipe.calibration is not None and pipe.calibration.config == calibration.config
