"""Black-box optimisation in latent space: an evolutionary loop whose mutations are the prior's own partial
redraws of a parent's latents, screened by a small surrogate trained on the latents scored so far (LIMO's idea of a
differentiable property model on latents, used here to rank candidates rather than to take gradients, so the
objective itself is never assumed differentiable and the candidates stay where the prior puts molecules).

Per iteration:
  1. parents: the best distinct molecules so far that passed every constraint (elitism);
  2. candidates: ``oversample`` x ``n`` children, each a parent's latents with the share ``strength`` redrawn
     by the prior (:meth:`MolgenPipeline.sample_latents` with ``start``: a discrete prior draws one span of tokens
     again, a set prior noises them part of the way and denoises);
  3. selection: the surrogate (an MLP on pooled normalised tokens, refitted each iteration on every scored
     molecule) keeps the ``n`` most promising candidates, plus a random ``explore`` share;
  4. the chosen ``n`` are decoded, checked and scored by the objective.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from molgen.design.editing import stack_tokens
from molgen.design.results import DesignResult, OptimizationResult
from molgen.records import Latents

__all__ = ["LatentOptimizer", "Surrogate"]

log = logging.getLogger(__name__)


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
        self.net = nn.Sequential(nn.Linear(x.shape[1], self.hidden), nn.SiLU(), nn.Linear(self.hidden, self.hidden), nn.SiLU(), nn.Linear(self.hidden, 1))
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
class _Scored:
    tokens: Tensor  # (n, d) latents of one molecule
    result: DesignResult


class LatentOptimizer:
    """The loop, given three operations (the :class:`~molgen.design.Designer` supplies them):

    - ``sample(n, seed) -> Latents``: fresh latents from the prior;
    - ``mutate(parents, strength, seed) -> Latents``: one child per parent row;
    - ``evaluate(latents) -> list[DesignResult]``: decode, check and score (``score`` None when unusable).
    """

    def __init__(
        self,
        sample: Callable[[int, int], Latents],
        mutate: Callable[[Latents, float, int], Latents],
        evaluate: Callable[[Latents], list[DesignResult]],
        max_nodes: int,
        strength: float = 0.6,
        oversample: int = 4,
        explore: float = 0.25,
        surrogate: bool = True,
    ) -> None:
        if not 0 < strength <= 1:
            raise ValueError(f"strength={strength}: must be in (0, 1]")
        if oversample < 1:
            raise ValueError(f"oversample={oversample}: must be at least 1")
        self.sample, self.mutate, self.evaluate = sample, mutate, evaluate
        self.max_nodes, self.strength, self.oversample, self.explore = max_nodes, strength, oversample, explore
        self.use_surrogate = surrogate

    def run(
        self,
        n: int,
        iterations: int,
        seed: int = 0,
        start: Latents | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> OptimizationResult:
        """Score the start (given latents, or ``n`` prior samples), then run ``iterations`` rounds of ``n``."""
        scored: list[_Scored] = []
        trajectory: list[dict] = []
        stopped = None
        generator = torch.Generator().manual_seed(seed)
        for iteration in range(iterations + 1):
            try:
                if iteration == 0:
                    latents = start if start is not None else self.sample(n, seed)
                else:
                    latents = self._propose(scored, n, seed + iteration, generator)
                results = self.evaluate(latents)
            except KeyboardInterrupt:
                stopped = f"interrupted during iteration {iteration}"
                break
            except Exception as exc:
                if not scored:
                    raise
                stopped = f"stopped at iteration {iteration}: {exc}"
                log.warning("optimisation %s; keeping the %d molecules scored so far", stopped, len(scored))
                break
            scored += [_Scored(latents[b].cpu(), r) for b, r in enumerate(results)]
            trajectory.append(_summary(iteration, results, scored))
            if progress is not None:
                progress(iteration + 1, iterations + 1)
        return OptimizationResult(_best(scored), trajectory, [s.result for s in scored], stopped)

    def _propose(self, scored: list[_Scored], n: int, seed: int, generator: torch.Generator) -> Latents:
        parents = _parents(scored, max(1, n // 4))
        if not parents:  # nothing usable yet: start over from the prior
            return self.sample(n, seed)
        pool = stack_tokens([parents[k % len(parents)].tokens for k in range(n * self.oversample)])
        children = self.mutate(pool, self.strength, seed)
        usable = [s for s in scored if s.result.score is not None]
        if not self.use_surrogate or self.oversample == 1 or len(usable) < 8:
            chosen = torch.randperm(len(children), generator=generator)[:n]
        else:
            surrogate = Surrogate(self.max_nodes, seed=seed).fit(
                stack_tokens([s.tokens for s in usable]), torch.tensor([s.result.score for s in usable], dtype=torch.float32)
            )
            predicted = surrogate.predict(children)  # (pool,)
            n_explore = int(round(self.explore * n))
            order = predicted.argsort(descending=True)
            best, rest = order[: n - n_explore], order[n - n_explore :]
            chosen = torch.cat([best, rest[torch.randperm(len(rest), generator=generator)[:n_explore]]])
        return Latents(children.z[chosen], children.mask[chosen])


def _parents(scored: list[_Scored], k: int) -> list[_Scored]:
    """The ``k`` best distinct molecules that passed everything."""
    best: dict[str, _Scored] = {}
    for s in scored:
        r = s.result
        if r.state == "valid" and r.score is not None and (r.smiles not in best or r.score > best[r.smiles].result.score):
            best[r.smiles] = s
    return sorted(best.values(), key=lambda s: -s.result.score)[:k]


def _best(scored: list[_Scored]) -> list[DesignResult]:
    return [s.result for s in _parents(scored, len(scored))]


def _summary(iteration: int, results: list[DesignResult], scored: list[_Scored]) -> dict:
    scores = [r.score for r in results if r.score is not None]
    best = [s.result.score for s in scored if s.result.state == "valid" and s.result.score is not None]
    return {
        "iteration": iteration,
        "best_score": max(best) if best else math.nan,
        "mean_score": sum(scores) / len(scores) if scores else math.nan,
        "valid": sum(r.state == "valid" for r in results),
        "evaluated": len(results),
    }
