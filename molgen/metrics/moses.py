"""Generated SMILES + reference statistics -> the MOSES metrics, with MOSES' definitions and key names.

Reproduces ``moses.metrics.get_all_metrics`` (molsets 0.3.1) without importing it:

- ``valid``: fraction of entries RDKit parses and sanitises (None and non-strings are invalid).
- ``unique@k``: MOSES replaces the sample by the canonical SMILES of its valid entries, in order, and reports
  the fraction of distinct ones among the first k of those (all of them, with a warning, if fewer than k).
- every other metric is computed on the valid molecules, each re-parsed from its canonical SMILES, duplicates
  kept: FCD, SNN, Frag, Scaf against a test set (``/Test``) and a scaffold test set (``/TestSF``); IntDiv,
  IntDiv2; Filters; Wasserstein distances of logP, SA, QED, weight to the test set; Novelty (fraction of the
  distinct canonical SMILES not in the training set).

Identical input strings are featurized once and weighted by their count, which gives MOSES' numbers for the
full list at the cost of the distinct molecules only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from molgen.metrics.fcd import FCDStats, frechet_distance
from molgen.metrics.molecules import PROPERTY_NAMES, MoleculeFeatures, featurize_many
from molgen.metrics.reference import NoveltyReference, ReferenceStats
from molgen.metrics.similarity import internal_diversity, nearest_neighbour_similarity, unpack_bits

__all__ = ["compute_metrics", "cosine_similarity"]

log = logging.getLogger(__name__)


def cosine_similarity(ref_counts: Mapping[str, float], gen_counts: Mapping[str, float]) -> float:
    """Cosine similarity of two count vectors given as {name: count} (absent names count 0); NaN if either is empty."""
    if not ref_counts or not gen_counts:
        return math.nan
    keys = set(ref_counts) | set(gen_counts)
    ref = np.array([ref_counts.get(key, 0) for key in keys], dtype=np.float64)
    gen = np.array([gen_counts.get(key, 0) for key in keys], dtype=np.float64)
    return float(ref @ gen / (np.linalg.norm(ref) * np.linalg.norm(gen)))


def _weighted_counts(values: Sequence[Sequence[str]], weights: np.ndarray) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for items, weight in zip(values, weights):
        for item in items:
            counts[item] += int(weight)
    return dict(counts)


def compute_metrics(
    generated: Sequence[str | None],
    test: ReferenceStats,
    test_scaffolds: ReferenceStats | None = None,
    train: NoveltyReference | ReferenceStats | None = None,
    k: Sequence[int] = (1000, 10000),
    device: str | torch.device = "cpu",
    batch_size: int = 512,
    n_jobs: int = 1,
) -> dict[str, float]:
    """MOSES metrics of ``generated`` SMILES (None entries count as invalid samples).

    Args:
        generated: N sampled SMILES, in sampling order (unique@k looks at the first valid ones).
        test: statistics of the test set (FCD, SNN, Frag, Scaf ``/Test`` and the property distances).
        test_scaffolds: statistics of the scaffold test set (``/TestSF`` metrics), or None to skip them.
        train: training set for Novelty, or None to skip it.
        k: the sizes of unique@k.
        device: torch device for ChemNet and the Tanimoto products.
        batch_size: molecules per ChemNet batch.
        n_jobs: processes computing RDKit features.

    Returns:
        ``{name: value}`` with MOSES' names, in MOSES' order: valid, unique@k..., FCD/Test, SNN/Test, Frag/Test,
        Scaf/Test, [FCD/TestSF, SNN/TestSF, Frag/TestSF, Scaf/TestSF], IntDiv, IntDiv2, Filters, logP, SA, QED,
        weight, [Novelty]. Values that cannot be computed (no valid molecule, fewer than 2 for FCD) are NaN.
    """
    if len(generated) == 0:
        raise ValueError("no generated SMILES to evaluate (empty list)")
    start = time.time()

    # 1. Featurize each distinct input string once; remember which entry uses which.
    distinct: dict[str, int] = {}
    entry_row = np.array([distinct.setdefault(s, len(distinct)) if isinstance(s, str) else -1 for s in generated])
    results = featurize_many(list(distinct), generated=True, filters=True, n_jobs=n_jobs, what="generated molecules")
    row_valid = np.array([valid for valid, _ in results] + [False])  # index -1 (not a string): invalid
    row_features: list[MoleculeFeatures | None] = [features for _, features in results] + [None]
    metrics: dict[str, float] = {"valid": float(row_valid[entry_row].mean())}

    # 2. unique@k on the canonical SMILES of the valid entries, in sampling order.
    canonical = [row_features[r].canonical for r in entry_row if row_features[r] is not None]
    for size in k:
        first = canonical[:size]
        if len(first) < size:
            log.warning("unique@%d computed on %d valid molecules only (fewer than %d)", size, len(first), size)
        metrics[f"unique@{size}"] = len(set(first)) / len(first) if first else math.nan

    # 3. Distinct molecules with their counts among the valid entries.
    counts = np.bincount(entry_row[entry_row >= 0], minlength=len(distinct))
    rows = [r for r in range(len(distinct)) if row_features[r] is not None and counts[r] > 0]
    features = [row_features[r] for r in rows]
    weights = counts[rows].astype(np.float64)  # (M,)
    log.info(
        "%d generated, %d valid, %d distinct valid inputs (%.0f s)",
        len(generated), len(canonical), len(rows), time.time() - start,
    )  # fmt: skip
    if not features:
        log.warning("no valid molecule: every distribution metric is NaN")
        names = ["FCD", "SNN", "Frag", "Scaf"]
        suffixes = ["Test"] + (["TestSF"] if test_scaffolds is not None else [])
        metrics.update({f"{n}/{s}": math.nan for s in suffixes for n in names})
        metrics.update({n: math.nan for n in ["IntDiv", "IntDiv2", "Filters", *PROPERTY_NAMES]})
        if train is not None:
            metrics["Novelty"] = math.nan
        return metrics

    # 4. Reference comparisons: the sample's ChemNet statistics are computed once for both references.
    gen_fcd = FCDStats.from_smiles([f.canonical for f in features], weights, device, batch_size, what="generated molecules")
    bits = unpack_bits(np.frombuffer(b"".join(f.fingerprint for f in features), dtype=np.uint8).reshape(len(features), -1))
    fragments = _weighted_counts([f.fragments for f in features], weights)
    scaffolds = _weighted_counts([(f.scaffold,) if f.scaffold is not None else () for f in features], weights)
    for suffix, ref in (("Test", test), ("TestSF", test_scaffolds)):
        if ref is None:
            continue
        t = time.time()
        both = gen_fcd is not None and ref.fcd is not None
        metrics[f"FCD/{suffix}"] = frechet_distance(gen_fcd, ref.fcd) if both else math.nan
        metrics[f"SNN/{suffix}"] = nearest_neighbour_similarity(bits, unpack_bits(ref.fingerprints), weights, device)
        metrics[f"Frag/{suffix}"] = cosine_similarity(ref.fragments, fragments)
        metrics[f"Scaf/{suffix}"] = cosine_similarity(ref.scaffolds, scaffolds)
        log.info("metrics against %s: %.0f s", suffix, time.time() - t)

    # 5. Metrics of the sample alone, and property distances to the test set.
    metrics["IntDiv"], metrics["IntDiv2"] = internal_diversity(bits, weights, device)
    metrics["Filters"] = float(np.dot(weights, [f.passes_filters for f in features]) / weights.sum())
    for name in PROPERTY_NAMES:
        values = np.array([getattr(f, name) for f in features])
        metrics[name] = float(wasserstein_distance(test.properties[name], values, v_weights=weights))
    if train is not None:
        reference = train.novelty if isinstance(train, ReferenceStats) else train
        distinct_canonical = sorted(set(canonical))
        metrics["Novelty"] = float(1.0 - reference.contains(distinct_canonical).mean())
    log.info("MOSES metrics of %d molecules in %.0f s", len(generated), time.time() - start)
    return metrics
