"""What steers a prior's samples without changing its network: repair sites (where a finished graph's argmax
decoding breaks a rule), property guidance of a discrete prior token by token (:class:`PrefixPropertyGuidance`),
and resampling of finished candidates (:class:`Resampling`). No chemistry here: valences come from the domain as
plain numbers (:class:`~molgen.graph.ValenceTable`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from molgen.config import SELECTIONS
from molgen.graph import ValenceTable
from molgen.prior.predictor import PropertyPredictor
from molgen.tokenizer.model import GraphTokenizer

__all__ = ["PrefixPropertyGuidance", "PropertyTargets", "RepairSites", "Resampling", "components"]


def components(adj: Tensor, mask: Tensor) -> Tensor:
    """(B, N) label of each node's connected component (its smallest node index) in (B, N, N) bool ``adj``;
    padding nodes keep their own index."""
    n = mask.shape[1]
    index = torch.arange(n, device=adj.device).expand_as(mask)  # (B, N)
    labels = index.clone()
    big = torch.full_like(adj, n, dtype=labels.dtype)
    for _ in range(n):  # min-label propagation converges within the graph's diameter
        neighbour = torch.where(adj, labels[:, None, :].expand_as(big), big).amin(-1)  # (B, N)
        updated = torch.minimum(labels, neighbour)
        if torch.equal(updated, labels):
            break
        labels = updated
    return torch.where(mask, labels, index)


class RepairSites:
    """Where each graph's argmax decoding breaks a rule, per node: callable on (B, N, d) latents in the tokenizer's
    units and a (B, N) mask, returns (B, N) bool. A node is at fault when it carries more bond order than its
    element and charge allow (:class:`ValenceTable`, from the domain: no chemistry here), when it is bonded to
    such a node, or when it lies outside the fragment of node 0. A graph with no node at fault decodes to one
    connected graph within every capacity (the molecule domain can still refuse it, rarely, e.g. for an odd
    electron count). A discrete prior's repair passes redraw each broken graph's tokens from its first node at
    fault on (``repairs``, :class:`molgen.sampling.config.SamplingConfig`)."""

    def __init__(self, tokenizer: GraphTokenizer, table: ValenceTable, device: torch.device | str = "cpu") -> None:
        self.tokenizer = tokenizer
        self.capacity = torch.tensor(table.capacity, dtype=torch.float32, device=device)  # (K_a, K_c)
        self.orders = torch.tensor(table.edge_orders, dtype=torch.float32, device=device)  # (K_e,)

    @torch.no_grad()
    def __call__(self, z: Tensor, mask: Tensor) -> Tensor:
        out = self.tokenizer.decode_logits(z, mask)
        batch, n = mask.shape
        atom = out.node_logits[0].argmax(-1)
        charged = len(out.node_logits) > 1 and self.capacity.shape[1] > 1
        charge = out.node_logits[1].argmax(-1) if charged else torch.zeros_like(atom)
        capacity = self.capacity[atom, charge]  # (B, N)
        label = out.edge_logits.argmax(-1)  # (P,)
        b, i, j = out.pairs.unbind(-1)
        load = _node_sums(self.orders[label], b, i, j, capacity)  # (B, N)
        adj = torch.zeros(batch, n, n, dtype=torch.bool, device=z.device)
        adj[b, i, j] = label > 0
        adj = adj | adj.transpose(1, 2)
        over = (load > capacity + 1e-6) & mask
        beside = (adj & over[:, None, :]).any(-1)  # bonded to a node over capacity
        apart = mask & (components(adj, mask) != 0)  # outside node 0's fragment
        return (over | beside | apart) & mask


def _node_sums(values: Tensor, b: Tensor, i: Tensor, j: Tensor, like: Tensor) -> Tensor:
    """(B, N) per-node sums of per-pair ``values`` (P,) over both ends of each pair (b, i, j)."""
    out = torch.zeros_like(like, dtype=values.dtype)
    return out.index_put((b, i), values, accumulate=True).index_put((b, j), values, accumulate=True)


class PropertyTargets:
    """A prefix property predictor with one row of targets per graph: ``targets`` (B, P) normalised values, ``given``
    (B, P) which of them are targets, ``scale`` how strongly its squared error counts (a log-likelihood weight)."""

    def __init__(self, predictor: PropertyPredictor, targets: Tensor, given: Tensor, scale: float) -> None:
        self.predictor, self.targets, self.given, self.scale = predictor, targets, given.float(), scale

    def rows(self, rows: Tensor) -> PropertyTargets:
        """The same targets for the graphs ``rows`` (indices into the batch; repeats allowed)."""
        return PropertyTargets(self.predictor, self.targets[rows], self.given[rows], self.scale)

    def error(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        """(B,) summed squared error of the predicted normalised properties of (B, N, d) prefixes to the targets."""
        return ((self.predictor(x, t, mask).float() - self.targets).pow(2) * self.given).sum(-1)


class PrefixPropertyGuidance:
    """Property guidance for a discrete autoregressive prior, token by token (a future discriminator, as FUDGE,
    Yang & Klein 2021, does for language models): before token ``j`` is drawn, each of the prior's ``top_k``
    likeliest codes there is tried; the prefix predictor reads the tokens drawn so far with
    that code at ``j`` (the rest unknown, zero) and its squared error ``e`` to the targets, in normalised units,
    lowers the code's log-probability by ``scale * e``. Codes outside the ``top_k`` are not drawn.

    ``scale`` 1 treats the predictor's error as a Gaussian log-likelihood with variance 1/2 (about the shipped
    prefix predictor's error on full molecules); larger values trust it more (``targets.scale``); ``codes`` (V, d)
    the vocabulary's code vectors in the prior's normalised units. The predictor reads ``chunk`` candidate graphs at a time.
    """

    def __init__(self, targets: PropertyTargets, codes: Tensor, top_k: int = 32, chunk: int = 4096) -> None:
        if top_k < 1:
            raise ValueError(f"top_k={top_k}: property guidance tries at least one code per token")
        self.inner = targets
        self.codes, self.top_k, self.chunk = codes, min(top_k, codes.shape[0]), chunk

    def rows(self, rows: Tensor) -> PrefixPropertyGuidance:
        """The same guidance for a subset of the batch's graphs (``rows``: their indices)."""
        return PrefixPropertyGuidance(self.inner.rows(rows), self.codes, self.top_k, self.chunk)

    @torch.no_grad()
    def __call__(self, logp: Tensor, x: Tensor, j: int, mask: Tensor) -> Tensor:
        """(B, V) log-probabilities of the codes at position ``j``, (B, N, d) normalised tokens drawn so far
        (zero from position ``j`` on), (B, N) mask -> (B, V) guided log-probabilities (rows of graphs with
        fewer than ``j + 1`` nodes unchanged)."""
        rows = mask[:, j].nonzero().squeeze(1)
        if len(rows) == 0:
            return logp
        k = self.top_k
        best, ids = logp[rows].topk(k, dim=-1)  # (R, K)
        trial = x[rows].unsqueeze(1).repeat(1, k, 1, 1)  # (R, K, N, d)
        trial[:, :, j] = self.codes[ids].to(trial.dtype)
        nodes = mask[rows].sum(1)
        t = (1 - (j + 1) / nodes).clamp(min=0.0).repeat_interleave(k)  # position j is known once drawn
        trial_mask = mask[rows].repeat_interleave(k, dim=0)
        trial = trial.flatten(0, 1)
        targets, given = self.inner.targets[rows].repeat_interleave(k, dim=0), self.inner.given[rows].repeat_interleave(k, dim=0)
        errors = []
        for lo in range(0, len(trial), self.chunk):
            part = slice(lo, lo + self.chunk)
            predicted = self.inner.predictor(trial[part], t[part], trial_mask[part]).float()
            errors.append(((predicted - targets[part]).pow(2) * given[part]).sum(-1))
        error = torch.cat(errors).view(len(rows), k)
        guided = logp.clone()
        guided[rows] = torch.full_like(logp[rows], float("-inf")).scatter(-1, ids, best - self.inner.scale * error)
        return guided


class Resampling:
    """Sampling-importance-resampling of finished graphs (for a discrete prior, which never holds a noisy graph to
    steer): the pipeline draws ``candidates`` graphs per graph asked for, and :meth:`choose` keeps one of each group
    with probability proportional to ``exp(score)`` (``selection`` "draw") or the one with the highest score ("best":
    no longer a draw from the steered distribution, but the candidate the networks rate highest), where the score is
    minus ``properties.scale`` x the squared error of the property predictor's reading of the whole graph to the
    group's targets (``properties``: :class:`PropertyTargets` with one row per group), the same likelihood
    :class:`PrefixPropertyGuidance` weighs codes by token by token.

    The sampler may add log weights of its own to the scores before :meth:`pick` (a
    :class:`~molgen.calibration.Calibration` of the decoded graphs' statistics, ``calibrated``; minus a
    :class:`~molgen.judge.model.GraphJudge`'s squared error of the decoded graphs to the targets, ``judged``), in
    which case no predictor is needed."""

    def __init__(
        self, candidates: int, properties: PropertyTargets | None = None, calibrated: bool = False, selection: str = "draw", judged: bool = False,
    ) -> None:  # fmt: skip
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"candidates={candidates!r}: must be a whole number >= 1")
        if selection not in SELECTIONS:
            raise ValueError(f"selection={selection!r}: must be one of {SELECTIONS}")
        if properties is None and not calibrated and not judged:
            raise ValueError(f"candidates={candidates}: nothing to choose among them by (needs property targets, a judge or a calibration)")
        self.candidates, self.properties = candidates, properties
        self.selection, self.judged = selection, judged

    @torch.no_grad()
    def scores(self, x: Tensor, mask: Tensor, batch: int = 512) -> Tensor:
        """(G * candidates,) log-weights of (G * candidates, N, d) normalised finished graphs, each group's
        candidates next to one another, with their (G * candidates, N) mask."""
        if x.shape[0] % self.candidates:
            raise ValueError(f"{x.shape[0]} graphs do not split into groups of {self.candidates} candidates")
        parts = []
        for lo in range(0, x.shape[0], batch):
            rows = slice(lo, lo + batch)
            t = torch.zeros(x[rows].shape[0], device=x.device)  # finished graphs: noise level 0, every token known
            score = torch.zeros(x[rows].shape[0], device=x.device)
            if self.properties is not None:
                groups = torch.arange(lo, lo + x[rows].shape[0], device=x.device) // self.candidates
                score = score - self.properties.scale * self.properties.rows(groups).error(x[rows], t, mask[rows]).float()
            parts.append(score)
        return torch.cat(parts)

    def choose(self, x: Tensor, mask: Tensor, generator: torch.Generator, batch: int = 512) -> Tensor:
        """(G,) indices into (G * candidates, N, d) normalised graphs (see :meth:`scores`) of the one kept of each group."""
        return self.pick(self.scores(x, mask, batch), generator)

    def pick(self, scores: Tensor, generator: torch.Generator) -> Tensor:
        """(G * candidates,) log weights, each group's next to one another -> (G,) index of the one kept of each
        group, drawn with probability proportional to exp(score), or the highest (``selection`` "best")."""
        scores = scores.view(-1, self.candidates)  # (G, K)
        if self.selection == "best":
            return torch.arange(scores.shape[0], device=scores.device) * self.candidates + scores.argmax(1)
        uniform = torch.rand(scores.shape, generator=generator).to(scores.device).clamp(1e-12, 1 - 1e-7)
        pick = (scores - torch.log(-torch.log(uniform))).argmax(1)  # Gumbel-max: a draw from softmax(scores) per group
        return torch.arange(scores.shape[0], device=scores.device) * self.candidates + pick
