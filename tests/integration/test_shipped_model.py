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
    """A shipped model directory holds its card (README.md) and otherwise only JSON and safetensors, tens of MB at most."""
    files = [p for p in model.rglob("*") if p.is_file()]
    assert files, f"no shipped model under {model}"
    assert (model / "README.md").is_file(), f"{model} has no model card"
    assert {p.suffix for p in files if p != model / "README.md"} <= {".json", ".safetensors"}
    assert sum(p.stat().st_size for p in files) < 50 * 2**20


def test_checkpoint_holds_its_card_and_only_json_and_safetensors():
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


def test_the_default_model_is_the_discrete_prior_and_samples_checked_molecules():
    """checkpoints/moses is what `molgen sample`, `molgen design` and `python app.py` use without --model:
    pickle-free, small, loads as a discrete prior, its valence-aware samples are single valid molecules of MOSES'
    size, varied, reproducible by seed, and its property conditioning moves the samples. Sample quality is measured
    by benchmarks.sampling (BENCHMARKS.md)."""
    from rdkit import Chem

    import molgen
    from molgen.prior.discrete import DiscreteAutoregressivePrior
    from molgen.sampling.discrete import DiscreteSampler

    assert molgen.DEFAULT_MODEL == MODEL
    _assert_pickle_free_and_small(MODEL)
    pipe = MolgenPipeline.from_pretrained(device="cpu")  # no path: the shipped model
    assert isinstance(pipe.prior, DiscreteAutoregressivePrior) and isinstance(pipe.sampler, DiscreteSampler)
    assert pipe.predictor is not None and pipe.judge is not None and pipe.calibration is not None
    samples = pipe.sample(48, seed=0, batch_size=24)
    mols = [Chem.MolFromSmiles(m.smiles) for m in samples]
    assert all(m is not None and len(Chem.GetMolFrags(m)) == 1 for m in mols)
    assert all(8 <= m.GetNumHeavyAtoms() <= pipe.prior.config.max_nodes for m in mols)
    assert len({m.smiles for m in samples}) >= 46
    assert [m.smiles for m in pipe.sample(48, seed=0, batch_size=24, properties=False)] == [m.smiles for m in samples]
    low = pipe.sample(48, seed=1, conditions={"logP": 1.0}, guidance_scale=2.0)
    high = pipe.sample(48, seed=1, conditions={"logP": 4.5}, guidance_scale=2.0)
    mean = lambda rs: sum(r.properties["logP"] for r in rs) / len(rs)  # noqa: E731
    assert mean(high) > mean(low) + 1.5, (mean(low), mean(high))  # about 0.4 vs 4.3 over three seeds


def test_the_default_models_design_tasks_run_on_the_discrete_prior():
    """Analogs, scaffold decoration and interpolation edit the discrete prior's codes: analogs stay near the seed
    (closer at a small strength), decorations keep the core, an interpolation starts and ends at its molecules."""
    from rdkit import Chem

    from molgen.design import Designer
    from molgen.design.chemistry import parse_core

    designer = Designer.from_pretrained(MODEL, device="cpu")
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
    """checkpoints/moses/judge (a graph network reading decoded candidates) ships default_candidates K > 1 and
    default_selection "best", and the predictor default_scale 0 (BENCHMARKS.md): a generate request with targets draws
    K candidates per molecule, decodes them and keeps the one the judge puts nearest the targets, without
    token-by-token steering; one without targets is not judged; a request's own candidates, selection and property
    guidance win (steering is the predictor's, the choice still the judge's); bad defaults are refused."""
    from molgen.design import Designer
    from molgen.sampling.guidance import Resampling
    from molgen.judge.model import JudgeConfig
    from molgen.prior.predictor import PredictorConfig

    designer = Designer.from_pretrained(MODEL, device="cpu")
    config = designer.pipe.judge.config
    assert designer.default_property_guidance == 0.0 and config.default_candidates > 1 and config.default_selection == "best"
    seen, picks = [], []
    original, pick = designer.pipe.sample_latents, Resampling.pick

    def spy(*args, **kwargs):
        seen.append(kwargs["config"].property_guidance)
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
    """``repairs``: graphs whose argmax decoding breaks a valence or falls apart keep their tokens before the first
    atom at fault and draw the rest again. Graphs that decoded valid are untouched, raw validity rises (about 84% ->
    97% with 2 passes on 1,000 samples), kept tokens of an edit stay, and the shipped model's default
    (``default_repairs``) applies when none is given."""
    import torch

    pipe = MolgenPipeline.from_pretrained(MODEL, device="cpu")
    pipe.calibration = None  # the repairs alone: calibrated resampling (the model's default) would draw other candidates
    plain = pipe.sample_latents(200, seed=5, batch_size=200, repairs=0)
    repaired = pipe.sample_latents(200, seed=5, batch_size=200, repairs=2)
    before = torch.tensor([m.smiles is not None for m in pipe.decode(plain, decoding="raw")])
    after = torch.tensor([m.smiles is not None for m in pipe.decode(repaired, decoding="raw")])
    torch.testing.assert_close(repaired.z[before], plain.z[before])
    assert not torch.equal(repaired.z[~before], plain.z[~before])
    assert after.float().mean() >= 0.92 and after.sum() >= before.sum() + 10, (int(before.sum()), int(after.sum()))
    default = pipe.prior.config.default_repairs
    assert default >= 1
    torch.testing.assert_close(pipe.sample_latents(200, seed=5, batch_size=200).z, pipe.sample_latents(200, seed=5, batch_size=200, repairs=default).z)
    start = pipe.encode(["Cc1ccc(NC(=O)CN2CCN(C(=O)c3ccco3)CC2)cc1C"])
    keep = torch.zeros(1, start.z.shape[1], dtype=torch.bool)
    keep[0, :6] = True
    kept = pipe.sample_latents(40, seed=4, start=start, keep=keep, repairs=3)
    torch.testing.assert_close(kept.z[:, :6], start.z[:, :6].expand(40, -1, -1))


def test_the_shipped_calibration_was_measured_on_the_shipped_prior_weights():
    """A prior retrained without `molgen calibrate` leaves a stale calibration (its model histogram is another
    prior's): this fails until it is measured again. Loading the model uses it for unconditional sampling."""
    from molgen.calibration import Calibration

    calibration = Calibration.load(MODEL / "calibration")
    assert calibration.check_prior(MODEL / "prior" / "model.safetensors")
    assert calibration.properties == ["rings", "aromatic_rings", "unusual_rings"] and calibration.config.candidates == 2
    rings, aromatic = calibration.means()["rings"], calibration.means()["aromatic_rings"]
    assert rings[0] > rings[1] and aromatic[0] > aromatic[1]  # the deficit it corrects: data above the prior's samples
    pipe = MolgenPipeline.from_pretrained(MODEL, device="cpu")
    assert pipe.calibration is not None and pipe.calibration.config == calibration.config
