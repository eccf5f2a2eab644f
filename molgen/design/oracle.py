"""The objective as an optimisation calls it: an :class:`Oracle` scores each molecule at most once, counts every
call against a :class:`Budget` (objective calls and wall-clock seconds), and records every call in a
:class:`History` that can be streamed to a CSV file and resumed from it.

An objective is any callable that scores one SMILES (``str -> float``) or a batch (``list[str] -> list[float]``);
which one is found at the first call (a batch first, then one SMILES), and a callable that is neither is a
:class:`~molgen.design.results.DesignInputError` at that call, naming both attempts. A score that is not a finite
number, or a call that raises for one molecule, makes that molecule an error (kept in the history, counted as a
call: the objective was run) without costing the others their scores.

One objective call is one molecule scored (PMO's "oracle call"); a molecule seen before, in this run or in a
resumed history, is never sent to the objective again.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from molgen.design.results import DesignInputError

__all__ = ["Budget", "BudgetExhausted", "Call", "History", "Oracle"]


@dataclass(frozen=True)
class Budget:
    """How much an optimisation may spend: ``calls`` objective calls (distinct molecules scored) and/or
    ``seconds`` of wall-clock time; None is no limit on that axis (at least one must be set)."""

    calls: int | None = 1000
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.calls is None and self.seconds is None:
            raise DesignInputError("budget: give a number of objective calls, a time in seconds, or both")
        if self.calls is not None and (
            isinstance(self.calls, bool) or not isinstance(self.calls, int) or self.calls < 1
        ):
            raise DesignInputError(
                f"calls={self.calls!r}: the objective-call budget must be a whole number of at least 1"
            )
        if self.seconds is not None and (
            isinstance(self.seconds, bool)
            or not isinstance(self.seconds, int | float)
            or not math.isfinite(self.seconds)
            or self.seconds <= 0
        ):
            raise DesignInputError(f"seconds={self.seconds!r}: the time budget must be a positive number of seconds")


class BudgetExhausted(Exception):
    """Raised inside a search when the budget is spent; the search returns what it found."""


@dataclass
class Call:
    """One objective call: the ``index``-th molecule scored (from 1), its ``score`` (None with an ``error``), the
    ``parent`` it was made from (``"a+b"`` for a crossover, None for a fresh sample or a start molecule), the
    ``operator`` that made it, the search ``round`` and the ``seconds`` since the run started."""

    index: int
    smiles: str
    score: float | None
    error: str | None = None
    parent: str | None = None
    operator: str = ""
    round: int = 0
    seconds: float = 0.0


_COLUMNS = [f.name for f in fields(Call)]


class History:
    """Every call in order; with a ``path``, each call is appended to that CSV file as it is made (an interrupted
    run loses nothing), and an existing file is read first so that a run resumes where it stopped."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.calls: list[Call] = []
        self.path = None if path is None else Path(path)
        if self.path is not None and self.path.exists() and self.path.stat().st_size > 0:
            self.calls = self._read(self.path)

    @staticmethod
    def _read(path: Path) -> list[Call]:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != _COLUMNS:
                raise DesignInputError(
                    f"history file {str(path)!r}: expected the columns {', '.join(_COLUMNS)}, found {reader.fieldnames}"
                )
            calls = []
            for line, row in enumerate(reader, start=2):
                try:
                    calls.append(
                        Call(
                            index=int(row["index"]),
                            smiles=row["smiles"],
                            score=float(row["score"]) if row["score"] else None,
                            error=row["error"] or None,
                            parent=row["parent"] or None,
                            operator=row["operator"],
                            round=int(row["round"]),
                            seconds=float(row["seconds"]),
                        )
                    )
                except (TypeError, ValueError) as exc:
                    raise DesignInputError(f"history file {str(path)!r}, line {line}: {exc}") from None
        return calls

    def append(self, call: Call) -> None:
        self.calls.append(call)
        if self.path is not None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            with self.path.open("a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerow({k: ("" if v is None else v) for k, v in asdict(call).items()})

    def save(self, path: str | Path) -> None:
        """Write every call to ``path`` (CSV, the columns of :class:`Call`)."""
        with Path(path).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
            writer.writeheader()
            for call in self.calls:
                writer.writerow({k: ("" if v is None else v) for k, v in asdict(call).items()})

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self):
        return iter(self.calls)


class Oracle:
    """``objective`` behind a budget, a cache and a history. :meth:`score` takes molecules (canonical SMILES), sends
    the ones never scored before to the objective, at most as many as the budget has left, and returns the
    score (or None) of each one it knows; it raises :class:`BudgetExhausted` once nothing is left."""

    def __init__(
        self,
        objective: Callable,
        budget: Budget,
        history: History | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(objective):
            raise DesignInputError(
                f"objective {objective!r} is not callable: give a function str -> float or list[str] -> list[float]"
            )
        self.objective, self.budget = objective, budget
        self.history = history if history is not None else History()
        self.known: dict[str, Call] = {call.smiles: call for call in self.history}
        self.clock = clock
        self.started = clock()
        self.offset = self.history.calls[-1].seconds if self.history.calls else 0.0  # a resumed run's time so far
        self.batch: bool | None = None  # found at the first call

    @property
    def name(self) -> str:
        return getattr(self.objective, "__name__", type(self.objective).__name__)

    @property
    def used(self) -> int:
        return len(self.history)

    @property
    def elapsed(self) -> float:
        return self.offset + self.clock() - self.started

    def remaining(self) -> int | None:
        """Calls left (None: no call limit); 0 once either budget is spent."""
        if self.budget.seconds is not None and self.elapsed >= self.budget.seconds:
            return 0
        return None if self.budget.calls is None else max(self.budget.calls - self.used, 0)

    def why_stopped(self) -> str:
        if self.budget.calls is not None and self.used >= self.budget.calls:
            return f"budget of {self.budget.calls} objective calls used"
        return f"time budget of {self.budget.seconds:g} s used"

    def best(self, k: int = 1) -> list[Call]:
        return sorted((c for c in self.history if c.score is not None), key=lambda c: -c.score)[:k]

    def score(
        self,
        smiles: Sequence[str],
        parents: Sequence[str | None] | None = None,
        operators: Sequence[str] | None = None,
        round: int = 0,
    ) -> list[float | None]:
        """Scores of ``smiles`` (None: the objective failed on it, or it was not scored because the budget ran out).
        New molecules are scored in the order given, duplicates within ``smiles`` once; ``parents`` and ``operators``
        (one per molecule) and ``round`` go to the history."""
        parents = list(parents) if parents is not None else [None] * len(smiles)
        operators = list(operators) if operators is not None else [""] * len(smiles)
        new: dict[str, tuple[str | None, str]] = {}
        for s, p, o in zip(smiles, parents, operators, strict=True):
            if s not in self.known and s not in new:
                new[s] = (p, o)
        left = self.remaining()
        if new and left == 0:
            raise BudgetExhausted(self.why_stopped())
        todo = list(new)[: len(new) if left is None else left]
        if todo:
            for s, (value, error) in zip(todo, self._call(todo), strict=True):
                call = Call(self.used + 1, s, value, error, *new[s], round, round_seconds(self.elapsed))
                self.history.append(call)
                self.known[s] = call
        return [self.known[s].score if s in self.known else None for s in smiles]

    def _call(self, smiles: list[str]) -> list[tuple[float | None, str | None]]:
        if self.batch is None:
            return self._first_call(smiles)
        if self.batch:
            try:
                values = self.objective(list(smiles))
            except (KeyboardInterrupt, BudgetExhausted):
                raise
            except Exception as exc:  # noqa: BLE001 - a user's objective may raise anything: find the molecule responsible
                return self._each(smiles, exc)
            values = _sequence(values)
            if values is None or len(values) != len(smiles):
                got = "a single value" if values is None else f"{len(values)} scores"
                raise DesignInputError(f"objective {self.name!r} returned {got} for {len(smiles)} molecules")
            return [_checked(v) for v in values]
        return self._each(smiles)

    def _each(self, smiles: list[str], error: Exception | None = None) -> list[tuple[float | None, str | None]]:
        """Each molecule alone; if every one of several raises, the objective itself is failing (a service down): its
        exception stops the search, which keeps what was scored before."""
        results = [self._one(s) for s in smiles]
        if len(smiles) > 1 and all(e is not None and e.startswith("objective raised") for _, e in results):
            raise error or RuntimeError(
                f"the objective failed on all {len(smiles)} molecules of a batch: {results[0][1]}"
            )
        return results

    def _first_call(self, smiles: list[str]) -> list[tuple[float | None, str | None]]:
        """Find whether the objective scores a batch or one SMILES: the whole list first; if that fails, each molecule
        as a list of one and alone, until one of the two forms gives a number (earlier molecules that failed both
        ways are errors); if no molecule gives one, the objective is a :class:`DesignInputError`."""
        try:
            values = _sequence(self.objective(list(smiles)))
            batch_error = (
                None
                if values is not None and len(values) == len(smiles)
                else (
                    f"returned {'a single value' if values is None else f'{len(values)} scores'} for a list of {len(smiles)}"
                )
            )
        except (KeyboardInterrupt, BudgetExhausted):
            raise
        except Exception as exc:  # noqa: BLE001
            values, batch_error = None, f"raised {type(exc).__name__}: {exc}"
        if batch_error is None:
            self.batch = True
            return [_checked(v) for v in values]
        failed: list[tuple[float | None, str | None]] = []
        first_errors = None
        for k, one in enumerate(smiles):
            errors = []
            for batch in (True, False):
                try:
                    value = self.objective([one]) if batch else self.objective(one)
                except (KeyboardInterrupt, BudgetExhausted):
                    raise
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"raised {type(exc).__name__}: {exc}")
                    continue
                if batch:
                    sequence = _sequence(value)
                    value = sequence[0] if sequence is not None and len(sequence) == 1 else None
                    if value is None:
                        errors.append("did not return one score")
                        continue
                elif _number(value) is None:
                    errors.append(f"returned {value!r}, not a number")
                    continue
                self.batch = batch
                return failed + [_checked(value)] + [self._one(s) for s in smiles[k + 1 :]]
            first_errors = first_errors or errors
            failed.append((None, f"objective {errors[0]}"))
        raise DesignInputError(
            f"objective {self.name!r} scores neither a list of SMILES nor one SMILES: called with a list it {batch_error}; "
            f"called with [{smiles[0]!r}] it {first_errors[0]}; called with {smiles[0]!r} it {first_errors[1]}. "
            "Give a function str -> float or list[str] -> list[float]"
        )

    def _one(self, smiles: str) -> tuple[float | None, str | None]:
        try:
            value = self.objective([smiles]) if self.batch else self.objective(smiles)
        except (KeyboardInterrupt, BudgetExhausted):
            raise
        except Exception as exc:  # noqa: BLE001
            return None, f"objective raised {type(exc).__name__}: {exc}"
        if self.batch:
            values = _sequence(value)
            if values is None or len(values) != 1:
                return None, f"objective returned {value!r} for one molecule"
            value = values[0]
        return _checked(value)


def round_seconds(seconds: float) -> float:
    return round(seconds, 3)


def _sequence(values: object) -> list | None:
    """``values`` as a list if it is a sequence of scores (a list, tuple, array, tensor), else None."""
    if hasattr(values, "tolist"):  # numpy arrays and torch tensors (a 0-d one becomes a number)
        values = values.tolist()
    if isinstance(values, list | tuple):
        return list(values)
    if isinstance(values, str | bytes | dict) or _number(values) is not None or not isinstance(values, Iterable):
        return None
    return list(values)


def _number(value: object) -> float | None:
    if isinstance(value, bool | str | bytes):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _checked(value: object) -> tuple[float | None, str | None]:
    number = _number(value)
    if number is None:
        return None, f"objective returned {value!r}, not a number"
    if not math.isfinite(number):
        return None, f"objective returned {number}"
    return number, None
