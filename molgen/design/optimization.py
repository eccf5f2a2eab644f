"""Black-box optimisation under an objective-call budget: a population search whose proposals come from one or
more operators, every molecule checked before the objective sees it and none sent twice (:mod:`molgen.design.oracle`).

Each round:
  1. parents: drawn from the population (the best scored molecules) by mol-ga's quantile sampling, which favours the
     top while still drawing from the rest;
  2. proposals: each operator of the strategy makes its share of ``n`` children from the parents;
  3. children already scored, rejected before, invalid or failing a constraint are dropped (never sent);
  4. the rest are scored, and the population keeps the best ``population`` molecules.
The search ends when the budget is spent, or after :data:`PATIENCE` rounds without a new molecule.

Operators:
  - ``remask``: the model redraws one span of a parent's tokens (GenMol's fragment remasking, with the
    autoregressive prior: the span is drawn after the tokens before it). Children stay near their parents, drug-like
    and inside the model's chemistry.
  - ``surrogate``: ``remask`` proposals, ``OVERSAMPLE`` times as many, screened by a small network trained on the
    tokens scored so far (LIMO's property model on latents, used to rank rather than to take gradients); the best
    predicted go to the objective, plus a random share to keep exploring.
  - ``graph-ga``: Jensen's graph GA crossover and mutation, from the maintained ``mol-ga`` package (crossover of two
    parents 90%, mutation of one 10%, as mol-ga's default). Children are any valid molecule, inside the model's
    chemistry or not.

:data:`STRATEGIES` names the mixes a user can choose.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from molgen.design.editing import stack_tokens
from molgen.design.oracle import BudgetExhausted, Oracle
from molgen.design.results import DesignInputError, DesignResult, OptimizationResult
from molgen.records import Latents

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "ModelOperators", "Proposal", "Search", "Surrogate"]

log = logging.getLogger(__name__)

STRATEGIES: dict[str, dict[str, float]] = {
    "mixed": {"remask": 0.5, "graph-ga": 0.5},
    "remask": {"remask": 1.0},
    "surrogate": {"surrogate": 1.0},
    "graph-ga": {"graph-ga": 1.0},
}
"""Strategy -> share of each round's proposals per operator.

- ``mixed`` (default): model remasking and graph GA, half each to start; each round the shares follow how often each
  operator's recent proposals reached the top of the population (at least :data:`MIN_SHARE` each), so the search
  leans on whichever works for this objective (BENCHMARKS.md, goal-directed optimisation).
- ``remask``: model edits only: every molecule stays inside the model's chemistry (MOSES-like drug-like
  molecules), for an objective that rewards molecules a chemist would accept rather than any molecule.
- ``surrogate``: model edits screened by a latent surrogate: for an objective expensive enough that a call costs
  more than drawing and ranking a few hundred candidates (a docking run, an assay).
- ``graph-ga``: mol-ga's graph GA alone, as a baseline (molecules may leave the model's chemistry)."""

DEFAULT_STRATEGY = "mixed"
PATIENCE = 20
"""Rounds in a row without a new molecule after which a search stops (its space is exhausted)."""
OVERSAMPLE = 4
"""``surrogate`` draws this many times as many candidates as it sends."""
EXPLORE = 0.25
"""``surrogate`` sends this share of its candidates at random, not by prediction."""
MIN_SHARE = 0.1
"""A strategy of several operators gives each at least this share of a round's proposals."""
TOP = 100
"""An operator is credited with each child that enters the best ``TOP`` molecules so far."""
DECAY = 0.9
"""Each round, an operator's past credit and trials count this much less (it follows the search as it moves)."""
DEFAULT_STRENGTH = 0.3
"""Share of a parent's tokens ``remask`` redraws (one span)."""


@dataclass
class Proposal:
    """A candidate: canonical ``smiles`` (None: invalid, with ``error``), the ``parent`` it came from and its
    ``operator``; ``tokens`` (n, d) when the model made it."""

    smiles: str | None
    parent: str | None
    operator: str
    tokens: Tensor | None = None
    error: str | None = None


@dataclass
class ModelOperators:
    """What the search asks the model for (the :class:`~molgen.design.Designer` supplies them):

    - ``sample(count, seed) -> list[Proposal]``: fresh molecules from the prior, with their tokens;
    - ``remask(tokens, strength, seed) -> list[Proposal]``: one child per row of ``tokens`` (a :class:`Latents`);
    - ``encode(smiles) -> list[Tensor | None]``: tokens of molecules (None: outside the model's chemistry);
    - ``max_nodes``: the prior's largest graph (the surrogate's size scale)."""

    sample: Callable[[int, int], list[Proposal]]
    remask: Callable[[Latents, float, int], list[Proposal]]
    encode: Callable[[list[str]], list[Tensor | None]]
    max_nodes: int


def _features(latents: Latents, scale: float) -> Tensor:
    """(B, N, d) latents -> (B, 2d + 1) features: mean and max over real tokens, and the size / ``scale``."""
    mask = latents.mask.unsqueeze(-1)  # (B, N, 1)
    count = mask.sum(1).clamp(min=1)  # (B, 1)
    mean = (latents.z * mask).sum(1) / count  # (B, d)
    peak = latents.z.masked_fill(~mask, -1e4).max(1).values  # (B, d)
    return torch.cat([mean, peak, count.float() / scale], dim=-1)


class Surrogate:
    """A small MLP from pooled latents to standardised scores, refitted from scratch on each call to :meth:`fit`."""

    def __init__(self, scale: float, hidden: int = 64, steps: int = 200, seed: int = 0) -> None:
        self.scale, self.hidden, self.steps, self.seed = scale, hidden, steps, seed
        self.net: nn.Module | None = None

    def fit(self, latents: Latents, scores: Tensor) -> Surrogate:
        torch.manual_seed(self.seed)
        x = _features(latents, self.scale)  # (B, F)
        self.x_mean, self.x_std = x.mean(0), x.std(0).clamp(min=1e-3)
        self.y_mean, self.y_std = scores.mean(), scores.std().clamp(min=1e-6)
        x = (x - self.x_mean) / self.x_std
        y = (scores - self.y_mean) / self.y_std  # (B,)
        self.net = nn.Sequential(
            nn.Linear(x.shape[1], self.hidden),
            nn.SiLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.SiLU(),
            nn.Linear(self.hidden, 1),
        )
        optimizer = torch.optim.Adam(self.net.parameters(), lr=3e-3, weight_decay=1e-4)
        with torch.enable_grad():
            for _ in range(self.steps):
                optimizer.zero_grad()
                loss = ((self.net(x).squeeze(-1) - y) ** 2).mean()
                loss.backward()
                optimizer.step()
        return self

    @torch.no_grad()
    def predict(self, latents: Latents) -> Tensor:
        """(B,) predicted scores."""
        x = (_features(latents, self.scale) - self.x_mean) / self.x_std
        return self.net(x).squeeze(-1) * self.y_std + self.y_mean


@dataclass
class _State:
    population: dict[str, float] = field(default_factory=dict)  # smiles -> score, the best ``population`` scored
    tokens: dict[str, Tensor | None] = field(default_factory=dict)  # smiles -> tokens (None: not encodable)
    dropped: dict[str, DesignResult] = field(default_factory=dict)  # rejected or invalid children, never sent
    trajectory: list[dict] = field(default_factory=list)


class Search:
    """One optimisation run.

    Args:
        oracle: the objective behind its budget and history (a resumed history seeds the population).
        canonical: SMILES -> canonical SMILES (raising ``ValueError`` for a molecule outside the domain).
        screen: a :class:`~molgen.design.constraints.Screen` (constraints and filters) or None.
        model: the model's operators (None: only ``graph-ga`` can run).
        strategy: a key of :data:`STRATEGIES`.
        n: proposals per round; population: molecules kept as parents; strength: ``remask``'s share.
    """

    def __init__(
        self,
        oracle: Oracle,
        canonical: Callable[[str], str],
        screen=None,
        model: ModelOperators | None = None,
        strategy: str = DEFAULT_STRATEGY,
        n: int = 64,
        population: int = 1000,
        strength: float = DEFAULT_STRENGTH,
        seed: int = 0,
    ) -> None:
        if strategy not in STRATEGIES:
            raise DesignInputError(f"strategy={strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if model is None and any(op != "graph-ga" for op in STRATEGIES[strategy]):
            raise DesignInputError(f"strategy {strategy!r} needs a model; without one only 'graph-ga' runs")
        self.oracle, self.canonical, self.screen, self.model = oracle, canonical, screen, model
        self.mix, self.n, self.population_size, self.strength, self.seed = (
            STRATEGIES[strategy],
            n,
            population,
            strength,
            seed,
        )
        self.rng = random.Random(seed)
        self.credit = {op: [0.0, 0.0] for op in self.mix}
        self.state = _State()
        for call in oracle.history:  # a resumed run: every scored molecule passed the checks when it was made
            if call.score is not None:
                self.state.population[call.smiles] = call.score
        self._select()

    # --- the loop ---------------------------------------------------------------------------------------

    def run(
        self,
        start: list[Proposal] | None,
        initial: int,
        progress: Callable[[int, int | None, float | None], None] | None = None,
    ) -> OptimizationResult:
        """Score ``start`` (or ``initial`` fresh samples, or the GA's start when there is no model) unless a resumed
        history already holds molecules, then run rounds until the budget is spent."""
        stopped, idle, first_round = None, 0, 1 + max((c.round for c in self.oracle.history), default=-1)
        try:
            if not self.state.population:
                if start is None:
                    if self.model is None:
                        raise DesignInputError("give start molecules: without a model the search cannot draw its own")
                    start = self.model.sample(initial, self.seed)
                self._score(start, first_round)
                self._report(first_round, progress)
                first_round += 1
                if not self.state.population:
                    raise DesignInputError(
                        "no start molecule could be scored: the objective failed on all of them (see the history)"
                    )
            for r in range(first_round, 10**9):
                new = self._score(self._propose(r), r)
                self._report(r, progress)
                idle = 0 if new else idle + 1
                if idle >= PATIENCE:
                    stopped = f"no new molecule in {PATIENCE} rounds"
                    break
        except BudgetExhausted as exc:
            stopped = str(exc)
        except KeyboardInterrupt:
            stopped = f"interrupted after {self.oracle.used} objective calls"
            log.warning("optimisation %s; keeping the molecules scored so far", stopped)
        except DesignInputError:
            raise
        except Exception as exc:  # a later failure (the objective's service down, ...) keeps what was scored
            if not self.oracle.used:
                raise
            stopped = f"stopped after {self.oracle.used} objective calls: {type(exc).__name__}: {exc}"
            log.warning("optimisation %s; keeping the molecules scored so far", stopped)
        return self._result(stopped)

    def _shares(self) -> dict[str, float]:
        """Each operator's share of the next round: its prior share, reweighted by how often
        its recent proposals entered the top of the population (decayed counts, a floor of :data:`MIN_SHARE`)."""
        if len(self.mix) == 1:
            return self.mix
        rate = {op: (self.credit[op][0] + 1) / (self.credit[op][1] + 2) for op in self.mix}
        weights = {op: self.mix[op] * rate[op] for op in self.mix}
        total = sum(weights.values())
        shares = {op: max(w / total, MIN_SHARE) for op, w in weights.items()}
        total = sum(shares.values())
        return {op: v / total for op, v in shares.items()}

    def _propose(self, r: int) -> list[Proposal]:
        parents = self._parents(2 * self.n)
        proposals: list[Proposal] = []
        for k, (operator, share) in enumerate(self._shares().items()):
            count = max(1, round(share * self.n))
            seed = (self.seed * 1_000_003 + r) * 7 + k
            if operator == "graph-ga":
                proposals += _graph_ga(parents, count, self.rng, self.canonical)
            else:
                oversample = OVERSAMPLE if operator == "surrogate" else 1
                children = self._remask(parents, count * oversample, seed)
                proposals += self._surrogate_pick(children, count, seed) if operator == "surrogate" else children
        return proposals

    def _score(self, proposals: list[Proposal], r: int) -> int:
        """Check the proposals, score the new ones that pass; the number scored."""
        self._decay()
        for p in proposals:  # every proposal is a trial of its operator: repeats and invalid ones are failures
            if (key := self._key(p.operator)) is not None:
                self.credit[key][1] += 1
        fresh: list[Proposal] = []
        seen = set()
        for p in proposals:
            if p.smiles is None or p.smiles in self.oracle.known or p.smiles in self.state.dropped or p.smiles in seen:
                continue
            seen.add(p.smiles)
            if self.screen is not None and self.screen.constrains:
                result = self.screen(p.smiles)
                if result.state != "valid":
                    self.state.dropped[p.smiles] = result
                    continue
            fresh.append(p)
            if p.tokens is not None:
                self.state.tokens[p.smiles] = p.tokens
        if not fresh:
            return 0
        scores = self.oracle.score([p.smiles for p in fresh], [p.parent for p in fresh], [p.operator for p in fresh], r)
        for p, score in zip(fresh, scores, strict=True):
            if score is not None:
                self.state.population[p.smiles] = score
        self._select()
        self._credit(fresh, scores)
        return sum(p.smiles in self.oracle.known for p in fresh)

    def _key(self, operator: str) -> str | None:
        if operator in self.credit:
            return operator
        return "surrogate" if operator == "remask" and "surrogate" in self.credit else None

    def _decay(self) -> None:
        for counts in self.credit.values():
            counts[0] *= DECAY
            counts[1] *= DECAY

    def _credit(self, fresh: list[Proposal], scores: list[float | None]) -> None:
        """Credit each operator with its children of this round that reached the top :data:`TOP` of the population."""
        ranked = sorted(self.state.population.values(), reverse=True)
        bar = ranked[min(TOP, len(ranked)) - 1] if ranked else math.inf
        for p, score in zip(fresh, scores, strict=True):
            if (key := self._key(p.operator)) is not None:
                self.credit[key][0] += float(score is not None and score >= bar)

    def _select(self) -> None:
        if len(self.state.population) > self.population_size:
            kept = sorted(self.state.population.items(), key=lambda item: -item[1])[: self.population_size]
            self.state.population = dict(kept)

    def _parents(self, count: int) -> list[str]:
        from mol_ga.sample_population import uniform_quantile_sampling

        members = [(score, smiles) for smiles, score in self.state.population.items()]
        return uniform_quantile_sampling(members, count, self.rng)

    # --- model operators ----------------------------------------------------------------------------------

    def _tokens(self, smiles: list[str]) -> list[Tensor | None]:
        missing = sorted({s for s in smiles if s not in self.state.tokens})
        if missing:
            self.state.tokens.update(zip(missing, self.model.encode(missing), strict=True))
        return [self.state.tokens[s] for s in smiles]

    def _remask(self, parents: list[str], count: int, seed: int) -> list[Proposal]:
        pairs = [(s, t) for s, t in zip(parents, self._tokens(parents), strict=True) if t is not None]
        if not pairs:
            return []
        chosen = [pairs[k % len(pairs)] for k in range(count)]
        children = self.model.remask(stack_tokens([t for _, t in chosen]), self.strength, seed)
        for (parent, _), child in zip(chosen, children, strict=True):
            child.parent = parent
        return children

    def _surrogate_pick(self, children: list[Proposal], count: int, seed: int) -> list[Proposal]:
        usable = [
            c for c in children if c.smiles is not None and c.tokens is not None and c.smiles not in self.oracle.known
        ]
        scored = [(s, v) for s, v in self.state.population.items() if self.state.tokens.get(s) is not None]
        if len(usable) <= count or len(scored) < 8:
            return usable[:count]
        surrogate = Surrogate(self.model.max_nodes, seed=seed).fit(
            stack_tokens([self.state.tokens[s] for s, _ in scored]),
            torch.tensor([v for _, v in scored], dtype=torch.float32),
        )
        predicted = surrogate.predict(stack_tokens([c.tokens for c in usable]))
        order = predicted.argsort(descending=True).tolist()
        n_explore = round(EXPLORE * count)
        best, rest = order[: count - n_explore], order[count - n_explore :]
        self.rng.shuffle(rest)
        return [usable[i] for i in best + rest[:n_explore]]

    # --- results ------------------------------------------------------------------------------------------

    def _report(self, r: int, progress) -> None:
        best = self.oracle.best(10)
        top = [c.score for c in best]
        this_round = [c for c in self.oracle.history.calls if c.round == r]
        scores = [c.score for c in this_round if c.score is not None]
        self.state.trajectory.append(
            {
                "round": r,
                "calls": self.oracle.used,
                "best_score": top[0] if top else math.nan,
                "top10_mean": sum(top) / len(top) if top else math.nan,
                "mean_score": sum(scores) / len(scores) if scores else math.nan,
                "scored": len(this_round),
                "seconds": round(self.oracle.elapsed, 3),
            }
        )
        if progress is not None:
            progress(self.oracle.used, self.oracle.budget.calls, top[0] if top else None)

    def _result(self, stopped: str | None) -> OptimizationResult:
        evaluated = []
        for call in self.oracle.history:
            state, error = ("valid", None) if call.score is not None else ("invalid", call.error)
            evaluated.append(DesignResult(call.smiles, state, error=error, score=call.score))
        return OptimizationResult(
            best=sorted((r for r in evaluated if r.score is not None), key=lambda r: -r.score),
            trajectory=self.state.trajectory,
            evaluated=evaluated,
            stopped=stopped,
            history=self.oracle.history,
        )


def _graph_ga(parents: list[str], count: int, rng: random.Random, canonical: Callable[[str], str]) -> list[Proposal]:
    """``count`` children by mol-ga's graph GA operators (10% mutation of one parent, 90% crossover of two with a 1%
    mutation rate, as its ``graph_ga_blended_generation``), each with its parent(s) recorded."""
    from mol_ga.graph_ga.gen_candidates import mutate, reproduce

    children = []
    for _ in range(count):
        if rng.random() < 0.1:
            parent = rng.choice(parents)
            child, origin = mutate(parent, rng), parent
        else:
            a, b = rng.choice(parents), rng.choice(parents)
            child, origin = reproduce(a, b, 1e-2, rng), f"{a}+{b}"
        if child is None:
            continue
        try:
            children.append(Proposal(canonical(child), origin, "graph-ga"))
        except ValueError as exc:  # outside the domain (an element, a size)
            children.append(Proposal(None, origin, "graph-ga", error=str(exc)))
    return children
