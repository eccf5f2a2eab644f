"""MOSES metrics of generated molecules, rebuilt on RDKit and fcd_torch (molsets itself is not imported).

Data flow, one module per arrow::

    SMILES -> molecules (RDKit features) -> fcd (ChemNet statistics), similarity (Tanimoto aggregates)
    reference SMILES -> reference (cached ReferenceStats / NoveltyReference)
    generated SMILES + references -> moses.compute_metrics -> {MOSES metric name: value}

Typical use::

    refs = moses_references()                      # computed once, then loaded from the cache
    metrics = compute_metrics(smiles, refs.test, refs.test_scaffolds, refs.train)
"""

from molgen.metrics.fcd import FCDStats, frechet_distance
from molgen.metrics.molecules import MoleculeFeatures, get_mol, passes_filters, ring_statistics
from molgen.metrics.moses import compute_metrics, cosine_similarity
from molgen.metrics.reference import (
    MosesReferences,
    NoveltyReference,
    ReferenceStats,
    StaleCacheError,
    default_cache_dir,
    moses_references,
    read_smiles_csv,
)
from molgen.metrics.similarity import internal_diversity, nearest_neighbour_similarity

__all__ = [
    "FCDStats",
    "MoleculeFeatures",
    "MosesReferences",
    "NoveltyReference",
    "ReferenceStats",
    "StaleCacheError",
    "compute_metrics",
    "cosine_similarity",
    "default_cache_dir",
    "frechet_distance",
    "get_mol",
    "ring_statistics",
    "internal_diversity",
    "moses_references",
    "nearest_neighbour_similarity",
    "passes_filters",
    "read_smiles_csv",
]
