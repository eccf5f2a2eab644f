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

    def __post_init__(self) -> None:
        if self.bottleneck not in ("gaussian", "fsq"):
            raise ValueError(f"bottleneck must be 'gaussian' or 'fsq', got {self.bottleneck!r}")
        if self.bottleneck == "fsq":
            self.latent_dim = len(self.fsq_levels)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

