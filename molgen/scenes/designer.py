"""Constrained scene design on a scene model: scenes that satisfy a request (:mod:`molgen.scenes.constraints`) and
completions of a partial scene that keep its objects exactly.

Each candidate is drawn in four steps, and candidates are drawn in rounds until enough satisfy the request:

1. Seed: the objects the request needs are laid out as a small scene: the partial scene being completed (its
   positions as given), then, for each count asking for at least N objects of a description, as many objects of
   that description as are still missing (their other attributes drawn at random), and, for each relation not yet
   held, the objects at its two ends; new objects get random positions, redrawn until the seed holds every
   relation asked for and breaks no "at most" / "exactly" bound.
2. Inpaint: the seed is encoded (one token per object); its tokens are put at random slots (in their left-to-right
   order) of a scene of N objects, N drawn from the prior's training sizes within the request's bounds, and held
   (``keep``) while the prior draws the other tokens (:meth:`MolgenPipeline.sample_latents`). The prior is also
   conditioned (classifier-free guidance) on every exact count of a single attribute ("no metal objects":
   ``metal = 0``), and the object count is N.
3. Repair: a drawn object that makes an "at most" / "exactly" count too high is drawn again, the rest held (up to
   ``repairs`` passes; each token's object is read from the decoder at its own position).
4. Check: each candidate is decoded layout-aware (always a valid scene) and checked against every constraint on
   the decoded scene; a request's scenes are its first ``n`` satisfying candidates. A round draws at least as many
   candidates as scenes are still wanted. When a request runs out of rounds, the candidates breaking the fewest
   constraints fill in, marked ``satisfied=False`` with what they miss.

>>> designer = SceneDesigner(MolgenPipeline.from_pretrained("checkpoints/clevr"))      # doctest: +SKIP
>>> [d.scene for d in designer.generate("2 red cubes; something left of a metal sphere", n=3)]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from molgen.domains.scene import as_scene
from molgen.records import Latents
from molgen.scenes.constraints import Constraint, Contains, Count, ObjectPattern, Relation, parse_request
from molgen.scenes.scene import ATTRIBUTES, Scene, SceneObject

__all__ = ["DesignedScene", "SceneDesigner"]

log = logging.getLogger(__name__)

SEPARATION = 0.4  # CLEVR's placement margin along each axis: seed objects stay related on both axes
EXTENT = 3.0  # seed positions are drawn in [-EXTENT, EXTENT]^2 (camera frame, scene units)
PLACEMENT_TRIES = 200


@dataclass
class DesignedScene:
    """One scene of a request: the decoded scene, whether it satisfies every constraint (and which it misses), how
    many candidates the request had drawn when it was found, and for a completion which object of the scene each
    given object is (partial index -> scene index)."""

    scene: Scene
    satisfied: bool
    unmet: list[str] = field(default_factory=list)
    drawn: int = 0
    given: dict[int, int] | None = None


@dataclass
class _Seed:
    objects: list[SceneObject]
    positions: np.ndarray  # (k, 2) camera-frame positions
    fixed: int  # the first ``fixed`` objects (a partial scene's) keep their positions


class SceneDesigner:
    """Constrained requests and completions on a scene pipeline (:class:`~molgen.pipeline.MolgenPipeline` of a
    scene model). ``candidates``: drawn per round (at least as many as the scenes still wanted); ``rounds``: at most
    this many per request; ``guidance``:
    classifier-free guidance scale of the count conditions (above 1 it overshoots: the prior's counts go past the
    targets); ``repairs``: passes redrawing objects that make a count too high."""

    def __init__(self, pipe, candidates: int = 32, rounds: int = 4, guidance: float = 1.0, repairs: int = 8) -> None:
        if getattr(pipe.domain, "name", None) != "scene":
            raise ValueError(f"SceneDesigner needs a scene model; this pipeline's domain is {getattr(pipe.domain, 'name', '?')!r}")
        if candidates < 1 or rounds < 1 or repairs < 0:
            raise ValueError(f"candidates={candidates}, rounds={rounds}, repairs={repairs}: need candidates and rounds >= 1, repairs >= 0")
        self.pipe, self.candidates, self.rounds, self.guidance, self.repairs = pipe, candidates, rounds, guidance, repairs
        prior = pipe._require_prior()
        self.max_nodes = int(prior.config.max_nodes)
        self.size_counts = np.asarray(prior.config.num_nodes_counts, dtype=float)  # (max_nodes + 1,)
        self.property_names = tuple(prior.config.property_names)

    # --- public ------------------------------------------------------------------------------------------------

    def generate(self, request: str | Sequence[Constraint], n: int = 1, seed: int = 0) -> list[DesignedScene]:
        """``n`` scenes satisfying ``request`` (text, :func:`~molgen.scenes.constraints.parse_request`, or constraints)."""
        return self._design(parse_request(request), None, n, seed)

    def complete(self, partial: Scene | dict | str, request: str | Sequence[Constraint] = (), n: int = 1, seed: int = 0) -> list[DesignedScene]:
        """``n`` scenes that hold ``partial`` exactly (its objects, attributes and relations) with objects added
        around it, satisfying ``request`` too if given (e.g. "7 objects"). ``partial``'s relations must relate
        every pair on both axes, as the model's scenes do."""
        partial = as_scene(partial)
        if partial.num_objects == 0:
            raise ValueError("partial scene has no objects: use generate() for a scene from scratch")
        try:
            self.pipe.domain.to_graph(partial)
            laid_out = self.pipe.domain.canonical(partial)  # closed relations and a layout realising them, to seed from
        except ValueError as exc:
            raise ValueError(f"partial scene: {exc}") from None
        constraints = [Contains(partial), *parse_request(request)]  # ``given`` then maps the objects in partial's order
        return self._design(constraints, laid_out, n, seed)

    # --- rounds of candidates ----------------------------------------------------------------------------------

    def generate_iter(self, request: str | Sequence[Constraint], n: int = 1, seed: int = 0) -> Iterator[DesignedScene]:
        """:meth:`generate`, yielding each scene as it is found (a caller can stop between them)."""
        return self._design_iter(parse_request(request), None, n, seed)

    def _design(self, constraints: list[Constraint], partial: Scene | None, n: int, seed: int) -> list[DesignedScene]:
        return list(self._design_iter(constraints, partial, n, seed))

    def _design_iter(self, constraints: list[Constraint], partial: Scene | None, n: int, seed: int) -> Iterator[DesignedScene]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r}: the number of scenes must be a whole number >= 1")
        low, high = self._size_bounds(constraints, 0 if partial is None else partial.num_objects)
        return self._rounds(constraints, partial, n, seed, low, high, self._conditions(constraints))

    def _rounds(self, constraints: list[Constraint], partial: Scene | None, n: int, seed: int, low: int, high: int, conditions: dict[str, float]) -> Iterator[DesignedScene]:
        """Rounds of candidates until ``n`` satisfy (module docstring); then the nearest misses fill in."""
        found = 0
        misses: list[DesignedScene] = []
        drawn = 0
        for round_ in range(self.rounds):
            rng = np.random.default_rng([seed, round_])
            count = max(self.candidates, n - found)
            scenes = self._candidates(constraints, partial, low, high, conditions, rng, int(rng.integers(2**62)), count)
            for scene in scenes:
                drawn += 1
                if scene is None:
                    continue
                missing = [c.describe() for c in constraints if not c.check(scene)]
                given = None
                if partial is not None and constraints[0].describe() not in missing:
                    given = constraints[0].embedding(scene)  # type: ignore[attr-defined]
                record = DesignedScene(scene, not missing, missing, drawn, given)
                if missing:
                    misses.append(record)
                    continue
                yield record
                found += 1
                if found == n:
                    return
        log.info("request %s: %d of %d scenes satisfy it after %d candidates", [c.describe() for c in constraints], found, n, drawn)
        misses.sort(key=lambda d: len(d.unmet))
        yield from misses[: n - found]

    def _candidates(
        self, constraints: list[Constraint], partial: Scene | None, low: int, high: int, conditions: dict[str, float], rng: np.random.Generator, seed: int,
        k: int,
    ) -> list[Scene | None]:
        """One round: ``k`` decoded candidates (None where a candidate failed to decode)."""
        seeds = [self._seed(constraints, partial, rng) for _ in range(k)]
        sizes = [self._size(max(low, len(s.objects)), high, rng) for s in seeds]
        cond = conditions or None
        if all(len(s.objects) == 0 for s in seeds):
            latents = self.pipe.sample_latents(k, seed=seed, conditions=cond, num_nodes=sizes, guidance_scale=self.guidance)
            keep = torch.zeros(latents.mask.shape, dtype=torch.bool)
        else:
            latents, keep = self._inpaint(seeds, sizes, cond, rng, seed)
        latents = self._repair(latents, keep, constraints, cond, rng)
        return [m.item for m in self.pipe.decode(latents, decoding="valence")]

    def _inpaint(self, seeds: list[_Seed], sizes: list[int], conditions, rng: np.random.Generator, seed: int) -> tuple[Latents, torch.Tensor]:
        """Latents of scenes of ``sizes`` objects holding each seed's tokens at random slots, the rest drawn; and the
        (B, N) mask of the held tokens."""
        scenes = [Scene.from_positions(s.objects, s.positions) if s.objects else None for s in seeds]
        present = [i for i, s in enumerate(scenes) if s is not None]
        encoded = self.pipe.encode([scenes[i] for i in present])  # tokens in canonical (left-to-right) order
        width, d = max(sizes), encoded.z.shape[-1]
        z = torch.zeros(len(seeds), width, d)
        mask = torch.zeros(len(seeds), width, dtype=torch.bool)
        keep = torch.zeros(len(seeds), width, dtype=torch.bool)
        for row, i in enumerate(present):
            tokens = encoded[row].cpu()  # (k_i, d)
            slots = np.sort(rng.choice(sizes[i], len(tokens), replace=False))
            z[i, slots] = tokens
            keep[i, slots] = True
        for i, size in enumerate(sizes):
            mask[i, :size] = True
        latents = self.pipe.sample_latents(
            len(seeds), seed=seed, conditions=conditions, start=Latents(z, mask), keep=keep, guidance_scale=self.guidance
        )  # fmt: skip
        return latents, keep

    def _repair(self, latents: Latents, keep: torch.Tensor, constraints: list[Constraint], conditions, rng: np.random.Generator) -> Latents:
        """Up to ``self.repairs`` passes that redraw the drawn (not held) tokens making a count too high: each token's
        object is read from the decoder's argmax at its own position, and for every "at most" / "exactly" count a
        candidate exceeds, that many of its drawn tokens matching the description are drawn again (the others held)."""
        bounded = [c for c in constraints if isinstance(c, Count) and c.high is not None and c.pattern.given()]
        if not bounded:
            return latents
        z, mask = latents.z.cpu(), latents.mask.cpu().bool()
        for _ in range(self.repairs):
            labels, _ = self.pipe.tokenizer.decode(z.to(self.pipe.device), mask.to(self.pipe.device))  # (B, N, F)
            labels = labels.cpu().numpy()
            redraw = torch.zeros_like(mask)
            for b in range(len(z)):
                n = int(mask[b].sum())
                objects = [SceneObject.from_codes(c) for c in self.pipe.domain.vocab.node_raw(labels[b, :n]).tolist()]
                for c in bounded:
                    matching = [i for i, o in enumerate(objects) if c.pattern.matches(o)]
                    excess = len(matching) - c.high
                    free = [i for i in matching if not keep[b, i] and not redraw[b, i]]
                    if excess > 0 and free:
                        redraw[b, rng.choice(free, min(excess, len(free)), replace=False)] = True
            rows = redraw.any(1).nonzero().squeeze(1)
            if len(rows) == 0:
                break
            hold = (mask[rows] & ~redraw[rows])
            again = self.pipe.sample_latents(
                len(rows), seed=int(rng.integers(2**62)), conditions=conditions, start=Latents(z[rows], mask[rows]), keep=hold, guidance_scale=self.guidance
            )  # fmt: skip
            z = z.clone()
            z[rows, : again.z.shape[1]] = again.z.cpu()
        return Latents(z, mask)

    # --- what a request fixes ----------------------------------------------------------------------------------

    def _size_bounds(self, constraints: list[Constraint], given: int) -> tuple[int, int]:
        """The object counts a request allows: its exact / at least / at most counts of objects, and ``given``."""
        low, high = max(given, 1), self.max_nodes
        for c in constraints:
            if isinstance(c, Count):
                if not c.pattern.given():
                    low, high = max(low, c.low), min(high, self.max_nodes if c.high is None else c.high)
                else:
                    low = max(low, c.low)  # at least this many objects of a description: at least this many objects
        if low > high:
            raise ValueError(f"the request asks for {low} or more objects but allows at most {high} (this model makes at most {self.max_nodes})")
        return low, high

    def _size(self, low: int, high: int, rng: np.random.Generator) -> int:
        """An object count in [low, high], in proportion to the training scenes' (uniform where they have none)."""
        high = max(low, high)
        weights = self.size_counts[low : high + 1].copy() if high < len(self.size_counts) else np.ones(high - low + 1)
        if weights.sum() == 0:
            weights = np.ones(high - low + 1)
        return int(low + rng.choice(len(weights), p=weights / weights.sum()))

    def _conditions(self, constraints: list[Constraint]) -> dict[str, float]:
        """Prior conditions: the exact counts of a single attribute value the prior knows (e.g. {"metal": 0})."""
        out: dict[str, float] = {}
        for c in constraints:
            if isinstance(c, Count) and c.high == c.low:
                given = c.pattern.given()
                if len(given) == 1:
                    value = next(iter(given.values()))
                    if value in self.property_names:
                        out[value] = float(c.low)
        return out

    # --- seeds ---------------------------------------------------------------------------------------------------

    def _seed(self, constraints: list[Constraint], partial: Scene | None, rng: np.random.Generator) -> _Seed:
        """The objects a candidate must hold, laid out (module docstring, step 1)."""
        for _ in range(PLACEMENT_TRIES // 10):
            objects: list[SceneObject] = [] if partial is None else list(partial.objects)
            fixed = len(objects)
            for c in constraints:
                if isinstance(c, Count) and c.pattern.given():
                    missing = c.low - sum(c.pattern.matches(o) for o in objects)
                    objects += [self._object(c.pattern, rng) for _ in range(max(missing, 0))]
            for c in constraints:
                if isinstance(c, Relation):
                    b = self._end(c.obj, objects, fixed, exclude=-1, rng=rng)
                    self._end(c.subject, objects, fixed, exclude=b, rng=rng)
            bounded = [c for c in constraints if isinstance(c, Count) and c.high is not None and c.pattern.given()]
            if all(c.count(Scene(tuple(objects), frozenset(), frozenset())) <= c.high for c in bounded):
                break
        positions = self._place(objects, fixed, partial, [c for c in constraints if isinstance(c, Relation)], rng)
        return _Seed(objects, positions, fixed)

    def _end(self, pattern: ObjectPattern, objects: list[SceneObject], fixed: int, exclude: int, rng: np.random.Generator) -> int:
        """An object of the seed matching ``pattern`` (a new one, preferably an added one, when none does)."""
        matching = [i for i, o in enumerate(objects) if i != exclude and pattern.matches(o)]
        added = [i for i in matching if i >= fixed]
        if added or matching:
            pool = added or matching
            return int(pool[rng.integers(len(pool))])
        objects.append(self._object(pattern, rng))
        return len(objects) - 1

    @staticmethod
    def _object(pattern: ObjectPattern, rng: np.random.Generator) -> SceneObject:
        values = {name: getattr(pattern, name) or values[rng.integers(len(values))] for name, values in ATTRIBUTES.items()}
        return SceneObject(**values)

    @staticmethod
    def _place(objects: list[SceneObject], fixed: int, partial: Scene | None, relations: list[Relation], rng: np.random.Generator) -> np.ndarray:
        """(k, 2) positions: the partial scene's for its objects, random ones at least SEPARATION apart on both axes
        for the rest, redrawn until the seed holds every relation (the last draw is kept if none does)."""
        base = np.zeros((0, 2)) if partial is None else np.asarray(partial.positions, dtype=float).reshape(-1, 2)
        positions = base
        for _ in range(PLACEMENT_TRIES):
            positions = base.copy()
            for _ in range(len(objects) - fixed):
                for _attempt in range(100):
                    p = rng.uniform(-EXTENT, EXTENT, size=2)
                    if len(positions) == 0 or (np.abs(positions - p) >= SEPARATION).all(axis=1).all():
                        break
                else:
                    p = positions.max(0) + SEPARATION  # crowded: step outside everything placed
                positions = np.vstack([positions, p])
            seed = Scene.from_positions(objects, positions)
            if all(r.check(seed) for r in relations):
                break
        return positions
