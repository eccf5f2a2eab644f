"""The graph tokenizer: a graph -> one latent token per node -> the same graph.

Networks only (plain ``nn.Module``s); losses and optimisation live in ``molgen.tokenizer.training``.

Symmetry breaking. Nodes arrive in a canonical order (for molecules, RDKit's canonical SMILES atom order),
and both the encoder and the decoder add a learned embedding of each node's position in that order. Atoms
that message passing cannot tell apart (the six carbons of benzene, two identical substituents) therefore
get distinct inputs, and the decoder scores a bond (i, j) from tokens that know where i and j sit, plus an
embedding of |i - j|. The encoder is a transformer whose attention carries a learned bias per edge label
and head (bonded pairs see each other as such), so each token can record its atom and its bonds. When the edge
labels spell out orders (a scene's left-to-right and front-to-back, ``config.encoder_orders``), a second bias per
label of the orders' transitive closures lets each node see every node before and after it in one hop, however
sparse the graph, and an embedding of how many nodes come before and after it gives its place in each chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.batch import GraphBatch
from molgen.tokenizer.config import TokenizerConfig

__all__ = [
    "Bottleneck",
    "DecoderOutput",
    "FSQBottleneck",
    "GaussianBottleneck",
    "GraphTokenizer",
    "Posterior",
    "node_pairs",
    "order_closure_labels",
]


@dataclass
class Posterior:
    """What the bottleneck makes of the encoder's states.

    ``z`` (B, N, latent_dim) is the latent used for decoding (a sample in training, the mean otherwise);
    ``mean`` the deterministic latent tokens; ``kl`` (B, N, latent_dim) the Gaussian KL per dimension
    (None for FSQ); ``indices`` (B, N) the FSQ code of each node (None for Gaussian); ``logvar``
    (B, N, latent_dim) the Gaussian posterior's log-variance (None for FSQ).
    """

    z: Tensor
    mean: Tensor
    kl: Tensor | None = None
    indices: Tensor | None = None
    logvar: Tensor | None = None


@dataclass
class DecoderOutput:
    node_logits: list[Tensor]  # one (B, N, K_f) per node field
    pairs: Tensor  # (P, 3) long: (graph, i, j) with i < j, both real nodes
    edge_logits: Tensor  # (P, K_e): logits of each pair's edge label


def node_pairs(mask: Tensor) -> Tensor:
    """(P, 3) indices (graph, i, j), i < j, of all pairs of real nodes; scoring only these saves ~3x."""
    pair_mask = torch.triu(mask[:, :, None] & mask[:, None, :], diagonal=1)  # (B, N, N)
    return pair_mask.nonzero()


def order_closure_labels(adj: Tensor, directions: Tensor) -> Tensor:
    """(B, N, N) edge labels -> (B, N, N) labels of the transitive closures of the orders the labels spell out.

    ``directions`` (R, K_e) gives, per order and edge label, the direction the label gives the pair ``i < j`` (1: ``j``
    after ``i``, -1: before, 0: not ordered); ``adj`` is symmetric, as in :class:`GraphBatch`. The result at ``[b, i,
    j]`` is ``sum_r 3**r * s_r`` with ``s_r`` 1 when ``j`` comes after ``i`` in the closure of order ``r``, 2 when
    before, 0 when neither (so it is not symmetric); padding is 0.
    """
    n = adj.shape[-1]
    upper = torch.ones(n, n, dtype=torch.bool, device=adj.device).triu(1)  # (N, N): i < j
    labels = torch.zeros_like(adj)
    for r in range(directions.shape[0]):
        d = directions[r][adj]  # (B, N, N): the direction of each pair's label, read for its i < j
        after = torch.where(upper, d == 1, d == -1).to(torch.float32)  # (B, N, N): j after i
        for _ in range(max(n - 1, 1).bit_length()):  # after k rounds, paths of up to 2**k hops: all (< N hops)
            after = ((after + after @ after) > 0).to(torch.float32)
        state = after.long() + 2 * after.transpose(1, 2).long()  # (B, N, N) in {0, 1, 2} (3 only on a cycle)
        labels = labels + 3**r * state.clamp(max=2)
    return labels


class GaussianBottleneck(nn.Module):
    """Diagonal-Gaussian posterior per node (a VAE bottleneck); decode from the mean for exact recovery."""

    def __init__(self, d_model: int, latent_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, 2 * latent_dim)

    def forward(self, h: Tensor, sample: bool) -> Posterior:
        mean, logvar = self.proj(h).chunk(2, dim=-1)  # (B, N, d_lat) each
        logvar = logvar.clamp(-12.0, 6.0)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, N, d_lat)
        return Posterior(z=z, mean=mean, kl=kl, logvar=logvar)


class FSQBottleneck(nn.Module):
    """Finite scalar quantisation (Mentzer et al. 2023): each node gets one of prod(levels) codes.

    FSQ has no learned codebook to collapse; utilisation is reported by the training module.
    """

    def __init__(self, d_model: int, levels: list[int]) -> None:
        super().__init__()
        from vector_quantize_pytorch import FSQ

        self.proj = nn.Linear(d_model, len(levels))
        self.fsq = FSQ(levels=list(levels))

    @property
    def codebook_size(self) -> int:
        return int(self.fsq.codebook_size)

    def forward(self, h: Tensor, sample: bool) -> Posterior:
        codes, indices = self.fsq(self.proj(h))  # (B, N, len(levels)) in [-1, 1], (B, N)
        return Posterior(z=codes, mean=codes, indices=indices.long())

    def codes_from_indices(self, indices: Tensor) -> Tensor:
        """(B, N) code indices -> (B, N, len(levels)) latent tokens."""
        return self.fsq.indices_to_codes(indices)


Bottleneck = GaussianBottleneck | FSQBottleneck
_BOTTLENECKS = {
    "gaussian": lambda c: GaussianBottleneck(c.d_model, c.latent_dim),
    "fsq": lambda c: FSQBottleneck(c.d_model, c.fsq_levels),
}


class _BiasedEncoderLayer(nn.TransformerEncoderLayer):
    """A pre-norm transformer layer that always adds ``src_mask`` as an attention *bias*.

    PyTorch's inference fast path (eval mode without autograd) reads a float ``src_mask`` as a mask and drops
    every entry that is not zero (pytorch/pytorch#118628), which turns learned edge biases into fully masked
    rows and NaN latents. This layer always takes the ordinary path; parameters and state-dict keys are those
    of ``nn.TransformerEncoderLayer``.
    """

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = src + self._sa_block(self.norm1(src), src_mask, src_key_padding_mask, is_causal=is_causal)
        return x + self._ff_block(self.norm2(x))


def _transformer_layer(config: TokenizerConfig, layer_class: type[nn.TransformerEncoderLayer] = nn.TransformerEncoderLayer) -> nn.TransformerEncoderLayer:
    return layer_class(
        d_model=config.d_model,
        nhead=config.n_heads,
        dim_feedforward=config.ff_mult * config.d_model,
        dropout=config.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )


class GraphEncoder(nn.Module):
    """(B, N, F) node labels + (B, N, N) edge labels -> (B, N, d_model) node states."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.node_embeddings = nn.ModuleList(nn.Embedding(k, config.d_model) for k in config.node_vocab_sizes)
        self.position = nn.Embedding(config.max_nodes, config.d_model)
        # one embedding per edge label, summed over a node's edges (row 0, "no edge", stays zero)
        self.incident_edges = nn.Embedding(config.edge_vocab_size, config.d_model, padding_idx=0) if config.incident_edges else None
        self.layers = nn.ModuleList(_transformer_layer(config, _BiasedEncoderLayer) for _ in range(config.encoder_layers))
        # One attention bias per edge label and head, per layer: bonds steer attention.
        self.edge_bias = nn.ModuleList(nn.Embedding(config.edge_vocab_size, config.n_heads) for _ in self.layers)
        # and one per closure label of the orders the edge labels spell out (config.encoder_orders), if any
        orders = len(config.encoder_orders)
        self.order_bias = nn.ModuleList(nn.Embedding(3**orders, config.n_heads) for _ in self.layers) if orders else None
        # and, per order, embeddings of how many nodes come before and after each node (its place in a chain)
        self.order_rank = nn.ModuleList(nn.Embedding(config.max_nodes, config.d_model) for _ in range(2 * orders))
        directions = torch.tensor(config.encoder_orders, dtype=torch.long).reshape(orders, config.edge_vocab_size)
        self.register_buffer("order_directions", directions, persistent=False)  # (R, K_e), rebuilt from the config
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> Tensor:
        batch_size, n = mask.shape
        h = self.position.weight[:n].unsqueeze(0)  # (1, N, d)
        for f, embedding in enumerate(self.node_embeddings):
            h = h + embedding(x[..., f])  # (B, N, d)
        if self.incident_edges is not None:
            counts = F.one_hot(adj, self.incident_edges.num_embeddings).sum(2).to(h.dtype)  # (B, N, K_e): edges by label
            h = h + counts[..., 1:] @ self.incident_edges.weight[1:]  # (B, N, d)
        key_padding = torch.zeros(batch_size, 1, 1, n, device=h.device, dtype=h.dtype)
        key_padding = key_padding.masked_fill(~mask[:, None, None, :], float("-inf"))  # (B, 1, 1, N)
        closure = order_closure_labels(adj, self.order_directions) if self.order_bias is not None else None  # (B, N, N)
        if closure is not None:
            for r in range(self.order_directions.shape[0]):
                state = closure // 3**r % 3  # (B, N, N): 1 where j comes after i in order r, 2 before
                h = h + self.order_rank[2 * r]((state == 2).sum(-1)) + self.order_rank[2 * r + 1]((state == 1).sum(-1))
        for k, (layer, edge_bias) in enumerate(zip(self.layers, self.edge_bias, strict=True)):
            bias = edge_bias(adj).permute(0, 3, 1, 2) + key_padding  # (B, H, N, N)
            if closure is not None:
                bias = bias + self.order_bias[k](closure).permute(0, 3, 1, 2)  # (B, H, N, N)
            h = layer(h, src_mask=bias.reshape(batch_size * self.n_heads, n, n))
        return self.norm(h)


class GraphDecoder(nn.Module):
    """(B, N, latent_dim) latent tokens -> node-label logits and edge-label logits, symmetric in the pair's ends
    unless ``config.directed_edges`` (then a term ``a_i * c_j`` tells the earlier node from the later one)."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        d, e = config.d_model, config.edge_hidden
        self.latent_in = nn.Linear(config.latent_dim, d)
        self.position = nn.Embedding(config.max_nodes, d)
        self.layers = nn.ModuleList(_transformer_layer(config) for _ in range(config.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.node_heads = nn.ModuleList(nn.Linear(d, k) for k in config.node_vocab_sizes)
        self.edge_sum = nn.Linear(d, e)
        self.edge_prod = nn.Linear(d, e)
        self.distance = nn.Embedding(config.max_nodes, e)
        self.edge_mlp = nn.Sequential(nn.LayerNorm(e), nn.GELU(), nn.Linear(e, e), nn.GELU(), nn.Linear(e, config.edge_vocab_size))
        self.edge_from = nn.Linear(d, e) if config.directed_edges else None
        self.edge_to = nn.Linear(d, e) if config.directed_edges else None

    def forward(self, z: Tensor, mask: Tensor) -> DecoderOutput:
        n = mask.shape[1]
        h = self.latent_in(z) + self.position.weight[:n].unsqueeze(0)  # (B, N, d)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~mask)
        h = self.norm(h)
        node_logits = [head(h) for head in self.node_heads]  # [(B, N, K_f)]
        s, p = self.edge_sum(h), self.edge_prod(h)  # (B, N, e)
        pairs = node_pairs(mask)  # (P, 3)
        b, i, j = pairs.unbind(-1)
        pair = s[b, i] + s[b, j] + p[b, i] * p[b, j] + self.distance(j - i)  # (P, e), symmetric in i, j
        if self.edge_from is not None:
            pair = pair + self.edge_from(h)[b, i] * self.edge_to(h)[b, j]  # (P, e): which end comes first
        return DecoderOutput(node_logits=node_logits, pairs=pairs, edge_logits=self.edge_mlp(pair))


class GraphTokenizer(nn.Module):
    """Encoder + bottleneck + decoder. ``encode`` gives one latent token per node; ``decode`` inverts it."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = GraphEncoder(config)
        self.bottleneck = _BOTTLENECKS[config.bottleneck](config)
        self.decoder = GraphDecoder(config)

    def _check_size(self, n: int) -> None:
        if n > self.config.max_nodes:
            raise ValueError(f"graph with {n} nodes is larger than this tokenizer's max_nodes={self.config.max_nodes}")

    def posterior(self, batch: GraphBatch, sample: bool = False) -> Posterior:
        """Encoder states -> bottleneck. ``sample`` draws from the Gaussian posterior (training)."""
        self._check_size(batch.x.shape[1])
        h = self.encoder(batch.x, batch.adj, batch.mask)  # (B, N, d)
        return self.bottleneck(h, sample=sample)

    @torch.no_grad()
    def encode(self, batch: GraphBatch) -> Tensor:
        """(B, N, latent_dim) deterministic latent tokens (posterior mean, or FSQ codes); padding is zero."""
        return self.posterior(batch).mean * batch.mask.unsqueeze(-1)

    def decode_logits(self, z: Tensor, mask: Tensor) -> DecoderOutput:
        self._check_size(z.shape[1])
        return self.decoder(z, mask)

    @torch.no_grad()
    def decode(self, z: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Argmax decoding: (B, N, F) node labels and (B, N, N) symmetric edge labels (0 off-graph)."""
        out = self.decode_logits(z, mask)
        x = torch.stack([logits.argmax(-1) for logits in out.node_logits], dim=-1)  # (B, N, F)
        adj = torch.zeros(mask.shape + mask.shape[1:], dtype=torch.long, device=z.device)  # (B, N, N)
        b, i, j = out.pairs.unbind(-1)
        labels = out.edge_logits.argmax(-1)  # (P,)
        adj[b, i, j] = labels
        adj[b, j, i] = labels
        return x * mask.unsqueeze(-1), adj

    @torch.no_grad()
    def decode_probs(self, z: Tensor, mask: Tensor) -> tuple[list[Tensor], Tensor]:
        """Decoder probabilities: one (B, N, K_f) per node field and (B, N, N, K_e) symmetric edge-label
        probabilities (pairs involving padding read as certainly "no edge")."""
        out = self.decode_logits(z, mask)
        node_probs = [logits.softmax(-1) for logits in out.node_logits]
        batch, n = mask.shape
        edge_probs = torch.zeros(batch, n, n, self.config.edge_vocab_size, device=z.device)
        edge_probs[..., 0] = 1.0
        b, i, j = out.pairs.unbind(-1)
        probs = out.edge_logits.softmax(-1)  # (P, K_e)
        edge_probs[b, i, j] = probs
        edge_probs[b, j, i] = probs
        return node_probs, edge_probs

    def forward(self, batch: GraphBatch, sample: bool = True) -> tuple[Posterior, DecoderOutput]:
        posterior = self.posterior(batch, sample=sample and self.training)
        return posterior, self.decode_logits(posterior.z, batch.mask)
