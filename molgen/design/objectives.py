"""Objectives: any callable ``list[str] -> list[float]`` scoring SMILES, higher is better. Never assumed
differentiable; molgen only calls them.

Ready-made objectives, transforms into [0, 1] as REINVENT 4 uses them, and a weighted combination::

    from molgen.design import objectives
    score = objectives.weighted([(objectives.qed(), 2.0), (objectives.logp_window(1, 3), 1.0)])
    score(["CCO", "c1ccccc1O"])           # -> [..., ...]

:func:`evaluate` calls an objective safely: a call that raises is retried molecule by molecule, and a molecule
whose score raises or is not a finite number gets an error instead of a score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from molgen.chem import InvalidMoleculeError, compute_properties, parse_smiles
from molgen.design import chemistry
from molgen.design.results import DesignInputError

__all__ = [
    "COMPONENTS",
    "NAMED",
    "Objective",
    "evaluate",
    "from_config",
    "load",
    "logp_window",
    "penalized_logp",
    "property_score",
    "qed",
    "sigmoid",
    "similarity",
    "weighted",
]

Objective = Callable[[list[str]], Sequence[float]]


def _per_molecule(function: Callable[[object], float], name: str) -> Objective:
    """An objective computing ``function(mol)`` for each SMILES (NaN for a SMILES that does not parse)."""

    def objective(smiles: list[str]) -> list[float]:
        scores = []
        for s in smiles:
            try:
                scores.append(float(function(parse_smiles(s))))
            except InvalidMoleculeError:
                scores.append(math.nan)
        return scores

    objective.__name__ = name
    return objective


def property_score(name: str) -> Objective:
    """The raw value of one of :data:`molgen.chem.PROPERTIES` (e.g. ``"logP"``)."""
    compute_properties(parse_smiles("C"), [name])  # unknown names fail here, naming the property
    return _per_molecule(lambda mol: compute_properties(mol, [name])[name], name)


def qed() -> Objective:
    """QED drug-likeness in [0, 1]."""
    return property_score("QED")


def penalized_logp() -> Objective:
    """Penalized logP as in JT-VAE / GCPN / MoFlow (normalised logP - SA - long rings)."""
    return _per_molecule(chemistry.penalized_logp, "penalized_logp")


def sigmoid(objective: Objective, low: float, high: float, reverse: bool = False) -> Objective:
    """Map raw scores into [0, 1] with a logistic curve that is 0.5 midway between ``low`` and ``high`` and
    about 0.02 / 0.98 at the ends (REINVENT's sigmoid transform); ``reverse`` flips it (lower is better)."""
    if not high > low:
        raise DesignInputError(f"sigmoid transform: need low < high, got [{low:g}, {high:g}]")
    middle, scale = (low + high) / 2, 8.0 / (high - low)

    def transformed(smiles: list[str]) -> list[float]:
        out = []
        for value in objective(smiles):
            x = scale * (float(value) - middle) * (-1 if reverse else 1)
            out.append(1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0))) if math.isfinite(value) else math.nan)
        return out

    return transformed


def logp_window(low: float, high: float) -> Objective:
    """1 inside [low, high] logP, falling off (Gaussian, width 1 logP unit) outside."""
    if not high >= low:
        raise DesignInputError(f"logp_window: empty window [{low:g}, {high:g}]")

    def score(mol) -> float:
        value = compute_properties(mol, ["logP"])["logP"]
        distance = max(low - value, value - high, 0.0)
        return math.exp(-(distance**2) / 2)

    return _per_molecule(score, f"logp_window({low:g}, {high:g})")


def similarity(reference_smiles: str) -> Objective:
    """Morgan Tanimoto similarity to a reference molecule (in [0, 1])."""
    try:
        reference = chemistry.fingerprint(parse_smiles(reference_smiles))
    except InvalidMoleculeError as exc:
        raise DesignInputError(f"similarity objective: {exc}") from None
    return _per_molecule(lambda mol: chemistry.tanimoto(reference, chemistry.fingerprint(mol)), "similarity")


def weighted(parts: Sequence[tuple[Objective, float]]) -> Objective:
    """Weighted mean of objectives (REINVENT's weighted sum divided by the total weight); transform raw
    scores into [0, 1] first (:func:`sigmoid`) so that weights mean what they say."""
    parts = list(parts)
    if not parts:
        raise DesignInputError("weighted objective: give at least one (objective, weight) pair")
    total = sum(float(w) for _, w in parts)
    if not total > 0:
        raise DesignInputError(f"weighted objective: weights must sum to a positive number, got {total:g}")

    def combined(smiles: list[str]) -> list[float]:
        scores = [0.0] * len(smiles)
        for objective, weight in parts:
            for i, value in enumerate(objective(smiles)):
                scores[i] += float(weight) * float(value) / total
        return scores

    return combined


NAMED: dict[str, Callable[..., Objective]] = {
    "QED": qed,
    "penalized logP": penalized_logp,
    "logP window": logp_window,
    "similarity": similarity,
}
"""Objective factories by display name (for dropdowns): QED and penalized logP take no argument,
``logP window`` takes (low, high), ``similarity`` a reference SMILES."""


def _smarts(pattern: str, avoid: bool = False) -> Objective:
    try:
        compiled = chemistry.parse_pattern(pattern, what="smarts component")
    except InvalidMoleculeError as exc:
        raise DesignInputError(str(exc)) from None
    return _per_molecule(lambda mol: float(compiled.matches(mol) != avoid), f"smarts({pattern})")


def _window(name: str, low: float | None = None, high: float | None = None, width: float | None = None) -> Objective:
    """1 inside [low, high] (either end may be open), a Gaussian fall-off of ``width`` outside."""
    property_score(name)  # an unknown property fails here, naming it
    if low is None and high is None:
        raise DesignInputError(f"property component {name!r}: give low, high or both")
    if low is not None and high is not None and not low <= high:
        raise DesignInputError(f"property component {name!r}: empty window [{low:g}, {high:g}]")
    if width is None:
        width = (high - low) / 4 if low is not None and high is not None and high > low else max(abs(low if high is None else high) * 0.1, 1.0)
    if not width > 0:
        raise DesignInputError(f"property component {name!r}: width must be positive, got {width:g}")

    def score(mol) -> float:
        value = compute_properties(mol, [name])[name]
        distance = max((low - value) if low is not None else 0.0, (value - high) if high is not None else 0.0, 0.0)
        return math.exp(-((distance / width) ** 2) / 2)

    return _per_molecule(score, f"{name} window")


COMPONENTS: dict[str, Callable[..., Objective]] = {
    "qed": lambda: qed(),
    "sa": lambda low=2.0, high=6.0: sigmoid(property_score("SA"), low, high, reverse=True),
    "similarity": lambda smiles: similarity(smiles),
    "smarts": _smarts,
    "property": lambda property, low=None, high=None, width=None: _window(property, low, high, width),
}
"""Scoring components of a TOML objective (REINVENT style), each a score in [0, 1]:

- ``qed``: QED;
- ``sa``: synthetic accessibility, 1 for easy, falling from ``low`` (2) to ``high`` (6) on a reverse sigmoid;
- ``similarity``: Morgan Tanimoto to ``smiles``;
- ``smarts``: 1 when the molecule matches ``pattern`` (``avoid = true``: when it does not);
- ``property``: 1 when ``property`` (QED, logP, MW, SA, TPSA, HBD, HBA) lies in [``low``, ``high``] (either may be
  left out), a Gaussian fall-off of ``width`` outside."""


def from_config(config: Mapping) -> Objective:
    """An objective from a REINVENT-style description: ``{"aggregation": "geometric" | "arithmetic",
    "component": [{"type": <a key of COMPONENTS>, "weight": 1.0, ...its arguments}, ...]}`` (see :data:`COMPONENTS`).
    ``geometric`` (the default, as REINVENT 4's): the weighted geometric mean, so a molecule failing one component
    scores 0; ``arithmetic``: the weighted mean."""
    known = {"aggregation", "component"}
    if unknown := set(config) - known:
        raise DesignInputError(f"objective: unknown keys {sorted(unknown)}; expected 'aggregation' and [[component]] tables")
    aggregation = config.get("aggregation", "geometric")
    if aggregation not in ("geometric", "arithmetic"):
        raise DesignInputError(f"objective: aggregation={aggregation!r}: choose 'geometric' or 'arithmetic'")
    components = config.get("component") or []
    if not isinstance(components, list) or not components:
        raise DesignInputError("objective: give at least one [[component]] table")
    parts = []
    for k, item in enumerate(components, start=1):
        if not isinstance(item, Mapping) or "type" not in item:
            raise DesignInputError(f"objective component {k}: give a table with a 'type' ({', '.join(COMPONENTS)})")
        options = dict(item)
        kind, weight = options.pop("type"), options.pop("weight", 1.0)
        if kind not in COMPONENTS:
            raise DesignInputError(f"objective component {k}: type={kind!r}: choose one of {', '.join(COMPONENTS)}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise DesignInputError(f"objective component {k} ({kind}): weight={weight!r} must be a non-negative number")
        try:
            parts.append((COMPONENTS[kind](**options), float(weight)))
        except TypeError as exc:
            raise DesignInputError(f"objective component {k} ({kind}): {exc}") from None
    if aggregation == "arithmetic":
        return weighted(parts)
    total = sum(w for _, w in parts)
    if not total > 0:
        raise DesignInputError("objective: the weights must sum to a positive number")

    def geometric(smiles: list[str]) -> list[float]:
        logs = [0.0] * len(smiles)
        for objective, weight in parts:
            for i, value in enumerate(objective(smiles)):
                value = float(value)
                logs[i] += weight / total * (math.log(value) if value > 0 else -math.inf) if weight else 0.0
        return [math.exp(v) if v > -math.inf else 0.0 for v in logs]

    return geometric


def load(source: str | Path) -> Objective:
    """An objective from a file: ``.toml`` (scoring components, :func:`from_config`) or ``.py`` (a module defining
    ``objective``: a function ``str -> float`` or ``list[str] -> list[float]``; the file is run as Python)."""
    path = Path(source)
    if not path.is_file():
        raise DesignInputError(f"objective file {str(path)!r} does not exist")
    if path.suffix == ".toml":
        import tomllib

        try:
            config = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DesignInputError(f"objective file {str(path)!r}: not valid TOML: {exc}") from None
        try:
            return from_config(config)
        except DesignInputError as exc:
            raise DesignInputError(f"objective file {str(path)!r}: {exc}") from None
    if path.suffix == ".py":
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"molgen_objective_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file may raise anything
            raise DesignInputError(f"objective file {str(path)!r} raised {type(exc).__name__}: {exc}") from None
        function = getattr(module, "objective", None)
        if not callable(function):
            raise DesignInputError(f"objective file {str(path)!r}: define a function named 'objective' (str -> float or list[str] -> list[float])")
        return function
    raise DesignInputError(f"objective file {str(path)!r}: expected a .toml file of scoring components or a .py file defining objective()")


def _name(objective: Objective) -> str:
    return getattr(objective, "__name__", type(objective).__name__)


def evaluate(objective: Objective, smiles: list[str]) -> list[tuple[float | None, str | None]]:
    """(score, None) or (None, error) for each SMILES; never raises for a failing molecule.

    The objective is called once on the whole list; if that raises, it is called molecule by molecule so a
    single bad molecule does not cost the others their scores. An answer of the wrong length is an error in
    the objective itself (:class:`DesignInputError`).
    """
    if not smiles:
        return []
    try:
        values = list(objective(list(smiles)))
    except Exception:  # noqa: BLE001 - a user's objective may raise anything; find the molecule responsible
        return [_one(objective, s) for s in smiles]
    if len(values) != len(smiles):
        raise DesignInputError(f"objective {_name(objective)!r} returned {len(values)} scores for {len(smiles)} molecules")
    return [_checked(v) for v in values]


def _one(objective: Objective, smiles: str) -> tuple[float | None, str | None]:
    try:
        values = list(objective([smiles]))
    except Exception as exc:  # noqa: BLE001
        return None, f"objective raised {type(exc).__name__}: {exc}"
    if len(values) != 1:
        return None, f"objective returned {len(values)} scores for one molecule"
    return _checked(values[0])


def _checked(value: object) -> tuple[float | None, str | None]:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"objective returned {value!r}, not a number"
    if not math.isfinite(number):
        return None, f"objective returned {number}"
    return number, None
