"""Calibration of a model's samples to the data on a few whole-graph statistics: SMILES -> ... -> decoded
graph -> chem -> (statistics) -> which of several candidates to keep.

A prior's systematic errors often show in simple statistics of its finished graphs (the discrete prior's molecules
have too few rings: 2.28 per molecule against 2.58 in MOSES). :class:`Calibration` holds the joint histogram of a
few integer-valued domain properties (for molecules: ``rings``, ``aromatic_rings`` and ``unusual_rings``, rings of 3,
4 or 7+ atoms) over the training data and
over the model's own samples; their ratio estimates p_data(s) / p_model(s) for a graph with statistics s. The
pipeline then draws ``candidates`` graphs per graph asked for and keeps one of each group with probability
proportional to that ratio (sampling-importance-resampling, :class:`~molgen.sampling.guidance.Resampling`): as
``candidates`` grows, the kept graphs' statistics approach the data's, and
within a value of s the prior's own distribution is untouched. It is a density-ratio estimate on hand-chosen
statistics instead of a trained classifier, exact on those statistics and blind to everything else.

The model's histogram belongs to the prior weights it was measured on (``prior_fingerprint``): retrain the prior
and fit it again (``molgen calibrate``). Statistics come from the graph domain (:meth:`properties`), so this module
needs no chemistry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATED", "Calibration", "CalibrationConfig", "file_fingerprint", "fit_calibration", "statistics_key"]

log = logging.getLogger(__name__)

CALIBRATED: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
"""Command-line choice -> the pipeline's ``calibrated`` (None: the model's default, on for unconditional sampling when
it has a calibration)."""

INVALID_LOG_WEIGHT = -30.0
"""Log weight of a candidate that is not a valid graph: kept only when every candidate of its group is invalid."""


def statistics_key(values: Mapping[str, float] | None, names: Sequence[str]) -> str | None:
    """The histogram key of one graph: its named statistics as whole numbers joined by commas ("2,1"), or None
    (an invalid graph, no statistics)."""
    if values is None:
        return None
    return ",".join(str(int(round(values[name]))) for name in names)


def file_fingerprint(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a file (a prior's ``model.safetensors``): which weights a
    calibration was measured on."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass
class CalibrationConfig:
    """What a :class:`Calibration` is rebuilt from (saved as ``calibration/config.json`` in a model directory)."""

    properties: list[str]  # integer-valued domain properties whose joint distribution is matched, e.g. ["rings", "aromatic_rings"]
    data_counts: dict[str, int]  # histogram key (statistics_key) -> graphs of the training data with those values
    model_counts: dict[str, int]  # the same over the model's own samples (uncalibrated, its default settings)
    candidates: int = 2  # graphs drawn per graph returned when calibration is on
    pseudo_count: float = 1.0  # added to every count of both histograms (keys seen in either), so rare values get finite ratios
    max_log_ratio: float = 4.0  # |log ratio| is clipped to this: no single value dominates a group's choice
    prior_fingerprint: str = ""  # file_fingerprint of the prior's model.safetensors the model counts were measured on
    sampling: dict[str, Any] = field(default_factory=dict)  # how the model counts were measured (samples, seed, settings)

    def __post_init__(self) -> None:
        if not self.properties:
            raise ValueError("a calibration needs at least one property to match")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise ValueError(f"candidates={self.candidates!r}: must be a whole number >= 1")
        if not self.data_counts or not self.model_counts:
            raise ValueError("a calibration needs non-empty data and model histograms")
        if self.pseudo_count <= 0 or self.max_log_ratio <= 0:
            raise ValueError(f"pseudo_count={self.pseudo_count} and max_log_ratio={self.max_log_ratio} must be > 0")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CalibrationConfig:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


class Calibration:
    """Log density ratios log p_data(s) / p_model(s) of a graph's statistics s, from two histograms."""

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config
        keys = set(config.data_counts) | set(config.model_counts)
        a = config.pseudo_count
        data_total = sum(config.data_counts.values()) + a * len(keys)
        model_total = sum(config.model_counts.values()) + a * len(keys)
        bound = config.max_log_ratio
        self.log_ratios: dict[str, float] = {
            key: float(np.clip(math.log((config.data_counts.get(key, 0) + a) / data_total) - math.log((config.model_counts.get(key, 0) + a) / model_total), -bound, bound))
            for key in keys
        }  # fmt: skip

    @property
    def properties(self) -> list[str]:
        return self.config.properties

    @classmethod
    def fit(
        cls, data: Iterable[Mapping[str, float] | None], model: Iterable[Mapping[str, float] | None], properties: Sequence[str], **settings: Any,
    ) -> Calibration:  # fmt: skip
        """From the statistics of data graphs and of the model's samples (one mapping property -> value per graph;
        None for an invalid one, left out); ``settings``: the other :class:`CalibrationConfig` fields."""
        names = list(properties)

        def histogram(rows: Iterable[Mapping[str, float] | None]) -> dict[str, int]:
            return dict(Counter(key for key in (statistics_key(row, names) for row in rows) if key is not None))

        return cls(CalibrationConfig(names, histogram(data), histogram(model), **settings))

    def means(self) -> dict[str, tuple[float, float]]:
        """Each statistic's mean over the data and over the model's (uncalibrated) samples."""
        out = {}
        for k, name in enumerate(self.properties):
            out[name] = tuple(
                sum(int(key.split(",")[k]) * c for key, c in counts.items()) / sum(counts.values())
                for counts in (self.config.data_counts, self.config.model_counts)
            )  # fmt: skip
        return out

    def summary(self, values: int = 6) -> list[str]:
        """Readable lines: each statistic's means, then the weights of the data's ``values`` commonest values."""
        lines = [f"{name} per graph: data {data:.3f}, model {model:.3f}" for name, (data, model) in self.means().items()]
        counts = self.config.data_counts
        for key in sorted(counts, key=counts.get, reverse=True)[:values]:
            named = ", ".join(f"{name} {value}" for name, value in zip(self.properties, key.split(","), strict=True))
            lines.append(f"{named}: weight {math.exp(self.log_ratios[key]):.2f}")
        return lines

    def log_weights(self, statistics: Sequence[Mapping[str, float] | None]) -> np.ndarray:
        """(M,) log p_data / p_model of each graph's statistics (a value never seen in either histogram: 0; an
        invalid graph, None: :data:`INVALID_LOG_WEIGHT`)."""
        keys = [statistics_key(row, self.properties) for row in statistics]
        return np.array([INVALID_LOG_WEIGHT if key is None else self.log_ratios.get(key, 0.0) for key in keys], dtype=np.float64)

    def check_prior(self, weights: str | Path) -> bool:
        """Whether this calibration was measured on the prior weights in file ``weights``; warns if not."""
        expected = self.config.prior_fingerprint
        if not expected:
            return True
        found = file_fingerprint(weights)
        if found != expected:
            log.warning(
                "calibration measured on prior weights %s, but %s holds %s: its model histogram is stale; fit it again "
                "(molgen calibrate --model DIR)", expected, weights, found,
            )  # fmt: skip
        return found == expected

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory / "config.json")

    @classmethod
    def load(cls, directory: str | Path) -> Calibration:
        return cls(CalibrationConfig.load(Path(directory) / "config.json"))


def _statistics(domain: Any, item: str, names: Sequence[str]) -> dict[str, float] | None:
    try:
        return domain.statistics(item, names)
    except ValueError:  # an item the domain cannot read: no statistics
        return None


def fit_calibration(
    pipeline: Any, data: Sequence[str], samples: int, *, seed: int = 0, batch_size: int = 512, candidates: int = 2,
    prior_fingerprint: str = "", progress: Any = None, **sampling: Any,
) -> Calibration:  # fmt: skip
    """Measure a :class:`Calibration` for ``pipeline`` (a :class:`~molgen.pipeline.MolgenPipeline` whose domain
    has ``statistics``): the statistics of the ``data`` items (e.g. a random subset of the training SMILES;
    unreadable ones are left out and counted in the log) against those of ``samples`` graphs the pipeline draws
    uncalibrated with ``sampling`` (its :meth:`~molgen.pipeline.MolgenPipeline.sample_iter` arguments; default:
    the model's own settings, which calibrated sampling then uses). ``progress(k)``: called with each batch's size."""
    if samples < 1 or not data:
        raise ValueError(f"a calibration needs samples >= 1 and some data items (got samples={samples}, {len(data)} data items)")
    domain = pipeline.domain
    names = list(getattr(domain, "statistic_names", ()))
    if not names:
        raise ValueError(f"the {type(domain).__name__} domain computes no statistics to calibrate on")
    data_rows = [_statistics(domain, item, names) for item in data]
    unread = sum(row is None for row in data_rows)
    if unread:
        log.warning("calibration: %d of %d data items could not be read and are left out", unread, len(data))
    model_rows = []
    for molecule in pipeline.sample_iter(samples, seed=seed, batch_size=batch_size, properties=False, calibrated=False, **sampling):
        model_rows.append(None if molecule.smiles is None else _statistics(domain, molecule.smiles, names))
        if progress is not None:
            progress(1)
    settings = {"samples": samples, "seed": seed, "data_items": len(data) - unread, **{k: v for k, v in sampling.items() if v is not None}}
    return Calibration.fit(data_rows, model_rows, names, candidates=candidates, prior_fingerprint=prior_fingerprint, sampling=settings)
