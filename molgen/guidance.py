"""Guidance while the prior samples: validity (toward latents whose argmax decoding is a valid graph),
properties (toward latents a property predictor scores on target) and the data (toward latents a discriminator
takes for the data's rather than the prior's, :class:`DiscriminatorGuidance`).

Validity guidance:

Classifier guidance with the tokenizer's decoder as the classifier. Over the last part of the sampling loop,
after each scheduler step, the latents move down the gradient of an energy computed from the decoder's
probabilities:

1. valence: for every node, the expected bond order it carries beyond its expected capacity (plus a margin),
   squared. Capacities come from the domain as plain numbers (:class:`ValenceTable`), so this module needs
   no chemistry.
2. connectivity: for every graph whose argmax edges fall apart, the most probable edge joining each smaller
   fragment to the rest (preferring nodes with free capacity) gets ``-log p(edge)``.

The decoder never changes and decoding stays the argmax: guidance only chooses where the prior's samples
land. It costs one decoder forward and backward pass per guided step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from molgen.config import SELECTIONS
from molgen.graph import ValenceTable
from molgen.prior.discriminator import LatentDiscriminator
from molgen.prior.predictor import PropertyPredictor
from molgen.tokenizer.model import GraphTokenizer

__all__ = ["SELECTIONS", "DiscriminatorGuidance", "PrefixPropertyGuidance", "PropertyGuidance", "RepairSites", "Resampling", "ValidityGuidance", "components"]


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


class ValidityGuidance:
    """Callable on (B, N, d) *normalised* latents (the prior's space) during sampling; returns them moved.

    ``mean``/``std`` (d,) map normalised latents to the tokenizer's; ``scale`` is the step size;
    ``bridge`` weighs the connectivity term against the valence term; ``margin`` keeps expected valences
    that much below capacity.
    """

    def __init__(
        self,
        tokenizer: GraphTokenizer,
        table: ValenceTable,
        mean: Tensor,
        std: Tensor,
        scale: float = 0.1,
        bridge: float = 1.0,
        margin: float = 0.3,
        only_broken: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        device = mean.device
        self.capacity = torch.tensor(table.capacity, dtype=torch.float32, device=device)  # (K_a, K_c)
        self.orders = torch.tensor(table.edge_orders, dtype=torch.float32, device=device)  # (K_e,)
        self.mean, self.std = mean, std
        self.scale, self.bridge, self.margin, self.only_broken = scale, bridge, margin, only_broken

    def __call__(self, x: Tensor, mask: Tensor) -> Tensor:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            energy, broken = self.energy(x_in * self.std + self.mean, mask)
            (grad,) = torch.autograd.grad(energy, x_in)
        if self.only_broken:
            grad = grad * broken[:, None, None]  # graphs whose argmax decoding is valid are left alone
        return (x - self.scale * grad) * mask.unsqueeze(-1)

    def energy(self, z: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Summed energy of (B, N, d) latents ``z`` and which graphs' argmax decoding breaks a rule, (B,) bool."""
        out = self.tokenizer.decode_logits(z, mask)
        batch, n = mask.shape
        p_atom = out.node_logits[0].softmax(-1)  # (B, N, K_a)
        p_charge = out.node_logits[1].softmax(-1) if len(out.node_logits) > 1 and self.capacity.shape[1] > 1 else None
        if p_charge is None:
            capacity = p_atom @ self.capacity[:, 0]  # (B, N) expected capacity
        else:
            capacity = torch.einsum("bna,bnc,ac->bn", p_atom, p_charge, self.capacity)
        p_edge = out.edge_logits.softmax(-1)  # (P, K_e)
        b, i, j = out.pairs.unbind(-1)
        load = _node_sums(p_edge @ self.orders, b, i, j, capacity)  # (B, N) expected edge order per node
        valence = (torch.relu(load - capacity + self.margin) ** 2 * mask).sum()

        # The argmax graph: which nodes exceed capacity, which graphs fall apart.
        with torch.no_grad():
            atom = out.node_logits[0].argmax(-1)
            charge = out.node_logits[1].argmax(-1) if p_charge is not None else torch.zeros_like(atom)
            hard_capacity = self.capacity[atom, charge]  # (B, N)
            label = p_edge.argmax(-1)  # (P,)
            hard_load = _node_sums(self.orders[label], b, i, j, hard_capacity)
            over = ((hard_load > hard_capacity) & mask).any(1)  # (B,)
            adj = torch.zeros(batch, n, n, dtype=torch.bool, device=z.device)
            adj[b, i, j] = label > 0
            adj = adj | adj.transpose(1, 2)
            comp = components(adj, mask)  # (B, N)
            fragmented = (mask & (comp != 0)).any(1)  # real nodes come first: node 0's fragment is labelled 0
        present = torch.zeros(batch, n, n, device=z.device, dtype=p_edge.dtype)
        present = present.index_put((b, i, j), 1.0 - p_edge[:, 0])
        present = present + present.transpose(1, 2)  # (B, N, N) p(edge), symmetric
        connect = self._bridges(present, comp, mask, hard_capacity - hard_load, fragmented)
        return valence + self.bridge * connect, over | fragmented

    @staticmethod
    def _bridges(present: Tensor, comp: Tensor, mask: Tensor, free: Tensor, fragmented: Tensor) -> Tensor:
        """Sum of -log p(edge) over the best edge joining each non-largest fragment to another fragment."""
        if not fragmented.any():
            return present.sum() * 0.0
        batch, n = mask.shape
        same = comp[:, :, None] == comp[:, None, :]  # (B, N, N)
        real = mask[:, :, None] & mask[:, None, :]
        has_room = (free >= 1)[:, :, None] & (free >= 1)[:, None, :]
        score = torch.where(real & ~same, present.detach() + has_room.float(), torch.full_like(present, -1.0))
        row_best, row_arg = score.max(-1)  # (B, N): best cross edge from each node
        size = same.logical_and(real).sum(-1)  # (B, N) size of each node's fragment
        largest = torch.where(mask, size, -1).argmax(-1)  # (B,) a node of the largest fragment
        main = comp.gather(1, largest[:, None])  # (B, 1)
        # Per fragment (keyed by its label), the node with the best cross edge.
        best = torch.full((batch, n), -2.0, device=present.device).scatter_reduce(1, comp, row_best, reduce="amax")  # (B, N)
        is_choice = mask & (comp != main) & (row_best == best.gather(1, comp)) & (row_best >= 0) & fragmented[:, None]
        # One node per fragment: the first that reaches its fragment's best.
        first = torch.full((batch, n), n, device=present.device, dtype=torch.long)
        first = first.scatter_reduce(1, comp, torch.where(is_choice, torch.arange(n, device=present.device).expand(batch, n), n), reduce="amin")
        chosen = is_choice & (first.gather(1, comp) == torch.arange(n, device=present.device))  # (B, N)
        gb, gi = chosen.nonzero(as_tuple=True)
        if len(gb) == 0:
            return present.sum() * 0.0
        p = present[gb, gi, row_arg[gb, gi]]
        return -torch.log(p + 1e-6).sum()


class RepairSites:
    """Where each graph's argmax decoding breaks a rule, per node: callable on (B, N, d) latents in the tokenizer's
    units and a (B, N) mask, returns (B, N) bool. A node is at fault when it carries more bond order than its
    element and charge allow (:class:`ValenceTable`, from the domain: no chemistry here), when it is bonded to
    such a node, or when it lies outside the fragment of node 0. A graph with no node at fault decodes to one
    connected graph within every capacity (the molecule domain can still refuse it, rarely, e.g. for an odd
    electron count). A discrete prior's repair passes redraw each broken graph's tokens from its first node at
    fault on (``restarts``, :meth:`molgen.pipeline.MolgenPipeline.sample_latents`)."""

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


class PropertyGuidance:
    """Classifier guidance toward property targets: callable on (B, N, d) normalised noisy latents at noise
    level ``t`` (B,), before the prior's step; returns them moved down the gradient of the predictor's
    squared error to the targets.

    ``targets`` (B, P) normalised values and ``given`` (B, P) which of them are targets (the prior's
    conditioning tensors); ``scale`` is the step size (per sample: each sample's own error is followed).
    """

    def __init__(self, predictor: PropertyPredictor, targets: Tensor, given: Tensor, scale: float) -> None:
        self.predictor, self.targets, self.given, self.scale = predictor, targets, given.float(), scale

    def rows(self, rows: Tensor) -> PropertyGuidance:
        """The same guidance for the graphs ``rows`` (indices into the batch; repeats allowed)."""
        return PropertyGuidance(self.predictor, self.targets[rows], self.given[rows], self.scale)

    def error(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        """(B,) summed squared error of the predicted normalised properties to the targets."""
        return ((self.predictor(x, t, mask) - self.targets).pow(2) * self.given).sum(-1)

    def __call__(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.error(x_in, t, mask).sum(), x_in)
        return (x - self.scale * grad) * mask.unsqueeze(-1)


class PrefixPropertyGuidance:
    """Property guidance for a discrete autoregressive prior, token by token (a future discriminator, as FUDGE,
    Yang & Klein 2021, does for language models): before token ``j`` is drawn, each of the prior's ``top_k``
    likeliest codes there is tried; a prefix predictor (``reads="prefix"``) reads the tokens drawn so far with
    that code at ``j`` (the rest unknown, zero) and its squared error ``e`` to the targets, in normalised units,
    lowers the code's log-probability by ``scale * e``. Codes outside the ``top_k`` are not drawn.

    ``scale`` 1 treats the predictor's error as a Gaussian log-likelihood with variance 1/2 (about the shipped
    prefix predictor's error on full molecules); larger values trust it more. ``targets`` (B, P) normalised
    values, ``given`` (B, P) which are targets; ``codes`` (V, d) the vocabulary's code vectors in the prior's
    normalised units. The predictor reads ``chunk`` candidate graphs at a time.
    """

    def __init__(self, predictor: PropertyPredictor, targets: Tensor, given: Tensor, scale: float, codes: Tensor, top_k: int = 32, chunk: int = 4096) -> None:
        if predictor.config.reads != "prefix":
            raise ValueError("guiding a discrete prior needs a property predictor that reads prefixes (reads='prefix'): train one for this prior")
        if top_k < 1:
            raise ValueError(f"top_k={top_k}: property guidance tries at least one code per token")
        self.inner = PropertyGuidance(predictor, targets, given, scale)
        self.codes, self.top_k, self.chunk = codes, min(top_k, codes.shape[0]), chunk

    def rows(self, rows: Tensor) -> PrefixPropertyGuidance:
        """The same guidance for a subset of the batch's graphs (``rows``: their indices)."""
        inner = self.inner.rows(rows)
        return PrefixPropertyGuidance(inner.predictor, inner.targets, inner.given, inner.scale, self.codes, self.top_k, self.chunk)

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


class DiscriminatorGuidance:
    """Discriminator guidance (Kim et al. 2023): callable on (B, N, d) normalised noisy latents at noise level ``t``
    (B,), before the prior's step; returns them moved up the gradient of the discriminator's logit, which estimates
    log p_data(x_t) - log p_prior(x_t) (:mod:`molgen.prior.discriminator`).

    A score correction ``c`` changes the flow's velocity by ``-t c / (1 - t)``, so the move is ``scale * t / (1 - t)``
    times the gradient, the factor capped at ``cap`` (near pure noise the discriminator knows nothing anyway).
    """

    def __init__(self, discriminator: LatentDiscriminator, scale: float, cap: float = 4.0) -> None:
        self.discriminator, self.scale, self.cap = discriminator, scale, cap

    def __call__(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.discriminator(x_in, t, mask).float().sum(), x_in)
        factor = (t / (1 - t).clamp(min=1e-6)).clamp(max=self.cap)[:, None, None]  # (B, 1, 1)
        return (x + self.scale * factor * grad) * mask.unsqueeze(-1)


class Resampling:
    """Sampling-importance-resampling of finished graphs (for a discrete prior, which never holds a noisy graph to
    steer): the pipeline draws ``candidates`` graphs per graph asked for, and :meth:`choose` keeps one of each group
    with probability proportional to ``exp(score)`` (``selection`` "draw") or the one with the highest score ("best":
    no longer a draw from the steered distribution, but the candidate the networks rate highest), where the score adds

    - ``weight`` x the logit of a ``discriminator`` (:mod:`molgen.prior.discriminator`), its estimate of
      log p_data(x) - log p_prior(x) (discriminator rejection sampling, Azadi et al. 2019; ``weight`` 1 targets the
      data's distribution, reached as ``candidates`` grows);
    - minus ``properties.scale`` x the squared error of the property predictor's reading of the whole graph to the
      group's targets (``properties``: a :class:`PropertyGuidance` with one row of targets per group), the same
      likelihood :class:`PrefixPropertyGuidance` weighs codes by token by token.

    Neither needs chemistry: both read latent tokens. The pipeline may add log weights of its own to the scores
    before :meth:`pick` (a :class:`~molgen.calibration.Calibration` of the decoded graphs' statistics, ``calibrated``;
    minus a :class:`~molgen.judge.model.GraphJudge`'s squared error of the decoded graphs to the targets, ``judged``),
    in which case neither network is needed."""

    def __init__(
        self, candidates: int, discriminator: LatentDiscriminator | None = None, weight: float = 0.0, properties: PropertyGuidance | None = None,
        calibrated: bool = False, selection: str = "draw", judged: bool = False,
    ) -> None:  # fmt: skip
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"candidates={candidates!r}: must be a whole number >= 1")
        if selection not in SELECTIONS:
            raise ValueError(f"selection={selection!r}: must be one of {SELECTIONS}")
        if discriminator is None and properties is None and not calibrated and not judged:
            raise ValueError(f"candidates={candidates}: nothing to choose among them by (needs a discriminator, property targets, a judge or a calibration)")
        self.candidates, self.discriminator, self.weight, self.properties = candidates, discriminator, weight, properties
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
            if self.discriminator is not None and self.weight:
                score = score + self.weight * self.discriminator(x[rows], t, mask[rows]).float()
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
