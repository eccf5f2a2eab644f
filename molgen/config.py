"""Saving a component's config dataclass as JSON beside its weights, and rebuilding it from there."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

# how resampling (molgen.sampling.guidance.Resampling) keeps one candidate of each group: a draw in proportion to exp(score),
# or the highest score (here, free of torch, for the command line's choices)
SELECTIONS = ("draw", "best")

__all__ = ["JsonConfig"]


class JsonConfig:
    """Mixin for config dataclasses: ``to_dict``, ``save(path)`` and ``load(path)`` as JSON."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Rebuild from JSON; the weights' digest a checkpoint records beside the fields (``weights_sha256``, checked by
        :mod:`molgen.checkpoint` when it loads the weights) is not a field."""
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        values.pop("weights_sha256", None)
        return cls(**values)
