"""Reading molecule files: ``.smi``, ``.csv`` and ``.sdf`` (each optionally gzipped).

Readers yield :class:`Row` for every record they could read and :class:`BadRow` (with where and why) for
every record they could not; they never stop at a bad row. Whether a SMILES is valid chemistry is checked
later, by the featurizer, which reports its failures in the same :class:`BadRow` form.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WRITERS", "BadRow", "Row", "TargetRow", "file_format", "item_writer", "read_molecules", "read_targets", "resume_point", "write_bad_rows",
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One molecule as read: where it came from (``line 12`` / ``record 3``), its SMILES and optional name."""

    location: str
    smiles: str
    name: str | None = None


@dataclass(frozen=True)
class BadRow:
    """A record that was skipped: where, what it said, and why."""

    location: str
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.text!r}: {self.reason}"


_FORMATS = {".smi": "smi", ".smiles": "smi", ".txt": "smi", ".csv": "csv", ".sdf": "sdf", ".sd": "sdf"}


def file_format(path: str | Path) -> str:
    """``smi``, ``csv`` or ``sdf`` from the file name (``.gz`` allowed); ValueError naming the file otherwise."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise ValueError(f"{path}: unknown molecule file type; expected one of {sorted(_FORMATS)} (optionally .gz)")
    return fmt


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="replace", newline="")
    return open(path, encoding="utf-8-sig", errors="replace", newline="")  # -sig: Excel's byte-order mark


def read_molecules(path: str | Path, smiles_column: str | None = None) -> Iterator[Row | BadRow]:
    """Yield every record of a molecule file as :class:`Row` or :class:`BadRow`.

    Args:
        path: a ``.smi`` (SMILES, then an optional name after whitespace), ``.csv`` or ``.sdf`` file.
        smiles_column: CSV column holding SMILES; by default the first column named ``smiles``
            (any case). A missing column is an error naming the columns that exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    readers = {"smi": _read_smi, "csv": lambda p: _read_csv(p, smiles_column), "sdf": _read_sdf}
    yield from readers[file_format(path)](path)


INVALID_SAMPLE_MARK = "# invalid sample"


def _read_smi(path: Path) -> Iterator[Row | BadRow]:
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if text.startswith(INVALID_SAMPLE_MARK):  # molgen sample's record of an invalid sample
                yield BadRow(f"line {number}", "", "invalid sample")
                continue
            if not text or text.startswith("#"):
                continue
            parts = text.split(maxsplit=1)
            yield Row(f"line {number}", parts[0], parts[1] if len(parts) > 1 else None)


def _read_csv(path: Path, smiles_column: str | None) -> Iterator[Row | BadRow]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        if smiles_column is None:
            matches = [i for i, name in enumerate(header) if name.strip().lower() == "smiles"]
        else:
            matches = [i for i, name in enumerate(header) if name.strip() == smiles_column]
        if not matches:
            wanted = smiles_column or "smiles"
            raise ValueError(f"{path}: no column {wanted!r}; columns are {header} (choose one with --smiles-column)")
        col = matches[0]
        name_cols = [i for i, name in enumerate(header) if name.strip().lower() in ("name", "id", "title")]
        for row in reader:
            location = f"line {reader.line_num}"
            if not row or all(not cell.strip() for cell in row):
                continue
            if col >= len(row) or not row[col].strip():
                yield BadRow(location, ",".join(row), f"no SMILES in column {header[col]!r}")
                continue
            name = row[name_cols[0]].strip() if name_cols and name_cols[0] < len(row) else None
            yield Row(location, row[col].strip(), name or None)


@dataclass(frozen=True)
class TargetRow:
    """One row of a targets table: where it came from (``line 3``), its property targets (a blank cell is no
    target) and, if the table has a ``num_nodes`` column, the size of the graph to sample."""

    location: str
    line: int
    targets: dict[str, float]
    num_nodes: int | None = None


NUM_NODES_COLUMN = "num_nodes"


def read_targets(path: str | Path, property_names: list[str]) -> tuple[list[str], Iterator[TargetRow | BadRow]]:
    """The property columns of a ``.csv`` targets table (one row per sample to draw) and its rows.

    Columns are matched to ``property_names`` ignoring case; a ``num_nodes`` column gives each row's graph
    size; other columns (a SMILES, a name) are returned neither as targets nor as errors. A table without any
    property column is an error naming the columns it has and the ones that would be read. A cell that is not a
    number makes its row a :class:`BadRow`; the rows after it are still read.

    Returns: (the property names found, in ``property_names``' spelling; the rows, lazily).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if file_format(path) != "csv":
        raise ValueError(f"{path}: a targets table must be a .csv file (a header of property names, one row per sample)")
    with _open_text(path) as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise ValueError(f"{path}: the file is empty; expected a header of property names such as {property_names}")
    lookup = {name.lower(): name for name in property_names}
    columns = {i: lookup[cell.strip().lower()] for i, cell in enumerate(header) if cell.strip().lower() in lookup}
    if not columns:
        raise ValueError(f"{path}: no property column; the columns are {header}, the model is conditioned on {property_names}")
    size_col = next((i for i, cell in enumerate(header) if cell.strip().lower() == NUM_NODES_COLUMN), None)
    return list(columns.values()), _target_rows(path, columns, size_col)


def _target_rows(path: Path, columns: dict[int, str], size_col: int | None) -> Iterator[TargetRow | BadRow]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            location = f"line {reader.line_num}"
            if not row or all(not cell.strip() for cell in row):
                continue
            targets, problems = {}, []
            for i, name in columns.items():
                cell = row[i].strip() if i < len(row) else ""
                if not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    problems.append(f"{name} {cell!r} is not a number")
                    continue
                if value != value or value in (float("inf"), float("-inf")):
                    problems.append(f"{name} {cell!r} is not a finite number")
                    continue
                targets[name] = value
            size = None
            if size_col is not None:
                cell = row[size_col].strip() if size_col < len(row) else ""
                if not cell.isdigit() or int(cell) < 1:
                    problems.append(f"{NUM_NODES_COLUMN} {cell!r} is not a whole number >= 1")
                else:
                    size = int(cell)
            if problems:
                yield BadRow(location, ",".join(row), "; ".join(problems))
            else:
                yield TargetRow(location, reader.line_num, targets, size)


def _read_sdf(path: Path) -> Iterator[Row | BadRow]:
    from rdkit import Chem, rdBase

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        supplier = Chem.ForwardSDMolSupplier(handle, sanitize=True, removeHs=True)
        number = 0
        while True:
            number += 1
            with rdBase.CaptureErrorLog() as log:
                try:
                    mol = next(supplier)
                except StopIteration:
                    break
            location = f"record {number}"
            if mol is None:
                reason = next((ln.split("]", 1)[-1].strip() for ln in log.messages.splitlines() if ln.strip()), "")
                yield BadRow(location, "", f"unreadable SDF record: {reason or 'RDKit could not parse it'}")
                continue
            name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
            yield Row(location, Chem.MolToSmiles(mol), name or None)


def write_bad_rows(bad_rows: list[BadRow], path: str | Path) -> None:
    """Write bad rows as a TSV report (location, reason, text)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("location\treason\ttext\n")
        for bad in bad_rows:
            handle.write(f"{bad.location}\t{bad.reason}\t{bad.text}\n")


# --- writing sampled molecules ------------------------------------------------------------------------


class MoleculeWriter:
    """Stream molecule records (SMILES, state, error, properties) to a ``.csv``, ``.sdf`` or ``.smi`` file.

    Rows are flushed as they are written, so an interrupted run keeps everything written so far. Nothing is
    dropped: in ``.sdf`` an invalid sample is an empty record whose tags give its state and error; in ``.smi``
    it is a comment line ``# invalid sample <index>: <error>`` (molgen's reader reports it as a bad row).
    """

    def __init__(self, path: str | Path, property_names: list[str], extra_columns: list[str] | None = None, append_from: int | None = None) -> None:
        """``append_from``: continue a file that already holds this many complete records (see :func:`resume_point`);
        None writes a new file."""
        self.path = Path(path)
        fmt = file_format(self.path)
        if self.path.suffix == ".gz":
            raise ValueError(f"{self.path}: write uncompressed output (.csv, .sdf or .smi)")
        self.format = fmt
        self.property_names = list(property_names)
        self.extra = list(extra_columns or [])
        self.count = append_from or 0
        self._file = open(self.path, "w" if append_from is None else "a", encoding="utf-8", newline="")
        if fmt == "csv":
            self._csv = csv.writer(self._file)
            if append_from is None:
                self._csv.writerow(self.header)

    @property
    def header(self) -> list[str]:
        """The columns of a ``.csv`` output."""
        return ["index", "smiles", "state", *self.extra, *self.property_names, "error"]

    def write(self, smiles: str | None, state: str, error: str | None = None, properties: dict[str, float] | None = None, extra: dict | None = None) -> None:
        properties, extra = properties or {}, extra or {}
        index = self.count
        self.count += 1
        if self.format == "csv":
            values = [_fmt(properties.get(n)) for n in self.property_names]
            self._csv.writerow([index, smiles or "", state, *[_fmt(extra.get(c)) for c in self.extra], *values, error or ""])
        elif self.format == "smi":
            self._file.write(f"{smiles}\t{index}\t{state}\n" if smiles else f"{INVALID_SAMPLE_MARK} {index}: {error or ''}\n")
        else:
            self._write_sdf(index, smiles, state, error, properties, extra)
        self._file.flush()

    def _write_sdf(self, index: int, smiles: str | None, state: str, error: str | None, properties: dict, extra: dict) -> None:
        from rdkit import Chem

        mol = Chem.MolFromSmiles(smiles) if smiles else None
        mol = _with_2d_coordinates(mol) if mol is not None else Chem.Mol()
        mol.SetProp("_Name", f"molgen_{index}")
        tags = {"index": str(index), "state": state, "smiles": smiles, "error": error, **{k: None if v is None else _fmt(v) for k, v in {**extra, **properties}.items()}}
        # data items written here (one value line each) rather than by RDKit's SDWriter, which numbers them per writer
        items = "".join(f">  <{name}>\n{' '.join(str(value).splitlines())}\n\n" for name, value in tags.items() if value)
        self._file.write(Chem.MolToMolBlock(mol) + items + "$$$$\n")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MoleculeWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


WRITERS = {
    "molecule": ("molgen.io:MoleculeWriter", "molgen.io:resume_point"),
    "scene": ("molgen.scenes.io:SceneWriter", "molgen.scenes.io:scene_resume_point"),
}
"""Domain name -> (``"module:Class"`` of its sample writer, ``"module:function"`` reading an interrupted output's resume
point). Every writer has ``write(item, state, error, properties, extra)``; every resume point returns ``(count, items
seen)``."""


def item_writer(domain_name: str) -> tuple[type, Callable]:
    """The writer class and the resume-point function for items of ``domain_name`` (:data:`WRITERS`)."""
    import importlib

    if domain_name not in WRITERS:
        raise ValueError(f"no writer for items of domain {domain_name!r}; known: {sorted(WRITERS)}")
    found = []
    for target in WRITERS[domain_name]:
        module, _, name = target.partition(":")
        found.append(getattr(importlib.import_module(module), name))
    return found[0], found[1]


def resume_point(path: str | Path, property_names: list[str], extra_columns: list[str] | None = None) -> tuple[int, list[str]]:
    """How many complete records an interrupted :class:`MoleculeWriter` output holds, and the SMILES of its valid and
    duplicate ones, in order. A record cut off mid-write is removed from the file. Raises ValueError naming the file
    when it is not such an output (other columns, indices with gaps)."""
    path = Path(path)
    fmt = file_format(path)
    text = path.read_bytes().decode("utf-8")  # as written: line endings untouched
    if fmt == "sdf":
        end = text.rfind("$$$$\n")
        complete = text[: end + len("$$$$\n")] if end >= 0 else ""
    else:
        complete = text[: text.rfind("\n") + 1]
    records: list[tuple[int, str, str]] = []  # (index, smiles, state)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(complete)))
        expected = ["index", "smiles", "state", *(extra_columns or []), *property_names, "error"]
        if rows and rows[0] != expected:
            raise ValueError(f"{path}: cannot resume: its columns {rows[0]} are not this run's {expected}")
        if not rows:
            raise ValueError(f"{path}: cannot resume: no header line (start again with --overwrite)")
        records = [(int(r[0]), r[1], r[2]) for r in rows[1:] if r]
    elif fmt == "smi":
        for line in complete.splitlines():
            if line.startswith(INVALID_SAMPLE_MARK):
                records.append((int(line[len(INVALID_SAMPLE_MARK) :].split(":", 1)[0]), "", "invalid"))
            elif line.strip():
                smiles, index, state = line.split("\t")[:3]
                records.append((int(index), smiles, state))
    else:
        for block in complete.split("$$$$\n")[:-1]:
            tags = dict(re.findall(r">\s*<([^>]+)>[^\n]*\n([^\n]*)\n", block))
            records.append((int(tags.get("index", -1)), tags.get("smiles", ""), tags.get("state", "")))
    for k, (index, _, _) in enumerate(records):
        if index != k:
            raise ValueError(f"{path}: cannot resume: record {k + 1} has index {index}, expected {k} (not an interrupted molgen output?)")
    if len(complete) < len(text):
        path.write_bytes(complete.encode("utf-8"))
    return len(records), [smiles for _, smiles, state in records if smiles and state in ("valid", "duplicate")]


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _with_2d_coordinates(mol):
    """``mol`` with a 2D depiction; all-zero coordinates when the layout gives numbers a molfile cannot hold
    (RDKit's depictor can return NaN or huge values for odd generated ring systems, which makes the record
    unreadable)."""
    import numpy as np
    from rdkit import Chem
    from rdkit.Chem import rdDepictor

    rdDepictor.Compute2DCoords(mol, forceRDKit=True)  # the same layout whatever depiction preference is set globally
    positions = mol.GetConformer().GetPositions()  # (n, 3)
    if not np.isfinite(positions).all() or np.abs(positions).max(initial=0.0) >= 1e4:
        mol.RemoveAllConformers()
        mol.AddConformer(Chem.Conformer(mol.GetNumAtoms()), assignId=True)
    return mol
