"""Result records for the web UI: one row per molecule for the table, the legend under each depiction, and
the CSV / SDF files offered for download (written by :class:`molgen.io.MoleculeWriter`).

Works on :class:`molgen.design.DesignResult` records and, field by field, on anything shaped like them
(a missing field counts as empty), so the page does not depend on which design features exist.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from molgen.io import MoleculeWriter

__all__ = ["PROPERTY_COLUMNS", "legend", "table", "write_files"]

PROPERTY_COLUMNS = ["QED", "logP", "MW", "SA", "TPSA", "HBD", "HBA"]
EXTRA_COLUMNS = ["similarity", "score", "alerts", "reasons"]
_DIGITS = {"QED": 3, "logP": 2, "MW": 1, "SA": 2, "TPSA": 1, "HBD": 0, "HBA": 0}


def _field(record, name: str, default=None):
    value = getattr(record, name, default)
    return default if value is None else value


def _alerts(record) -> str:
    return "; ".join(str(a) for a in _field(record, "alerts", []))


def _reason(record) -> str:
    reasons = _field(record, "reasons", [])
    return "; ".join(reasons) if reasons else _field(record, "error", "")


def _rounded(value, digits: int) -> float | int | None:
    if value is None:
        return None
    return round(float(value), digits) if digits else int(round(float(value)))


def legend(index: int, record, score_name: str = "score") -> list[str]:
    """Legend lines under a depiction: number and state, then the few figures a chemist scans first."""
    props = _field(record, "properties", {})
    state = _field(record, "state", "")
    lines = [f"#{index}" + ("" if state == "valid" else f" · {state}")]
    figures = [f"{k} {props[k]:.{_DIGITS[k]}f}" for k in ("QED", "logP", "MW", "SA") if k in props]
    if figures:
        lines.append(" · ".join(figures))
    extra = []
    if (sim := _field(record, "similarity")) is not None:
        extra.append(f"sim {sim:.2f}")
    if (score := _field(record, "score")) is not None:
        extra.append(f"{score_name} {score:.3f}")
    if alerts := _field(record, "alerts", []):
        extra.append(f"{len(alerts)} alert{'s' * (len(alerts) > 1)}")
    if extra:
        lines.append(" · ".join(extra))
    if state in ("rejected", "invalid") and (why := _reason(record)):
        lines.append(why if len(why) <= 60 else why[:57] + "...")
    return lines


def table(records: Sequence) -> pd.DataFrame:
    """One row per record, in order: #, SMILES, state, similarity, score, properties, alerts, reason."""
    rows = []
    for k, r in enumerate(records):
        props = _field(r, "properties", {})
        sim, score = _field(r, "similarity"), _field(r, "score")
        rows.append(
            {
                "#": k,
                "SMILES": _field(r, "smiles", ""),
                "state": _field(r, "state", ""),
                "similarity": None if sim is None else round(float(sim), 3),
                "score": None if score is None else round(float(score), 4),
                **{p: _rounded(props.get(p), _DIGITS[p]) for p in PROPERTY_COLUMNS},
                "alerts": _alerts(r),
                "reason": _reason(r),
            }
        )
    columns = ["#", "SMILES", "state", "similarity", "score", *PROPERTY_COLUMNS, "alerts", "reason"]
    frame = pd.DataFrame(rows, columns=columns)
    # Columns nobody filled (no similarity outside analogs, no score outside optimisation) only add noise.
    return frame.drop(columns=[c for c in ("similarity", "score") if frame[c].isna().all()])


def write_files(records: Sequence, stem: str, directory: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``records`` to ``<stem>.csv`` and ``<stem>.sdf`` in a fresh temporary directory (or
    ``directory``); every record is kept, invalid and rejected ones with their state and reason."""
    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="molgen-ui-"))
    paths = (folder / f"{stem}.csv", folder / f"{stem}.sdf")
    for path in paths:
        with MoleculeWriter(path, PROPERTY_COLUMNS, extra_columns=EXTRA_COLUMNS) as writer:
            for r in records:
                extra = {
                    "similarity": _field(r, "similarity"),
                    "score": _field(r, "score"),
                    "alerts": _alerts(r) or None,
                    "reasons": "; ".join(_field(r, "reasons", [])) or None,
                }
                writer.write(_field(r, "smiles"), _field(r, "state", ""), _field(r, "error"), _field(r, "properties", {}), extra)
    return paths
