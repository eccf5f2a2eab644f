"""Reference SMILES -> statistics the MOSES metrics compare against, computed once and cached on disk.

A :class:`ReferenceStats` (for a test set) holds ChemNet mean and covariance, Morgan fingerprints, BRICS fragment
and scaffold counts, property values and the canonical SMILES set; a :class:`NoveltyReference` (for a training
set) holds only the canonical SMILES set. Both are saved as ``.npz`` + ``.json`` (no pickle) in a directory
named after a SHA-256 key of the input SMILES (and the RDKit release series and cache format), and the key is
checked again on load, so a cache computed from other molecules is never used.

The MOSES statistics also ship with the repository (``data/moses/reference/``, written by
``python -m benchmarks.moses_metrics --ship``): computing them takes about an hour on two cores, so a fresh
install loads the shipped copy when its key matches (same SMILES, same RDKit release series), and computes
them only when it does not (another RDKit release, other data).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rdkit
import torch

from molgen.metrics.fcd import FCDStats
from molgen.metrics.molecules import PROPERTY_NAMES, MoleculeFeatures, canonical_many, featurize_many

__all__ = [
    "FORMAT_VERSION",
    "MOSES_CACHE_NAMES",
    "MosesReferences",
    "NoveltyReference",
    "ReferenceStats",
    "SHIPPED_DIR",
    "StaleCacheError",
    "default_cache_dir",
    "moses_references",
    "rdkit_series",
    "read_smiles_csv",
    "ship_moses_references",
    "smiles_hashes",
    "smiles_key",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MOSES_DATA = Path(__file__).resolve().parents[2] / "data" / "moses"
SHIPPED_DIR = MOSES_DATA / "reference"
"""Shipped MOSES statistics, one directory per split named as in :func:`moses_references` (no key suffix)."""


class StaleCacheError(ValueError):
    """A cache directory whose statistics were computed from other input (or by another format/RDKit version)."""


def default_cache_dir() -> Path:
    """``$MOLGEN_CACHE/metrics``, by default ``~/.cache/molgen/metrics``."""
    return Path(os.environ.get("MOLGEN_CACHE") or Path.home() / ".cache" / "molgen").expanduser() / "metrics"


def rdkit_series(version: str | None = None) -> str:
    """The RDKit release series of ``version`` (default: the installed one): '2026.09.1' -> '2026.09'.

    Canonical SMILES, and so fragment and scaffold strings, may change between release series; patch releases
    fix bugs without changing them, so cached statistics stay valid across a series.
    """
    parts = (version or rdkit.__version__).split(".")
    return ".".join(parts[:2])


def smiles_key(smiles: Sequence[str | None], kind: str, **options: object) -> str:
    """SHA-256 (hex) of the SMILES list in order, the kind of statistics, their options and the versions they depend on."""
    header = {"kind": kind, "format": FORMAT_VERSION, "rdkit": rdkit_series(), "n": len(smiles), **options}
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(b"\0")
    digest.update("\n".join("" if s is None else str(s) for s in smiles).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def smiles_hashes(smiles: Iterable[str]) -> np.ndarray:
    """64-bit BLAKE2b hash of each string, (N,) uint64 (collision odds ~N*M/2^64: about 1e-9 for MOSES' sizes)."""
    values = [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in smiles]
    return np.asarray(values, dtype=np.uint64)


def _write_atomically(directory: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp_dir)`` then move ``tmp_dir`` to ``directory``, so an interrupted save leaves no half cache."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def _read_meta(path: Path, kind: str, expected_key: str | None) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"no cached {kind} statistics at {path.parent}")
    meta = json.loads(path.read_text())
    if meta.get("kind") != kind or meta.get("format") != FORMAT_VERSION:
        raise StaleCacheError(
            f"{path} holds {meta.get('kind')!r} statistics of format {meta.get('format')}, "
            f"expected {kind!r} of format {FORMAT_VERSION}"
        )
    if expected_key is not None and meta.get("key") != expected_key:
        made_with = meta.get("versions", {}).get("rdkit", "?")
        raise StaleCacheError(
            f"{path.parent} was computed from other SMILES or with another RDKit release (key "
            f"{str(meta.get('key'))[:16]}..., expected {expected_key[:16]}...; made with RDKit {made_with}, this is "
            f"{rdkit.__version__})"
        )
    return meta


def _versions() -> dict[str, str]:
    import fcd_torch

    return {"rdkit": rdkit.__version__, "fcd_torch": getattr(fcd_torch, "__version__", "?"), "torch": torch.__version__}


# --- novelty ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoveltyReference:
    """The set of canonical SMILES of a training set, for MOSES' Novelty, as sorted unique 64-bit hashes (M,).

    With ``canonical=True`` the input was canonicalised with RDKit (invalid entries dropped); with False the
    strings were taken as they are, which is MOSES' own definition (its train file holds canonical SMILES of an
    older RDKit).
    """

    hashes: np.ndarray
    key: str
    n_input: int
    canonical: bool

    def contains(self, canonical_smiles: Sequence[str]) -> np.ndarray:
        """(N,) bool: whether each canonical SMILES is in the set."""
        query = smiles_hashes(canonical_smiles)
        pos = np.searchsorted(self.hashes, query)
        pos[pos == len(self.hashes)] = 0
        return (self.hashes[pos] == query) if len(self.hashes) else np.zeros(len(query), dtype=bool)

    @classmethod
    def from_smiles(cls, smiles: Sequence[str | None], canonicalize: bool = True, n_jobs: int = 1) -> NoveltyReference:
        """The set of (canonicalised, if asked) SMILES of ``smiles``; invalid entries are dropped with a warning."""
        key = smiles_key(smiles, "novelty", canonicalize=canonicalize)
        if canonicalize:
            strings = canonical_many(smiles, n_jobs=n_jobs, what="novelty reference")
        else:
            strings = [s if isinstance(s, str) and s else None for s in smiles]
        valid = [s for s in strings if s is not None]
        if len(valid) < len(strings):
            n_bad = len(strings) - len(valid)
            log.warning("novelty reference: %d of %d SMILES are invalid and left out", n_bad, len(strings))
        return cls(hashes=np.unique(smiles_hashes(valid)), key=key, n_input=len(smiles), canonical=canonicalize)

    def save(self, directory: str | Path, compressed: bool = False) -> Path:
        """Write ``novelty.npz`` (zip-compressed if asked) and ``novelty.json`` into ``directory`` (replaced
        atomically); returns it."""
        directory = Path(directory)
        meta = {
            "kind": "novelty", "format": FORMAT_VERSION, "key": self.key, "n_input": self.n_input,
            "n_unique": int(len(self.hashes)), "canonical": self.canonical,
            "created": _dt.datetime.now().isoformat(timespec="seconds"), "versions": _versions(),
        }  # fmt: skip

        def write(tmp: Path) -> None:
            (np.savez_compressed if compressed else np.savez)(tmp / "novelty.npz", hashes=self.hashes)
            (tmp / "novelty.json").write_text(json.dumps(meta, indent=1))

        _write_atomically(directory, write)
        return directory

    @classmethod
    def load(cls, directory: str | Path, expected_key: str | None = None) -> NoveltyReference:
        """Read a saved reference; :class:`StaleCacheError` if ``expected_key`` is given and differs."""
        directory = Path(directory)
        meta = _read_meta(directory / "novelty.json", "novelty", expected_key)
        with np.load(directory / "novelty.npz", allow_pickle=False) as data:
            hashes = data["hashes"]
        return cls(hashes=hashes, key=meta["key"], n_input=int(meta["n_input"]), canonical=bool(meta["canonical"]))

    @classmethod
    def cached(
        cls,
        smiles: Sequence[str | None],
        name: str,
        cache_dir: str | Path | None = None,
        canonicalize: bool = True,
        n_jobs: int = 1,
        shipped_dir: str | Path | None = None,
    ) -> NoveltyReference:
        """Load from ``cache_dir/<name>-<key>``, else from ``shipped_dir/<name>``, if computed from these SMILES;
        else compute and save in ``cache_dir``."""
        key = smiles_key(smiles, "novelty", canonicalize=canonicalize)
        loaded, directory = _find_cached(cls, key, name, cache_dir, shipped_dir)
        if loaded is not None:
            return loaded
        start = time.time()
        reference = cls.from_smiles(smiles, canonicalize=canonicalize, n_jobs=n_jobs)
        reference.save(directory)
        seconds = time.time() - start
        log.info("novelty reference %s: %d SMILES in %.0f s, cached at %s", name, len(smiles), seconds, directory)
        return reference


def _try_load(cls: type, directory: Path, key: str, stale_level: int = logging.WARNING) -> object | None:
    try:
        loaded = cls.load(directory, expected_key=key)
    except FileNotFoundError:
        return None
    except StaleCacheError as exc:
        log.log(stale_level, "not using %s: %s", directory, exc)
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unusable cache %s (%s)", directory, exc)
        return None
    log.info("loaded cached %s statistics from %s", cls.__name__, directory)
    return loaded


def _find_cached(
    cls: type, key: str, name: str, cache_dir: str | Path | None, shipped_dir: str | Path | None
) -> tuple[object | None, Path]:
    """(the statistics with ``key`` from the user's cache or else the shipped copy, or None; the user's cache
    directory for them, where computed statistics are saved)."""
    directory = Path(cache_dir or default_cache_dir()) / f"{name}-{key[:16]}"
    loaded = _try_load(cls, directory, key)
    if loaded is None and shipped_dir is not None:
        # the shipped copy is for one set of options and one RDKit series: not matching is normal, not a fault
        loaded = _try_load(cls, Path(shipped_dir) / name, key, stale_level=logging.INFO)
    if loaded is not None:
        return loaded, directory
    log.info("no cached %s statistics %r for these SMILES: computing them (saved at %s)", cls.__name__, name, directory)
    return None, directory


# --- reference statistics --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceStats:
    """What the MOSES metrics need from a reference (test) set; N is the number of valid molecules.

    - ``fcd``: ChemNet activation mean (512,) and covariance (512, 512), None if N < 2
    - ``fingerprints``: (N, 128) uint8, packed Morgan bits (radius 2, 1024 bits) for SNN
    - ``fragments`` / ``scaffolds``: BRICS fragment and Bemis-Murcko scaffold (>= 2 rings) SMILES -> count
    - ``properties``: ``logP``, ``SA``, ``QED``, ``weight`` -> (N,) float64, for the Wasserstein distances
    - ``novelty``: the canonical SMILES set, so a reference set can also serve for Novelty
    """

    key: str
    n_input: int
    fcd: FCDStats | None
    fingerprints: np.ndarray
    fragments: dict[str, int]
    scaffolds: dict[str, int]
    properties: dict[str, np.ndarray]
    novelty: NoveltyReference

    @property
    def n_valid(self) -> int:
        return int(len(self.fingerprints))

    @classmethod
    def from_smiles(
        cls,
        smiles: Sequence[str | None],
        device: str | torch.device = "cpu",
        batch_size: int = 512,
        n_jobs: int = 1,
        name: str = "reference",
    ) -> ReferenceStats:
        """Compute the statistics of ``smiles`` (invalid entries are left out with a warning).

        As in MOSES, reference molecules are used as parsed (not re-parsed from their canonical SMILES), and
        ChemNet reads their RDKit canonical SMILES.
        """
        if len(smiles) == 0:
            raise ValueError(f"reference set {name!r} is empty")
        start = time.time()
        results = featurize_many(smiles, generated=False, filters=False, n_jobs=n_jobs, what=name)
        features = [f for _, f in results if f is not None]
        if len(features) < len(smiles):
            n_bad = len(smiles) - len(features)
            log.warning("reference %s: %d of %d SMILES are invalid and left out", name, n_bad, len(smiles))
        if not features:
            raise ValueError(f"reference set {name!r} has no valid molecule")
        canonical = [f.canonical for f in features]
        fcd = FCDStats.from_smiles(canonical, device=device, batch_size=batch_size, what=name)
        stats = cls(
            key=smiles_key(smiles, "reference"),
            n_input=len(smiles),
            fcd=fcd,
            fingerprints=_packed_fingerprints(features),
            fragments=dict(Counter(fragment for f in features for fragment in f.fragments)),
            scaffolds=dict(Counter(f.scaffold for f in features if f.scaffold is not None)),
            properties={p: np.array([getattr(f, p) for f in features], dtype=np.float64) for p in PROPERTY_NAMES},
            novelty=NoveltyReference(
                hashes=np.unique(smiles_hashes(canonical)), key=smiles_key(smiles, "novelty", canonicalize=True),
                n_input=len(smiles), canonical=True,
            ),
        )  # fmt: skip
        log.info("reference %s: %d molecules in %.0f s", name, len(features), time.time() - start)
        return stats

    def save(self, directory: str | Path, compressed: bool = False) -> Path:
        """Write ``stats.npz`` (arrays; zip-compressed if asked) and ``stats.json`` (key, sizes, fragment and
        scaffold counts) into ``directory``."""
        directory = Path(directory)
        arrays = {"fingerprints": self.fingerprints, "canonical_hashes": self.novelty.hashes}
        arrays.update({f"property_{p}": v for p, v in self.properties.items()})
        if self.fcd is not None:
            arrays.update(fcd_mu=self.fcd.mu, fcd_sigma=self.fcd.sigma, fcd_n=np.float64(self.fcd.n))
        meta = {
            "kind": "reference", "format": FORMAT_VERSION, "key": self.key, "novelty_key": self.novelty.key,
            "n_input": self.n_input, "n_valid": self.n_valid, "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "versions": _versions(), "fragments": self.fragments, "scaffolds": self.scaffolds,
        }  # fmt: skip

        def write(tmp: Path) -> None:
            (np.savez_compressed if compressed else np.savez)(tmp / "stats.npz", **arrays)
            (tmp / "stats.json").write_text(json.dumps(meta))

        _write_atomically(directory, write)
        return directory

    @classmethod
    def load(cls, directory: str | Path, expected_key: str | None = None) -> ReferenceStats:
        """Read saved statistics; :class:`StaleCacheError` if ``expected_key`` is given and differs."""
        directory = Path(directory)
        meta = _read_meta(directory / "stats.json", "reference", expected_key)
        with np.load(directory / "stats.npz", allow_pickle=False) as data:
            fcd = FCDStats(mu=data["fcd_mu"], sigma=data["fcd_sigma"], n=float(data["fcd_n"])) if "fcd_mu" in data else None
            fingerprints = data["fingerprints"]
            properties = {p: data[f"property_{p}"] for p in PROPERTY_NAMES}
            hashes = data["canonical_hashes"]
        if len(fingerprints) != meta["n_valid"] or any(len(v) != meta["n_valid"] for v in properties.values()):
            raise ValueError(f"{directory}: arrays do not match n_valid={meta['n_valid']} (corrupt cache)")
        novelty = NoveltyReference(hashes=hashes, key=meta["novelty_key"], n_input=int(meta["n_input"]), canonical=True)
        return cls(
            key=meta["key"], n_input=int(meta["n_input"]), fcd=fcd, fingerprints=fingerprints, fragments=meta["fragments"],
            scaffolds=meta["scaffolds"], properties=properties, novelty=novelty,
        )  # fmt: skip

    @classmethod
    def cached(
        cls,
        smiles: Sequence[str | None],
        name: str,
        cache_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 512,
        n_jobs: int = 1,
        shipped_dir: str | Path | None = None,
    ) -> ReferenceStats:
        """Load from ``cache_dir/<name>-<key>``, else from ``shipped_dir/<name>``, if computed from these SMILES;
        else compute and save in ``cache_dir``."""
        key = smiles_key(smiles, "reference")
        loaded, directory = _find_cached(cls, key, name, cache_dir, shipped_dir)
        if loaded is not None:
            return loaded
        stats = cls.from_smiles(smiles, device=device, batch_size=batch_size, n_jobs=n_jobs, name=name)
        stats.save(directory)
        log.info("cached reference %s at %s", name, directory)
        return stats


def _packed_fingerprints(features: Sequence[MoleculeFeatures]) -> np.ndarray:
    """(N, 128) uint8 packed Morgan bits of the features, in order."""
    return np.frombuffer(b"".join(f.fingerprint for f in features), dtype=np.uint8).reshape(len(features), -1).copy()


# --- MOSES -----------------------------------------------------------------------------------------


class MosesReferences(NamedTuple):
    """The MOSES references: test and scaffold-test statistics, and the training set for novelty."""

    test: ReferenceStats
    test_scaffolds: ReferenceStats
    train: NoveltyReference


def read_smiles_csv(path: str | Path, column: str = "SMILES") -> list[str]:
    """The ``column`` of a CSV file (gzip allowed) as a list of strings."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    frame = pd.read_csv(path, usecols=lambda c: c == column, dtype=str, keep_default_na=False)
    if column not in frame:
        raise ValueError(f"{path} has no {column!r} column")
    return frame[column].tolist()


MOSES_CACHE_NAMES = {"test": "moses_test", "test_scaffolds": "moses_test_scaffolds", "train": "moses_train_novelty"}
"""Split -> name of its statistics in the cache (``<name>-<key>``) and in the shipped copy (``<name>``)."""


def moses_references(
    cache: bool = True,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 512,
    n_jobs: int = 1,
    canonical_novelty: bool = True,
    shipped_dir: str | Path | None = SHIPPED_DIR,
) -> MosesReferences:
    """Statistics of MOSES' ``test``, ``test_scaffolds`` and ``train`` splits (``data/moses/<split>.csv.gz``).

    With ``cache`` (default) they are loaded from ``cache_dir`` (default :func:`default_cache_dir`), else from
    the copy shipped in ``shipped_dir`` (None: not used), when computed from the same files with the same RDKit
    release series; else computed and saved in ``cache_dir``, which takes about an hour on two cores (mostly
    ChemNet and BRICS on 350k molecules). ``canonical_novelty=False`` compares with the train strings as written,
    as MOSES does.
    """
    data_dir = Path(data_dir) if data_dir is not None else MOSES_DATA
    splits = {}
    for split in MOSES_CACHE_NAMES:
        path = data_dir / f"{split}.csv.gz"
        if not path.exists():
            raise FileNotFoundError(
                f"MOSES split {split!r} not found at {path}; pass data_dir= the folder holding {split}.csv.gz"
            )
        splits[split] = read_smiles_csv(path)
    names = MOSES_CACHE_NAMES
    kwargs = {"device": device, "batch_size": batch_size, "n_jobs": n_jobs}
    if cache:
        where = {"cache_dir": cache_dir, "shipped_dir": shipped_dir}
        test = ReferenceStats.cached(splits["test"], names["test"], **where, **kwargs)
        scaffolds = ReferenceStats.cached(splits["test_scaffolds"], names["test_scaffolds"], **where, **kwargs)
        train = NoveltyReference.cached(splits["train"], names["train"], canonicalize=canonical_novelty, n_jobs=n_jobs, **where)
    else:
        test = ReferenceStats.from_smiles(splits["test"], name=names["test"], **kwargs)
        scaffolds = ReferenceStats.from_smiles(splits["test_scaffolds"], name=names["test_scaffolds"], **kwargs)
        train = NoveltyReference.from_smiles(splits["train"], canonicalize=canonical_novelty, n_jobs=n_jobs)
    return MosesReferences(test=test, test_scaffolds=scaffolds, train=train)


def ship_moses_references(references: MosesReferences, directory: str | Path = SHIPPED_DIR) -> Path:
    """Write ``references`` (as :func:`moses_references` returns them) compressed into ``directory``, as the
    copy a fresh install loads instead of computing them; returns ``directory``."""
    directory = Path(directory)
    references.test.save(directory / MOSES_CACHE_NAMES["test"], compressed=True)
    references.test_scaffolds.save(directory / MOSES_CACHE_NAMES["test_scaffolds"], compressed=True)
    references.train.save(directory / MOSES_CACHE_NAMES["train"], compressed=True)
    return directory
