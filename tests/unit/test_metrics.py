"""molgen.metrics: MOSES metrics on small inputs; equivalence of the fast paths with plain RDKit / fcd_torch calls.

The full reproduction of MOSES' published numbers (30,000 molecules against the 176k-molecule test sets) takes
longer than a unit test may (ChemNet alone reads ~350k molecules on a cold cache): it is asserted by
``python -m benchmarks.moses_metrics``.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from rdkit import Chem, DataStructs, RDConfig, RDLogger
from rdkit.Chem import QED, AllChem

from molgen.chem import PROPERTIES
from molgen.metrics import (
    FCDStats,
    NoveltyReference,
    ReferenceStats,
    StaleCacheError,
    compute_metrics,
    cosine_similarity,
    default_cache_dir,
    frechet_distance,
    get_mol,
    internal_diversity,
    passes_filters,
)
from molgen.metrics import molecules as molecules_module
from molgen.metrics import reference as reference_module
from molgen.metrics import similarity as similarity_module
from molgen.metrics.fcd import _one_hot, chemnet_tokens
from molgen.metrics.molecules import filter_patterns, morgan_bits, qed
from molgen.metrics.similarity import max_tanimoto, tanimoto_matrix

RDLogger.DisableLog("rdApp.*")


@pytest.fixture(scope="module")
def nci() -> list[str]:
    """The first 5,000 NCI molecules shipped with RDKit: diverse, with charges, metals and PAINS hits."""
    with open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi") as handle:
        return [line.split()[0] for line in handle if line.strip()]


@pytest.fixture(scope="module")
def test_200(moses_sample) -> list[str]:
    return moses_sample("test", 200, seed=1)


@pytest.fixture(scope="module")
def ref_200(test_200) -> ReferenceStats:
    return ReferenceStats.from_smiles(test_200)


# --- validity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, "", "xyz", "C1CC", "c1cccc1", "C(C)(C)(C)(C)C", 42, b"CCO"])
def test_get_mol_rejects_bad_input_without_raising(bad):
    assert get_mol(bad) is None


def test_invalid_entries_are_counted_and_never_crash(ref_200, test_200):
    generated = test_200[:20] + [None, "xyz", "", "C1CC", "c1cccc1"] + [12]  # type: ignore[list-item]
    metrics = compute_metrics(generated, ref_200, k=(10,))
    assert metrics["valid"] == pytest.approx(20 / 26)
    assert metrics["unique@10"] == 1.0
    assert 0 < metrics["SNN/Test"] <= 1


def test_no_valid_molecule_gives_nan_not_an_error(ref_200):
    metrics = compute_metrics(["xyz", None, "C1CC"], ref_200, ref_200, ref_200, k=(10,))
    assert metrics["valid"] == 0
    assert all(math.isnan(v) for key, v in metrics.items() if key != "valid")
    assert {"FCD/TestSF", "Novelty", "weight"} <= set(metrics)


def test_empty_sample_is_an_error(ref_200):
    with pytest.raises(ValueError, match="empty"):
        compute_metrics([], ref_200)


# --- the metrics on sets with known answers ---------------------------------------------------------


def test_sample_equal_to_reference(ref_200, test_200):
    metrics = compute_metrics(test_200, ref_200, ref_200, ref_200, k=(100, 1000))
    assert list(metrics)[:3] == ["valid", "unique@100", "unique@1000"]
    assert metrics["valid"] == 1 and metrics["unique@100"] == 1
    assert abs(metrics["FCD/Test"]) < 1e-3
    assert metrics["SNN/Test"] == pytest.approx(1.0)
    assert metrics["Frag/Test"] == pytest.approx(1.0) and metrics["Scaf/Test"] == pytest.approx(1.0)
    assert metrics["Novelty"] == 0
    for name in ("logP", "SA", "QED", "weight"):
        assert metrics[name] == pytest.approx(0.0, abs=1e-9)
    assert 0.5 < metrics["IntDiv"] < 1 and metrics["IntDiv2"] < metrics["IntDiv"]


def test_different_molecules_score_lower(ref_200, moses_sample):
    other = compute_metrics(moses_sample("train", 200, seed=5), ref_200, k=(100,))
    assert other["FCD/Test"] > 0.5
    assert other["SNN/Test"] < 0.8


def test_repeated_molecule_has_no_diversity(ref_200):
    metrics = compute_metrics(["Oc1ccccc1"] * 40 + ["c1ccc(O)cc1"] * 10, ref_200, k=(20,))
    assert metrics["IntDiv"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["IntDiv2"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["unique@20"] == 1 / 20


def test_novelty_is_zero_for_training_molecules_written_differently():
    train = NoveltyReference.from_smiles(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "not a smiles"])
    assert train.contains(["CCO", "Oc1ccccc1", "CCN"]).tolist() == [True, True, False]
    assert len(train.hashes) == 3


def test_novelty_counts_distinct_molecules(ref_200):
    train = NoveltyReference.from_smiles(["CCO", "CCN"])
    # 3 distinct valid molecules, one of them in train: novelty 2/3 whatever the repeats
    metrics = compute_metrics(["OCC", "CCO", "CCCl", "CCCl", "CCBr", "xyz"], ref_200, train=train, k=(5,))
    assert metrics["Novelty"] == pytest.approx(2 / 3)
    raw = NoveltyReference.from_smiles(["OCC"], canonicalize=False)  # MOSES compares with the strings as written
    assert not raw.contains(["CCO"])[0]


def test_unique_at_k_uses_the_first_k_valid_and_warns_when_short(ref_200, caplog):
    generated = ["CCO", "xyz", "OCC", "CCN", "CCC"]
    with caplog.at_level(logging.WARNING, logger="molgen.metrics.moses"):
        metrics = compute_metrics(generated, ref_200, k=(2, 10))
    assert metrics["unique@2"] == 0.5  # CCO and OCC are the same molecule; 'xyz' is skipped
    assert metrics["unique@10"] == 0.75
    assert "unique@10 computed on 4 valid molecules" in caplog.text


def test_duplicates_are_weighted_like_the_full_list(ref_200, test_200):
    sample = test_200[:30]
    repeated = sample + sample[:10] * 3
    expanded = compute_metrics(repeated, ref_200, k=(10,))
    # the same multiset written with distinct strings (non-canonical spellings) is featurized per string
    spelled = sample + [Chem.MolToSmiles(Chem.MolFromSmiles(s), doRandom=True, canonical=False) for s in sample[:10] * 3]
    rewritten = compute_metrics(spelled, ref_200, k=(10,))
    for key in expanded:
        assert expanded[key] == pytest.approx(rewritten[key], rel=1e-5, abs=1e-6), key


def test_cosine_similarity():
    assert cosine_similarity({"a": 1, "b": 2}, {"b": 4, "a": 2}) == pytest.approx(1.0)
    assert cosine_similarity({"a": 1}, {"b": 1}) == 0.0
    assert math.isnan(cosine_similarity({}, {"a": 1}))


# --- Tanimoto ---------------------------------------------------------------------------------------


def _bits(smiles: list[str]) -> np.ndarray:
    return np.stack([morgan_bits(Chem.MolFromSmiles(s)) for s in smiles])


def test_morgan_bits_are_moses_fingerprints(test_200):
    for smiles in test_200[:50]:
        mol = Chem.MolFromSmiles(smiles)
        old = np.asarray(AllChem.GetMorganFingerprintAsBitVect(mol, 2, nBits=1024), dtype=np.uint8)
        assert np.array_equal(morgan_bits(mol), old)


def test_tanimoto_matches_rdkit(test_200, monkeypatch):
    mols = [Chem.MolFromSmiles(s) for s in test_200[:60]]
    fps = [AllChem.GetMorganGenerator(radius=2, fpSize=1024).GetFingerprint(m) for m in mols]
    expected = np.array([DataStructs.BulkTanimotoSimilarity(fp, fps) for fp in fps])
    bits = _bits(test_200[:60])
    np.testing.assert_allclose(tanimoto_matrix(bits, bits), expected, rtol=1e-6)
    monkeypatch.setattr(similarity_module, "_int_mm_available", lambda: False)  # the float fallback
    np.testing.assert_allclose(tanimoto_matrix(bits, bits), expected, rtol=1e-6)


def test_chunked_max_and_diversity_match_brute_force(test_200):
    gen, ref = _bits(test_200[:70]), _bits(test_200[70:200])
    full = tanimoto_matrix(gen, ref)
    np.testing.assert_allclose(max_tanimoto(gen, ref, gen_chunk=16, ref_chunk=33), full.max(1), rtol=1e-6)
    weights = np.arange(1, 71, dtype=float) % 4  # zeros included
    expanded = np.repeat(gen, weights.astype(int), axis=0)
    t = tanimoto_matrix(expanded, expanded)
    brute = (1 - t.mean(), 1 - np.sqrt((t**2).mean(1)).mean())
    np.testing.assert_allclose(internal_diversity(gen, weights, chunk=16), brute, rtol=1e-6)


def test_empty_fingerprints_are_identical():
    empty, one = np.zeros((1, 1024), np.uint8), np.eye(1, 1024, dtype=np.uint8)
    assert tanimoto_matrix(empty, empty)[0, 0] == 1.0
    assert tanimoto_matrix(empty, one)[0, 0] == 0.0


# --- filters, QED -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("smiles", "why"),
    [
        ("N#CC(=Cc1ccccc1)C(=O)O", "MCF1"),
        ("CC1=CC(=O)C=CC1=O", "PAINS quinone_A"),
        ("CC=C1SC(=S)NC1=O", "PAINS ene_rhod_A"),
        ("C[N+](C)(C)Cc1ccccc1", "charged atom"),
        ("CC(=O)[O-]", "charged atom"),
        ("CP(C)c1ccccc1", "phosphorus is not allowed"),
        ("C1CCCCCCC1", "ring of 8 atoms"),
    ],
)
def test_filters_reject(smiles, why):
    assert not passes_filters(Chem.MolFromSmiles(smiles)), why


def test_filters_accept_clean_molecules(test_200):
    assert passes_filters(Chem.MolFromSmiles("CC(C)Cc1ccc(C(C)C(=O)O)cc1"))  # ibuprofen
    assert sum(passes_filters(Chem.MolFromSmiles(s)) for s in test_200) == 200  # MOSES is filtered by them


def test_filter_tables_are_moses():
    names = [name for name, _ in filter_patterns()]
    assert len(names) == 22 + 480
    assert names[0] == "MCF1" and names[22].startswith("<regId=")


def test_screened_filters_and_qed_equal_plain_rdkit(nci):
    """The pattern-fingerprint screen may only skip patterns that cannot match: same verdicts, same QED."""
    patterns = [query for _, query in filter_patterns()]
    n_failed = 0
    for smiles in nci[:1500]:
        mol = get_mol(smiles)
        if mol is None:
            continue
        plain = Chem.AddHs(mol)
        assert molecules_module._any_match(plain, molecules_module._screened_filters()) == any(
            plain.HasSubstructMatch(q) for q in patterns
        ), smiles
        n_failed += not passes_filters(mol)
        assert qed(mol) == QED.qed(mol), smiles
        assert molecules_module._qed_and_logp(mol)[1] == PROPERTIES["logP"](mol), smiles
    assert n_failed > 300  # the NCI set really exercises the filters


# --- FCD --------------------------------------------------------------------------------------------


def test_chemnet_encoding_is_fcd_torch(test_200):
    from fcd_torch.utils import get_one_hot

    odd = ["CCl", "BrCCBr", "C[Si](C)(C)C", "CC.O", "[Li+].[Cl-]", "C" * 400, "C[Se]C", "Clc1ccccc1"]
    for smiles in test_200[:30] + odd:
        expected = (get_one_hot(smiles, 350) / 35).astype(np.float32)  # (350, 35)
        assert np.array_equal(_one_hot([chemnet_tokens(smiles)])[0].T.numpy(), expected), smiles


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside fcd_torch
def test_frechet_distance_matches_scipy_sqrtm():
    from fcd_torch.utils import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 30)), rng.normal(size=(300, 30)) @ rng.normal(size=(30, 30)) * 0.3
    sa, sb = FCDStats(a.mean(0), np.cov(a.T), 40), FCDStats(b.mean(0) + 0.1, np.cov(b.T), 300)
    expected = calculate_frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert frechet_distance(sa, sb) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(sb, sa) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(sa, sa) == pytest.approx(0.0, abs=1e-6)


def test_fcd_weights_equal_repeated_rows(test_200):
    smiles = test_200[:12]
    weights = np.array([1, 2, 1, 3, 1, 1, 1, 1, 2, 1, 1, 1])
    weighted = FCDStats.from_smiles(smiles, weights=weights, batch_size=5)
    repeated = FCDStats.from_smiles([s for s, w in zip(smiles, weights) for _ in range(w)])
    np.testing.assert_allclose(weighted.mu, repeated.mu, atol=1e-9)
    np.testing.assert_allclose(weighted.sigma, repeated.sigma, atol=1e-9)
    assert FCDStats.from_smiles(["CCO"]) is None


# --- cache ------------------------------------------------------------------------------------------


def test_reference_cache_round_trip(ref_200, test_200, tmp_path):
    ref_200.save(tmp_path / "ref")
    loaded = ReferenceStats.load(tmp_path / "ref", expected_key=ref_200.key)
    assert loaded.n_valid == ref_200.n_valid == 200 and loaded.n_input == 200
    np.testing.assert_array_equal(loaded.fingerprints, ref_200.fingerprints)
    np.testing.assert_array_equal(loaded.fcd.sigma, ref_200.fcd.sigma)
    np.testing.assert_array_equal(loaded.novelty.hashes, ref_200.novelty.hashes)
    assert loaded.fragments == ref_200.fragments and loaded.scaffolds == ref_200.scaffolds
    for name, values in ref_200.properties.items():
        np.testing.assert_array_equal(loaded.properties[name], values)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind
    # the saved files are plain JSON and npz (no pickle)
    assert json.loads((tmp_path / "ref" / "stats.json").read_text())["key"] == ref_200.key
    np.load(tmp_path / "ref" / "stats.npz", allow_pickle=False)["fingerprints"]
    # metrics from the loaded statistics are the same
    assert compute_metrics(test_200[:30], loaded, k=(10,)) == compute_metrics(test_200[:30], ref_200, k=(10,))


def test_cached_reference_is_reused_and_never_stale(test_200, tmp_path, monkeypatch):
    first = ReferenceStats.cached(test_200[:40], "tiny", cache_dir=tmp_path)
    (directory,) = tmp_path.glob("tiny-*")

    def no_recompute(*args, **kwargs):
        raise AssertionError("recomputed although a valid cache exists")

    with monkeypatch.context() as m:
        m.setattr(ReferenceStats, "from_smiles", no_recompute)
        again = ReferenceStats.cached(test_200[:40], "tiny", cache_dir=tmp_path)
    assert again.key == first.key
    np.testing.assert_array_equal(again.fingerprints, first.fingerprints)

    # other molecules: another key, never the old statistics
    other = ReferenceStats.cached(test_200[1:41], "tiny", cache_dir=tmp_path)
    assert other.key != first.key and len(list(tmp_path.glob("tiny-*"))) == 2
    with pytest.raises(StaleCacheError, match="other SMILES"):
        ReferenceStats.load(directory, expected_key=other.key)

    # a cache directory holding statistics of other molecules is detected and recomputed
    meta = json.loads((directory / "stats.json").read_text())
    meta["key"] = "0" * 64
    (directory / "stats.json").write_text(json.dumps(meta))
    recomputed = ReferenceStats.cached(test_200[:40], "tiny", cache_dir=tmp_path)
    assert recomputed.key == first.key
    assert json.loads((directory / "stats.json").read_text())["key"] == first.key


def test_novelty_cache_round_trip_and_staleness(tmp_path):
    train = ["CCO", "CCN", "c1ccccc1"]
    ref = NoveltyReference.cached(train, "train", cache_dir=tmp_path)
    (directory,) = tmp_path.glob("train-*")
    loaded = NoveltyReference.load(directory, expected_key=ref.key)
    np.testing.assert_array_equal(loaded.hashes, ref.hashes)
    with pytest.raises(StaleCacheError):
        NoveltyReference.load(directory, expected_key=NoveltyReference.from_smiles(train, canonicalize=False).key)
    # a novelty cache is not reference statistics
    (directory / "stats.json").write_text((directory / "novelty.json").read_text())
    with pytest.raises(StaleCacheError, match="expected 'reference'"):
        ReferenceStats.load(directory)


def test_shipped_copy_is_used_only_for_the_same_smiles_and_rdkit_series(test_200, tmp_path, monkeypatch):
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    ReferenceStats.from_smiles(test_200[:40]).save(shipped / "tiny", compressed=True)
    NoveltyReference.from_smiles(test_200[:40]).save(shipped / "train", compressed=True)

    def no_recompute(*args, **kwargs):
        raise AssertionError("recomputed although the shipped copy matches")

    with monkeypatch.context() as m:
        m.setattr(ReferenceStats, "from_smiles", no_recompute)
        m.setattr(NoveltyReference, "from_smiles", no_recompute)
        stats = ReferenceStats.cached(test_200[:40], "tiny", cache_dir=cache, shipped_dir=shipped)
        novelty = NoveltyReference.cached(test_200[:40], "train", cache_dir=cache, shipped_dir=shipped)
    assert stats.n_valid == 40 and len(novelty.hashes) == 40
    assert not cache.exists()  # loaded from the shipped copy, nothing written to the cache

    # other molecules: the shipped copy is not used, the statistics are computed and cached
    other = ReferenceStats.cached(test_200[1:41], "tiny", cache_dir=cache, shipped_dir=shipped)
    assert other.key != stats.key and len(list(cache.glob("tiny-*"))) == 1

    # another RDKit release series: the same SMILES get another key, so the shipped copy is recomputed
    monkeypatch.setattr(reference_module.rdkit, "__version__", "2099.03.1")
    assert reference_module.rdkit_series() == "2099.03"
    again = ReferenceStats.cached(test_200[:40], "tiny", cache_dir=cache, shipped_dir=shipped)
    assert again.key != stats.key and len(list(cache.glob("tiny-*"))) == 2
    # a patch release of the same series keeps the key
    monkeypatch.setattr(reference_module.rdkit, "__version__", "2099.03.4")
    assert reference_module.smiles_key(test_200[:40], "reference") == again.key


def test_rdkit_series():
    assert reference_module.rdkit_series("2026.09.1") == "2026.09"
    assert reference_module.rdkit_series("2024.03.6") == "2024.03"


def test_shipped_moses_references_load_without_computing(tmp_path, monkeypatch):
    """The copy in data/moses/reference matches the shipped MOSES files; a fresh install only loads it."""
    shipped = reference_module.SHIPPED_DIR
    meta = json.loads((shipped / "moses_test" / "stats.json").read_text())
    if reference_module.rdkit_series(meta["versions"]["rdkit"]) != reference_module.rdkit_series():
        pytest.skip(f"shipped statistics are for RDKit {meta['versions']['rdkit']}, this is {reference_module.rdkit.__version__}")

    def no_recompute(*args, **kwargs):
        raise AssertionError("the shipped MOSES statistics do not match data/moses: rerun benchmarks.moses_metrics --ship")

    monkeypatch.setattr(ReferenceStats, "from_smiles", no_recompute)
    monkeypatch.setattr(NoveltyReference, "from_smiles", no_recompute)
    refs = reference_module.moses_references(cache_dir=tmp_path)
    assert refs.test.n_input == 176_074 and refs.test.fcd is not None and refs.test.fcd.sigma.shape == (512, 512)
    assert refs.test_scaffolds.n_valid > 170_000 and len(refs.train.hashes) > 1_500_000
    # the first MOSES test molecule is in the test set's canonical SMILES set, a long alkane is not
    first = Chem.MolToSmiles(Chem.MolFromSmiles("CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1"))
    assert refs.test.novelty.contains([first, "C" * 30]).tolist() == [True, False]


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MOLGEN_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "metrics"
    monkeypatch.delenv("MOLGEN_CACHE")
    assert str(default_cache_dir()).endswith(".cache/molgen/metrics")
    assert reference_module.smiles_key(["CCO"], "reference") != reference_module.smiles_key(["OCC"], "reference")


def test_ring_statistics_counts_rings_aromatic_rings_and_unusual_sizes():
    from molgen.metrics import ring_statistics

    figures = ring_statistics(["c1ccccc1", "C1CC1", "CCO", "c1ccc2ccccc2c1", None, "xyz", "C1CCCCCCC1"])
    assert figures["molecules"] == 5  # None and the unparsable one are skipped
    assert figures["rings"] == pytest.approx((1 + 1 + 0 + 2 + 1) / 5)
    assert figures["aromatic rings"] == pytest.approx((1 + 0 + 0 + 2 + 0) / 5)
    assert figures["no aromatic ring"] == pytest.approx(3 / 5)
    assert figures["unusual ring sizes"] == pytest.approx(2 / 5)  # the 3- and 8-membered of 5 rings
    assert ring_statistics(["xyz"])["molecules"] == 0
