"""Verified decoding: the decoder's argmax, checked by re-encoding it, and where its tokens differ from the ones given,
the nearest graph whose tokens are the given ones.

The encoder is a function from graphs to token sequences (FSQ codes, or a Gaussian posterior's means), so the graph a
token sequence stands for is one the encoder maps to it. The decoder's argmax almost always is that graph; when it is not, the error is nearly always a
label or two the decoder was unsure of (a double bond's E/Z, a ring closure in a fused system), with the right label
its second choice. The search proposes the argmax with such labels changed, in order of the probability the decoder
gives the change (a k-best enumeration over the least certain labels), re-encodes the proposals in batches and keeps the
first whose codes equal the given ones. No match within the budget (prior samples need not have an exact preimage):
the argmax stays. Domain-agnostic: it changes node-field and edge labels and asks only the encoder.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import torch
from torch import Tensor

from molgen.batch import GraphBatch
from molgen.tokenizer.model import GraphTokenizer

__all__ = ["SearchConfig", "verified_decode"]


@dataclass(frozen=True)
class SearchConfig:
    """``alternatives``: least certain label changes considered per graph (each a label's 2nd or 3rd choice);
    ``max_changes``: labels changed at once; ``budget``: proposals re-encoded per graph; ``chunk``: per encoder pass."""

    alternatives: int = 24
    max_changes: int = 4
    budget: int = 256
    chunk: int = 64
    tolerance: float = 1e-4


@dataclass(frozen=True)
class _Change:
    cost: float  # log p(argmax label) - log p(this label) >= 0
    field: int  # node field f, or -1 for an edge label
    i: int
    j: int  # the pair's other node (edges); 0 for node fields
    label: int

    @property
    def site(self) -> tuple[int, int, int]:
        return (self.field, self.i, self.j)


def _matches(tokenizer: GraphTokenizer, x: Tensor, adj: Tensor, mask: Tensor, z: Tensor, tolerance: float) -> Tensor:
    """(B,) True where the graphs (x, adj) encode to the tokens z on every real node."""
    codes = tokenizer.encode(GraphBatch(x, adj, mask))  # (B, N, D)
    close = ((codes - z).abs() <= tolerance).all(-1) | ~mask  # (B, N)
    return close.all(-1)


def _changes(node_logp: list[Tensor], edge_logp: Tensor, pairs: Tensor, count: int) -> list[_Change]:
    """The ``count`` cheapest label changes of one graph: each label's 2nd and 3rd choice, by cost."""
    found: list[_Change] = []
    for f, logp in enumerate(node_logp):  # (n, K_f)
        k = min(3, logp.shape[-1])
        top, labels = logp.topk(k, -1)  # (n, k)
        for i in range(logp.shape[0]):
            found.extend(_Change(float(top[i, 0] - top[i, r]), f, i, 0, int(labels[i, r])) for r in range(1, k))
    if len(pairs):
        k = min(3, edge_logp.shape[-1])
        top, labels = edge_logp.topk(k, -1)  # (P, k)
        cost = top[:, :1] - top[:, 1:]  # (P, k - 1)
        cheapest = cost.flatten().topk(min(count, cost.numel()), largest=False).indices
        for flat in cheapest.tolist():
            p, r = divmod(flat, k - 1)
            found.append(_Change(float(cost[p, r]), -1, int(pairs[p, 0]), int(pairs[p, 1]), int(labels[p, r + 1])))
    found.sort(key=lambda c: c.cost)
    return found[:count]


def _subsets(changes: list[_Change], max_changes: int, budget: int):
    """Subsets of ``changes`` (sorted by cost) in order of total cost, at most one change per label, up to ``budget``."""
    if not changes:
        return
    heap = [(changes[0].cost, (0,))]
    emitted = 0
    while heap and emitted < budget:
        cost, chosen = heapq.heappop(heap)
        last = chosen[-1]
        if last + 1 < len(changes):  # successors: swap the last change for the next one, or add the next one
            heapq.heappush(heap, (cost - changes[last].cost + changes[last + 1].cost, chosen[:-1] + (last + 1,)))
            if len(chosen) < max_changes:
                heapq.heappush(heap, (cost + changes[last + 1].cost, chosen + (last + 1,)))
        sites = [changes[c].site for c in chosen]
        if len(set(sites)) == len(sites):
            emitted += 1
            yield [changes[c] for c in chosen]


@torch.no_grad()
def verified_decode(tokenizer: GraphTokenizer, z: Tensor, mask: Tensor, config: SearchConfig | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(B, N, F) node labels, (B, N, N) edge labels and (B,) bool "the tokens are the graph's own" for tokens ``z``
    (FSQ codes, or a Gaussian tokenizer's posterior means: equal to within ``config.tolerance``).

    The argmax where it re-encodes to ``z``; else the first proposal of the search that does; else the argmax.
    """
    config = config or SearchConfig()
    out = tokenizer.decode_logits(z, mask)
    x = torch.stack([logits.argmax(-1) for logits in out.node_logits], dim=-1) * mask.unsqueeze(-1)  # (B, N, F)
    adj = torch.zeros(mask.shape + mask.shape[1:], dtype=torch.long, device=z.device)  # (B, N, N)
    b_idx, i_idx, j_idx = out.pairs.unbind(-1)
    labels = out.edge_logits.argmax(-1)
    adj[b_idx, i_idx, j_idx] = labels
    adj[b_idx, j_idx, i_idx] = labels
    exact = _matches(tokenizer, x, adj, mask, z, config.tolerance)  # (B,)
    node_logp = [logits.log_softmax(-1) for logits in out.node_logits]
    edge_logp = out.edge_logits.log_softmax(-1)  # (P, K_e)
    for b in (~exact).nonzero().flatten().tolist():
        n = int(mask[b].sum())
        in_graph = b_idx == b
        changes = _changes([lp[b, :n] for lp in node_logp], edge_logp[in_graph], out.pairs[in_graph, 1:], config.alternatives)
        proposals = _subsets(changes, config.max_changes, config.budget)
        found = _search(tokenizer, x[b, :n], adj[b, :n, :n], z[b : b + 1, :n], proposals, config)
        if found is not None:
            x[b, :n], adj[b, :n, :n] = found
            exact[b] = True
    return x, adj, exact


def _search(tokenizer: GraphTokenizer, x: Tensor, adj: Tensor, z: Tensor, proposals, config: SearchConfig) -> tuple[Tensor, Tensor] | None:
    """The first proposal (in the order given) whose graph encodes to ``z``; None if none does."""
    n = x.shape[0]
    while True:
        chunk = [p for _, p in zip(range(config.chunk), proposals, strict=False)]
        if not chunk:
            return None
        xs, adjs = x.repeat(len(chunk), 1, 1), adj.repeat(len(chunk), 1, 1)  # (C, n, F), (C, n, n)
        for c, changes in enumerate(chunk):
            for change in changes:
                if change.field >= 0:
                    xs[c, change.i, change.field] = change.label
                else:
                    adjs[c, change.i, change.j] = adjs[c, change.j, change.i] = change.label
        mask = torch.ones(len(chunk), n, dtype=torch.bool, device=x.device)
        hits = _matches(tokenizer, xs, adjs, mask, z.expand(len(chunk), -1, -1), config.tolerance).nonzero().flatten()
        if len(hits):
            return xs[hits[0]], adjs[hits[0]]
