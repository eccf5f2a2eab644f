"""The set prior: a transformer that denoises all of a graph's latent tokens together, trained by flow matching and
sampled with diffusers' schedulers (:mod:`molgen.prior.scheduling` says what it predicts).

Each token gets a learned embedding of its position in the tokenizer's canonical order. The noise level, the number
of nodes and the optional property conditions form one conditioning vector that modulates every block. Properties
come with a presence mask, so any subset can be given; with none given the network is the unconditional prior
(classifier-free guidance mixes the two).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from molgen.prior.blocks import DiTBlock, attention_inputs, condition_input, timestep_embedding
from molgen.prior.config import PriorConfig

__all__ = ["LatentPrior"]


class LatentPrior(nn.Module):
    """(B, N, latent_dim) noisy normalised latents + (B,) time in [0, 1] -> (B, N, latent_dim) prediction.

    The prediction is the flow-matching velocity ``noise - x0`` (:mod:`molgen.prior.scheduling`).
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.latent_in = nn.Linear(config.latent_dim, d)
        self.position = nn.Embedding(config.max_nodes, d)
        self.size = nn.Embedding(config.max_nodes + 1, d)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        p = max(config.num_properties, 1)
        self.condition = nn.Sequential(nn.Linear(2 * p, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(
            DiTBlock(d, config.n_heads, config.ff_mult, config.dropout, config.relative_positions, config.activation) for _ in range(config.layers)
        )
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False)
        self.modulation_out = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, config.latent_dim)
        for layer in (self.modulation_out, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, t: Tensor, mask: Tensor, properties: Tensor | None = None, property_mask: Tensor | None = None) -> Tensor:
        """``x`` (B, N, d_lat), ``t`` (B,), ``mask`` (B, N) real tokens; ``properties`` (B, P) normalised values
        and ``property_mask`` (B, P) which of them are given (None: unconditional)."""
        batch, n, _ = x.shape
        if n > self.config.max_nodes:
            raise ValueError(f"{n} latent tokens, more than this prior's max_nodes={self.config.max_nodes}")
        cond_in = condition_input(self.config, batch, properties, property_mask, x.device)  # (B, 2P)
        c = self.time(timestep_embedding(t, self.config.d_model)) + self.size(mask.sum(1)) + self.condition(cond_in)  # (B, d)
        c = F.silu(c)
        h = self.latent_in(x) + self.position.weight[:n].unsqueeze(0)  # (B, N, d)
        attn_mask, offsets = attention_inputs(mask, self.config.relative_positions, h.dtype)
        for block in self.blocks:
            h = block(h, c, attn_mask, offsets)
        shift, scale = self.modulation_out(c).unsqueeze(1).chunk(2, dim=-1)
        return self.out(self.norm_out(h) * (1 + scale) + shift) * mask.unsqueeze(-1)
