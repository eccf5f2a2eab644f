"""Design on real drugs with the drug-chemistry tokenizer (checkpoints/chem): charged and chiral seeds up to 50 heavy
atoms are accepted (where the tokenizer reads them back), analogs keep the seed's stereo on atoms they keep,
decorations keep a chiral, charged core exactly, and a seed outside the model's chemistry is refused naming what is
outside. The prior here is a tiny
discrete one trained in seconds on a few ZINC molecules (the suite never depends on the shipped prior's quality)."""

from __future__ import annotations

import pytest
from rdkit import Chem

from molgen.design import Designer, DesignInputError

from ..conftest import REPO
from .conftest import model_with_tiny_prior

CHEM = REPO / "checkpoints" / "chem"
# ZINC-250k molecules (data/zinc/opt.test.logP-SA and test.txt) with charges, stereocentres and E/Z bonds.
TRAINING = [
    "C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1",
    "C[NH+](C)CCC(=O)N1CCC[C@H]1c1nc2ccccc2[nH]1",
    "O=C([O-])[C@@H]1CCCN(C(=O)c2ccc(F)cc2F)C1",
    "C/C(=N\\NC(=O)c1ccc(Cl)cc1)c1ccc(N)cc1",
    "CC(C)[C@@H](C)[NH2+]Cc1ccc(-n2ccnc2)cc1",
    "COc1ccc(/C=C/C(=O)N[C@H](C)c2ccccc2)cc1",
    "C[C@H]([NH3+])C(=O)N1CCN(c2ccccc2F)CC1",
    "O=C(N[C@@H]1CCS(=O)(=O)C1)c1cc([N+](=O)[O-])ccc1Cl",
]
CHIRAL_CHARGED_SEED = "C[C@H]([NH3+])C(=O)N1CCN(c2ccccc2F)CC1"
LARGE_SEED = (  # 49 heavy atoms (ZINC-250k goes up to 38), charged, two stereocentres; a held-out training-style join
    "CCCc1n[nH]c([C@H]2CN(Cc3nc4ccc(-c5cc(C[S@](=O)Cc6ccc(Cl)cc6)oc5C(=O)N5CC[NH+](C)CC5)cc4o3)CCO2)n1"
)


@pytest.fixture(scope="module")
def chem_model(tmp_path_factory):
    """checkpoints/chem's domain and tokenizer with a tiny discrete prior trained on TRAINING."""
    return model_with_tiny_prior(CHEM, TRAINING, tmp_path_factory.mktemp("chem_model"), architecture="discrete")


@pytest.fixture(scope="module")
def designer(chem_model) -> Designer:
    return Designer.from_pretrained(chem_model, device="cpu", batch_size=16)


def _stereo_environments(smiles: str, radius: int = 3) -> list[Chem.Mol]:
    """For each stereocentre and stereo double bond of ``smiles``: its environment of ``radius`` bonds as a query
    carrying that element's stereo only (so a match asks about that one centre or bond)."""
    mol = Chem.MolFromSmiles(smiles)
    out = []
    centres = [a.GetIdx() for a in mol.GetAtoms() if a.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED]
    for centre in centres:
        bonds = Chem.FindAtomEnvironmentOfRadiusN(mol, radius, centre)
        atoms: dict[int, int] = {}
        env = Chem.PathToSubmol(mol, bonds, atomMap=atoms)
        for atom in env.GetAtoms():
            if atom.GetIdx() != atoms[centre]:
                atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        for bond in env.GetBonds():
            bond.SetStereo(Chem.BondStereo.STEREONONE)
        out.append(env)
    return out


def test_the_chem_tokenizer_reads_every_training_molecule_back(chem_model):
    from molgen.pipeline import MolgenPipeline

    pipe = MolgenPipeline.from_pretrained(chem_model, device="cpu")
    assert all(r.exact for r in pipe.reconstruct([*TRAINING, LARGE_SEED]))


def test_analogs_of_a_charged_chiral_seed_keep_its_centre_where_they_keep_its_environment(designer):
    results = designer.analogs(CHIRAL_CHARGED_SEED, 12, similarity=0.6, seed=1)
    valid = [r for r in results if r.state in ("valid", "duplicate")]
    assert valid
    environments = _stereo_environments(CHIRAL_CHARGED_SEED)
    assert environments
    for result in valid:
        mol = Chem.MolFromSmiles(result.smiles)
        for env in environments:
            if mol.HasSubstructMatch(env):
                assert mol.HasSubstructMatch(env, useChirality=True), result.smiles


def test_decorations_keep_a_chiral_charged_core_exactly(designer):
    core = "C[C@H]([NH3+])C(=O)N1CCN([*:1])CC1"
    results = designer.decorate(core, 8, seed=0)
    valid = [r for r in results if r.state == "valid"]
    assert valid
    template = Chem.MolFromSmiles("C[C@H]([NH3+])C(=O)N1CCNCC1")
    for result in valid:
        assert Chem.MolFromSmiles(result.smiles).HasSubstructMatch(template, useChirality=True), result.smiles


def test_a_49_atom_charged_chiral_seed_is_accepted(designer):
    assert Chem.MolFromSmiles(LARGE_SEED).GetNumHeavyAtoms() == 49
    results = designer.analogs(LARGE_SEED, 2, similarity=0.8, seed=0, max_attempts=8)
    assert results and all(r.smiles is None or Chem.MolFromSmiles(r.smiles) is not None for r in results)


@pytest.mark.parametrize(
    ("smiles", "message"),
    [
        ("CC(=O)Nc1ccc([SiH3])cc1", r"element Si is outside this model's chemistry \(its elements: .*I"),
        ("C" * 70, r"70 heavy atoms, more than this tokenizer's max_nodes"),
    ],
)
def test_a_seed_outside_the_chem_models_chemistry_is_refused_naming_what(designer, smiles, message):
    with pytest.raises(DesignInputError, match=message):
        designer.analogs(smiles, 2)


def test_optimisation_from_a_charged_chiral_seed_sends_only_valid_molecules(designer):
    from rdkit.Chem import QED

    seen = []

    def objective(smiles: str) -> float:
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None
        seen.append(smiles)
        return QED.qed(mol)

    result = designer.optimize(objective, calls=24, start=[CHIRAL_CHARGED_SEED], n=8, seed=0, strategy="remask")
    assert 0 < len(seen) <= 24
    assert result.best and result.best[0].score == max(QED.qed(Chem.MolFromSmiles(s)) for s in seen)
