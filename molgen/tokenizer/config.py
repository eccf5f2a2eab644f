"""The tokenizer's config: everything needed to rebuild the network, saved as JSON beside its weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from molgen.config import JsonConfig

__all__ = ["TokenizerConfig"]


@dataclass
class TokenizerConfig(JsonConfig):
    """Shape of a :class:`~molgen.tokenizer.model.GraphTokenizer`.

    ``node_vocab_sizes``, ``edge_vocab_size`` and ``max_nodes`` come from the training data.
    """

    node_vocab_sizes: list[int]
    edge_vocab_size: int  # edge classes including "no edge" (label 0)
    max_nodes: int  # largest graph the positional embeddings cover
    bottleneck: Literal["gaussian", "fsq"] = "gaussian"
    latent_dim: int = 16  # per node, for "gaussian"; for "fsq" it is len(fsq_levels)
    fsq_levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5])
    d_model: int = 128
    n_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    ff_mult: int = 2
    edge_hidden: int = 64
    dropout: float = 0.0
    # The decoder scores a pair (i, j), i < j, symmetrically unless this is set: a domain whose edge labels say which
    # end is which (a scene's "j is behind i") sets it, and an asymmetric term is added (its own weights).
    directed_edges: bool = False
    # Orders the edge labels spell out, for the encoder: one list per order, giving for each edge label (index = label)
    # the direction it gives the pair i < j (1: j after i, -1: j before i, 0: not ordered). The encoder's attention is
    # then also biased by each order's transitive closure, so a node sees where it stands in a chain that a sparse
    # graph (a transitive reduction) spells out only hop by hop. Input features only: the decoder still outputs the
    # graph's own edges. Empty (molecules, dense scenes): no such bias. From the domain's ``encoder_orders()``.
    encoder_orders: list[list[int]] = field(default_factory=list)
    # The encoder also adds to each node's input the embeddings of the labels of its edges (its bonds, summed), so a
    # node's own state says which bonds it has, not only whom it attends to. Off in configs saved before it existed;
    # on for new tokenizers. (It does not by itself separate E/Z isomers: checkpoints/chem still gives some pairs
    # identical codes, the difference lost in the quantisation.)
    incident_edges: bool = False

    def __post_init__(self) -> None:
        if self.bottleneck not in ("gaussian", "fsq"):
            raise ValueError(f"bottleneck must be 'gaussian' or 'fsq', got {self.bottleneck!r}")
        if self.bottleneck == "fsq":
            self.latent_dim = len(self.fsq_levels)
        for r, directions in enumerate(self.encoder_orders):
            if len(directions) != self.edge_vocab_size or not set(directions) <= {-1, 0, 1}:
                raise ValueError(
                    f"encoder_orders[{r}] = {directions}: expected one direction in (-1, 0, 1) per edge label "
                    f"({self.edge_vocab_size} labels)"
                )
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

