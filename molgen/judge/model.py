"""A property judge on decoded graphs: graph -> properties, to choose among a discrete prior's candidates.

The prefix property predictor (:mod:`molgen.prior.predictor`) reads latent tokens, so it can steer the prior token by
token, but a graph's properties are spread over its tokens in a way the tokenizer's decoder has to undo. Once the
candidates are decoded, a network that reads the graph itself (atoms, charges, hydrogen counts, bond orders) predicts
their properties far more closely, and choosing the candidate nearest the targets by it exploits its errors far less.

The judge is a message-passing network on the dense padded batch the tokenizer also reads
(:class:`molgen.batch.GraphBatch`): one weight matrix per edge label (a relational GIN layer, Xu et al. 2019;
Schlichtkrull et al. 2018), plus each node's random-walk return probabilities over 1..``walk_steps`` steps (Dwivedi et
al. 2022), which tell ring members and ring sizes apart. Sum and mean pooling feed a small head. Like the tokenizer and
the prior it knows nothing of chemistry: node and edge labels are integers, properties named columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from molgen.config import SELECTIONS, JsonConfig

__all__ = ["GraphJudge", "JudgeConfig"]

NORMALISATION = ("property_names", "property_mean", "property_std")
"""What a judge shares with the prior whose candidates it chooses among: it predicts the prior's normalised properties."""


@dataclass
class JudgeConfig(JsonConfig):
    """Shape of a :class:`GraphJudge`, and the prior's property normalisation it predicts in (checked when the two
    are loaded together)."""

    node_vocab_sizes: list[int]
    edge_vocab_size: int  # edge labels including "no edge" (0)
    d_model: int = 128
    layers: int = 5
    walk_steps: int = 12  # random-walk return probabilities over 1..walk_steps steps, per node
    property_names: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    # a request with targets: candidates drawn per molecule returned, and how one is kept, when the request does not say
    default_candidates: int = 32
    default_selection: str = "best"

    def __post_init__(self) -> None:
        if not self.property_names:
            raise ValueError("a judge needs at least one property to predict")
        if not len(self.property_names) == len(self.property_mean) == len(self.property_std):
            raise ValueError("property_names, property_mean and property_std must have one entry per property")
        if isinstance(self.default_candidates, bool) or not isinstance(self.default_candidates, int) or self.default_candidates < 1:
            raise ValueError(f"default_candidates={self.default_candidates!r}: must be a whole number >= 1 (1: no resampling)")
        if self.default_selection not in SELECTIONS:
            raise ValueError(f"default_selection={self.default_selection!r}: must be one of {SELECTIONS}")
        if self.layers < 1 or self.walk_steps < 0:
            raise ValueError(f"layers={self.layers}, walk_steps={self.walk_steps}: need layers >= 1 and walk_steps >= 0")

    @classmethod
    def for_prior(cls, prior, node_vocab_sizes: list[int], edge_vocab_size: int, **shape) -> JudgeConfig:
        """A judge of graphs with these vocabularies, predicting ``prior``'s (a PriorConfig) properties."""
        return cls(node_vocab_sizes=list(node_vocab_sizes), edge_vocab_size=edge_vocab_size, **shape, **{k: list(getattr(prior, k)) for k in NORMALISATION})

    def check_fits(self, prior, node_vocab_sizes: list[int], edge_vocab_size: int) -> None:
        """Raise ValueError unless this judge reads graphs of these vocabularies and predicts ``prior``'s properties."""
        different = [k for k in NORMALISATION if list(getattr(self, k)) != list(getattr(prior, k))]
        if list(node_vocab_sizes) != list(self.node_vocab_sizes) or edge_vocab_size != self.edge_vocab_size:
            different.append("graph vocabulary")
        if different:
            raise ValueError(f"the judge was trained for another model (different {', '.join(different)}): train it again (molgen train judge)")


def walk_returns(adj: Tensor, mask: Tensor, steps: int) -> Tensor:
    """(B, N, steps) probability that a random walk from each node is back at it after 1..steps steps, on the graphs
    with (B, N, N) edge labels ``adj`` (0: no edge) and (B, N) ``mask``."""
    a = (adj > 0).float() * mask[:, :, None] * mask[:, None, :]  # (B, N, N)
    walk = a / a.sum(-1, keepdim=True).clamp(min=1)  # (B, N, N) row-stochastic (isolated nodes stay put at zero)
    out, power = [], walk
    for _ in range(steps):
        out.append(torch.diagonal(power, dim1=1, dim2=2))  # (B, N)
        power = power @ walk
    return torch.stack(out, -1) if out else adj.new_zeros(*mask.shape, 0, dtype=torch.float)


class RelationalGINLayer(nn.Module):
    """h_i <- h_i + MLP(LN(h_i + sum_r sum_{j ~_r i} W_r h_j)), one W_r per edge label r >= 1."""

    def __init__(self, d: int, relations: int) -> None:
        super().__init__()
        self.relations = relations
        self.norm = nn.LayerNorm(d)
        self.messages = nn.Linear(d, relations * d, bias=False)
        self.mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, h: Tensor, edges: Tensor) -> Tensor:
        """(B, N, d) node states, (B, R, N, N) one-hot edges of each label -> (B, N, d)."""
        b, n, d = h.shape
        m = self.messages(self.norm(h)).view(b, n, self.relations, d).transpose(1, 2)  # (B, R, N, d)
        incoming = (edges @ m).sum(1)  # (B, N, d)
        return h + self.mlp(h + incoming)


class GraphJudge(nn.Module):
    """(B, N, F) node labels + (B, N, N) edge labels + (B, N) mask -> (B, P) normalised properties."""

    def __init__(self, config: JudgeConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.node_embeddings = nn.ModuleList(nn.Embedding(k, d) for k in config.node_vocab_sizes)
        self.walks = nn.Linear(config.walk_steps, d) if config.walk_steps else None
        self.layers = nn.ModuleList(RelationalGINLayer(d, config.edge_vocab_size - 1) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(2 * d, 2 * d), nn.GELU(), nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, len(config.property_names)))

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> Tensor:
        h = sum(embedding(x[..., f]) for f, embedding in enumerate(self.node_embeddings))  # (B, N, d)
        if self.walks is not None:
            h = h + self.walks(walk_returns(adj, mask, self.config.walk_steps))
        labels = torch.arange(1, self.config.edge_vocab_size, device=adj.device)
        edges = (adj.unsqueeze(1) == labels[None, :, None, None]).to(h.dtype)  # (B, R, N, N)
        weights = mask.unsqueeze(-1).to(h.dtype)  # (B, N, 1)
        h = h * weights
        for layer in self.layers:
            h = layer(h, edges) * weights
        h = self.norm(h) * weights
        total = h.sum(1)  # (B, d): sizes and counts (MW, donors) add up over atoms
        pooled = torch.cat([total / 8.0, total / weights.sum(1).clamp(min=1)], -1)  # (B, 2d) sum (scaled) and mean
        return self.head(pooled)
