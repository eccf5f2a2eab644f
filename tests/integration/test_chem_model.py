"""The drug-chemistry model shipped in checkpoints/chem: pickle-free and small, it reads ZINC molecules back with
their charges and stereo, its prior samples valid molecules that carry charges and stereo marks, and design on a
charged, chiral ZINC seed runs on its own prior.

Rates (reconstruction on 5,000 ZINC test molecules, the samples' charge and stereo shares on 10,000) are measured by
benchmarks.tokenizer and benchmarks.chemistry (BENCHMARKS.md); these tests guard against a broken or mismatched
checkpoint with small samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdkit import Chem

from molgen.pipeline import MolgenPipeline

from .test_shipped_model import _assert_pickle_free_and_small

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "checkpoints" / "chem"
SEED = "C[C@H]([NH3+])C(=O)N1CCN(c2ccccc2F)CC1"  # ZINC-250k: a charged amine on a stereocentre


@pytest.fixture(scope="module")
def pipe() -> MolgenPipeline:
    return MolgenPipeline.from_pretrained(MODEL, device="cpu")


def _charged(mol: Chem.Mol) -> bool:
    return any(atom.GetFormalCharge() for atom in mol.GetAtoms())


def _stereo(mol: Chem.Mol) -> bool:
    return any(mark in Chem.MolToSmiles(mol) for mark in "@/\\")


def test_chem_checkpoint_holds_its_card_and_only_json_and_safetensors():
    _assert_pickle_free_and_small(MODEL)


def test_chem_model_reads_held_out_zinc_molecules_back_with_charges_and_stereo(pipe):
    rows = [line.split()[0] for line in (REPO / "data" / "zinc" / "test.txt").read_text().splitlines() if line.strip()][:200]
    results = list(pipe.reconstruct(rows))
    assert all(r.canonical is not None for r in results)  # every one inside the vocabulary
    assert sum(r.exact for r in results) / len(results) >= 0.97, [(r.canonical, r.reconstructed) for r in results if not r.exact][:5]
    mols = [Chem.MolFromSmiles(r.reconstructed) for r in results if r.exact]
    assert sum(map(_charged, mols)) >= 40 and sum(map(_stereo, mols)) >= 80  # ZINC test: about a third charged, 60% with stereo


def test_chem_prior_samples_valid_molecules_with_charges_and_stereo(pipe):
    assert pipe.prior is not None, "checkpoints/chem has no prior/"
    samples = pipe.sample(64, seed=0, batch_size=32, decoding="valence")
    mols = [Chem.MolFromSmiles(m.smiles) for m in samples if m.smiles]
    assert len(mols) == 64 and all(len(Chem.GetMolFrags(m)) == 1 for m in mols)
    assert all(5 <= m.GetNumHeavyAtoms() <= pipe.prior.config.max_nodes for m in mols)
    assert len({m.smiles for m in samples}) >= 60
    # the data: 26% charged, 25% with stereo marks; 64 samples at those rates hold about 16 of each
    assert sum(map(_charged, mols)) >= 4 and sum(map(_stereo, mols)) >= 4


def test_analogs_of_a_charged_chiral_seed_on_the_chem_prior():
    from molgen.design import Designer

    designer = Designer.from_pretrained(MODEL, device="cpu", batch_size=16)
    results = designer.analogs(SEED, 16, similarity=0.5, seed=0)
    valid = [r for r in results if r.state == "valid"]
    assert len(valid) >= 8, [r.state for r in results]
    mean = sum(r.similarity for r in valid) / len(valid)
    assert 0.3 <= mean <= 0.8, mean  # the similarity asked for is the mean aimed at
    assert any(_charged(Chem.MolFromSmiles(r.smiles)) for r in valid)
    assert any("@" in r.smiles for r in valid)  # the stereocentre survives in some of them
