"""What a chemist types into the page, turned into the design API's arguments, with messages that name the
field and say what would be right. Every error these functions raise is a :class:`FormError` (a ValueError)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "FormError",
    "Limits",
    "check_count",
    "parse_atom_count",
    "parse_auth",
    "parse_lines",
    "parse_optional_float",
    "parse_sa_ceiling",
    "parse_seed",
    "parse_target",
    "parse_targets",
]

MAX_NUMBER_TEXT = 100
"""Characters a number field (a target, a range) may hold: longer text is refused before any pattern is matched."""

MAX_SEED = 2**32 - 1
SA_RANGE = (1.0, 10.0)  # synthetic accessibility scores run from 1 (easy) to 10 (hard)


class FormError(ValueError):
    """A field of the page holds something unusable; the message names the field."""


@dataclass(frozen=True)
class Limits:
    """Per-request caps, so that one user's request cannot take the machine for itself."""

    max_n: int = 500
    max_steps: int = 100
    max_repairs: int = 10
    max_calls: int = 2000
    max_population: int = 200  # molecules an optimisation proposes per round
    max_points: int = 50
    deadline: float | None = 120.0  # seconds a request may run; then it stops and shows what it has (None: no deadline)


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*(?:-|–|\.\.|to|,)\s*({_NUMBER})\s*$")
_VALUE = re.compile(rf"^\s*({_NUMBER})\s*$")


def parse_target(name: str, text: str | None) -> float | tuple[float, float] | None:
    """``"0.9"`` -> 0.9; ``"300-400"``, ``"300..400"``, ``"-1 to 3"`` -> (low, high); empty -> None."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_NUMBER_TEXT:
        raise FormError(f"{name} target {text[:20]!r}... ({len(text):,} characters): write a value (0.9) or a range (300-400)")
    if match := _VALUE.match(text):
        value = float(match.group(1))
        if not math.isfinite(value):
            raise FormError(f"{name} target {text!r}: not a finite number")
        return value
    if match := _RANGE.match(text):
        low, high = float(match.group(1)), float(match.group(2))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise FormError(f"{name} target {text!r}: not finite numbers")
        if low > high:
            raise FormError(f"{name} target {text!r}: the low end ({low:g}) is above the high end ({high:g})")
        return (low, high)
    raise FormError(f"{name} target {text!r}: write a value (0.9) or a range (300-400, or -1 to 3)")


def parse_targets(texts: dict[str, str | None]) -> dict[str, float | tuple[float, float]]:
    """Property name -> target, for the fields that are filled in."""
    targets = {name: parse_target(name, text) for name, text in texts.items()}
    return {name: t for name, t in targets.items() if t is not None}


def parse_atom_count(name: str, text: str | None) -> int | tuple[int, int] | None:
    """``"5"`` -> 5, ``"3-8"`` -> (3, 8), empty -> None; whole non-negative numbers only."""
    target = parse_target(name, text)
    values = target if isinstance(target, tuple) else (target,)
    if target is None:
        return None
    if any(v < 0 or not float(v).is_integer() for v in values):
        raise FormError(f"{name} {text!r}: give a whole number of atoms (5) or a range (3-8)")
    return tuple(int(v) for v in values) if isinstance(target, tuple) else int(target)


def parse_lines(text: str | None) -> list[str]:
    """Non-empty lines, stripped (one SMARTS or SMILES per line: SMARTS may contain commas)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_optional_float(name: str, value) -> float | None:
    """A number field left empty (None or '') -> None; anything else must be a finite number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and len(value) > MAX_NUMBER_TEXT:
        raise FormError(f"{name} {value[:20]!r}... ({len(value):,} characters): not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormError(f"{name} {value!r}: not a number") from None
    if not math.isfinite(number):
        raise FormError(f"{name} {value!r}: not a finite number")
    return number


def parse_sa_ceiling(value) -> float | None:
    """The SA-ceiling field: empty -> None (no ceiling); else a number from 1 to 10 (a 0 would reject every molecule)."""
    ceiling = parse_optional_float("SA ceiling", value)
    low, high = SA_RANGE
    if ceiling is not None and not low <= ceiling <= high:
        raise FormError(f"SA ceiling {ceiling:g}: SA scores run from {low:g} (easy) to {high:g} (hard); give a ceiling in that range, or leave the field empty for none")
    return ceiling


def parse_seed(value) -> int:
    """The seed field: empty -> 0; else a whole number from 0 to :data:`MAX_SEED`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    seed = parse_optional_float("seed", value)
    if not float(seed).is_integer() or not 0 <= seed <= MAX_SEED:
        raise FormError(f"seed {value!r}: give a whole number from 0 to {MAX_SEED:,}")
    return int(seed)


def check_count(name: str, value, low: int, cap: int) -> int:
    """A whole number between ``low`` and ``cap`` (the per-request limit), else a message saying so."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FormError(f"{name}: enter a whole number between {low} and {cap}")
    number = parse_optional_float(name, value)
    if not number.is_integer():
        raise FormError(f"{name} = {value}: must be a whole number")
    if number < low:
        raise FormError(f"{name} = {int(number)}: must be at least {low}")
    if number > cap:
        raise FormError(f"{name} = {int(number)}: at most {cap} per request on this server (the limit is set when the app starts)")
    return int(number)


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); empty -> None (no login)."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise FormError("login must be given as user:password (both non-empty)")
    return user, password
