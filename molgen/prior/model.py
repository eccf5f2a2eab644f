"""The prior's network: a transformer over the latent tokens of one graph, in the tokenizer's canonical order.

Each token gets a learned embedding of its position, and (``relative_positions`` > 0) every attention layer
adds a learned bias per head for the offset j - i between tokens (clipped to +-relative_positions, as in T5):
in a depth-first atom order a ring closure is a fixed offset back (5 for a six-ring atom), which a bias on
offsets finds directly. The bias starts at zero, so it can be added to a trained prior without changing it.
The noise level, the number of nodes and the optional
property conditions form one conditioning vector that modulates every block (adaptive layer norm with
zero-initialised gates, as in DiT). Properties come with a presence mask, so any subset can be given;
with none given the network is the unconditional prior (classifier-free guidance mixes the two).

Self-conditioning (``config.self_condition``; Chen et al. 2023, "Analog Bits"): the network may also read an
estimate of the clean latents, its own from the previous sampling step (zeros when there is none, as at the
first step). Knowing roughly which molecule is forming lets the next prediction commit to it. The estimate
enters through its own zero-initialised projection, so the option can be added to a trained prior without
changing what it computes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.prior.config import PriorConfig

__all__ = ["DiTBlock", "LatentPrior", "attention_inputs", "condition_input", "timestep_embedding"]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """(B,) times in [0, 1] -> (B, dim) sinusoidal features (of 1000 t, the scale diffusers' timesteps use)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def condition_input(config: PriorConfig, batch: int, properties: Tensor | None, property_mask: Tensor | None, device: torch.device) -> Tensor:
    """(B, 2P) input of a prior's condition network: the normalised property values (absent ones read as 0)
    beside their presence mask; all zeros when unconditional (P is at least 1, so the network always exists)."""
    p = max(config.num_properties, 1)
    if properties is None or property_mask is None or config.num_properties == 0:
        return torch.zeros(batch, 2 * p, device=device)
    m = property_mask.float()
    return torch.cat([properties.float() * m, m], dim=-1)


def attention_inputs(mask: Tensor, relative_positions: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """What every :class:`DiTBlock` of a network needs from the (B, N) token mask: a (B, 1, 1, N) additive key
    mask (0 for real tokens, -inf for padding; additive, so relative-position biases can be added to it) and the
    (N, N) token offsets j - i clipped to +-``relative_positions`` and shifted to >= 0."""
    attn_mask = torch.zeros(mask.shape, device=mask.device, dtype=dtype).masked_fill(~mask.bool(), float("-inf"))[:, None, None, :]
    position = torch.arange(mask.shape[1], device=mask.device)
    k = relative_positions
    return attn_mask, (position[None, :] - position[:, None]).clamp(-k, k) + k


class DiTBlock(nn.Module):
    """Pre-norm self-attention + MLP, each modulated (shift, scale, gate) by the conditioning vector."""

    def __init__(self, d: int, n_heads: int, ff_mult: int, dropout: float, relative_positions: int = 0, activation: str = "gelu_tanh") -> None:
        super().__init__()
        self.n_heads = n_heads
        self.relative_positions = relative_positions
        if relative_positions:
            self.offset_bias = nn.Embedding(2 * relative_positions + 1, n_heads)  # offset -K..K -> bias per head
            nn.init.zeros_(self.offset_bias.weight)
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, ff_mult * d), nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none"), nn.Linear(ff_mult * d, d))
        self.modulation = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.dropout = dropout

    def forward(self, h: Tensor, c: Tensor, attn_mask: Tensor, offsets: Tensor) -> Tensor:
        """``attn_mask`` (B, 1, 1, N) additive key mask (0 or -inf); ``offsets`` (N, N) clipped j - i, shifted to >= 0."""
        batch, n, d = h.shape
        if self.relative_positions:
            attn_mask = attn_mask + self.offset_bias(offsets).permute(2, 0, 1).unsqueeze(0)  # (B, H, N, N)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).unsqueeze(1).chunk(6, dim=-1)  # (B, 1, d) each
        a = self.norm1(h) * (1 + scale1) + shift1
        q, k, v = self.qkv(a).view(batch, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # (B, H, N, dh)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0)
        h = h + gate1 * self.proj(a.transpose(1, 2).reshape(batch, n, d))
        return h + gate2 * self.mlp(self.norm2(h) * (1 + scale2) + shift2)


class LatentPrior(nn.Module):
    """(B, N, latent_dim) noisy normalised latents + (B,) time in [0, 1] -> (B, N, latent_dim) prediction.

    What the prediction means (velocity, epsilon or v) is ``config.prediction``; see
    :mod:`molgen.prior.scheduling` for how it is trained and sampled.
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.latent_in = nn.Linear(config.latent_dim, d)
        self.position = nn.Embedding(config.max_nodes, d)
        if config.self_condition:
            self.self_in = nn.Linear(config.latent_dim, d)  # the clean-latent estimate (zero-initialised: a no-op at first)
            nn.init.zeros_(self.self_in.weight)
            nn.init.zeros_(self.self_in.bias)
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

    def forward(
        self, x: Tensor, t: Tensor, mask: Tensor, properties: Tensor | None = None, property_mask: Tensor | None = None, x_self: Tensor | None = None
    ) -> Tensor:
        """``x`` (B, N, d_lat), ``t`` (B,), ``mask`` (B, N) real tokens; ``properties`` (B, P) normalised values
        and ``property_mask`` (B, P) which of them are given (None: unconditional); ``x_self`` (B, N, d_lat)
        an estimate of the clean normalised latents (None: no estimate yet). A prior without self-conditioning
        ignores ``x_self``, so a guide prior can be handed the same inputs as the prior it guides."""
        batch, n, _ = x.shape
        if n > self.config.max_nodes:
            raise ValueError(f"{n} latent tokens, more than this prior's max_nodes={self.config.max_nodes}")
        cond_in = condition_input(self.config, batch, properties, property_mask, x.device)  # (B, 2P)
        c = self.time(timestep_embedding(t, self.config.d_model)) + self.size(mask.sum(1)) + self.condition(cond_in)  # (B, d)
        c = F.silu(c)
        h = self.latent_in(x) + self.position.weight[:n].unsqueeze(0)  # (B, N, d)
        if self.config.self_condition and x_self is not None:  # no estimate reads as zeros: the projection's bias only
            h = h + self.self_in(x_self * mask.unsqueeze(-1))
        elif self.config.self_condition:
            h = h + self.self_in.bias
        attn_mask, offsets = attention_inputs(mask, self.config.relative_positions, h.dtype)
        for block in self.blocks:
            h = block(h, c, attn_mask, offsets)
        shift, scale = self.modulation_out(c).unsqueeze(1).chunk(2, dim=-1)
        return self.out(self.norm_out(h) * (1 + scale) + shift) * mask.unsqueeze(-1)
