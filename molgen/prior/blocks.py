"""Layers every prior-side network shares: sinusoidal time features, the condition input, a transformer block
modulated by a conditioning vector (adaptive layer norm with zero-initialised gates, as in DiT), and the code
vocabulary of the priors over a quantised tokenizer's codes (:class:`CodeVocabulary`).

``relative_positions`` > 0 adds to every attention layer a learned bias per head for the offset j - i between tokens
(clipped to +-relative_positions, as in T5): in a depth-first atom order a ring closure is a fixed offset back, which
a bias on offsets finds directly. The bias starts at zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.prior.config import PriorConfig

__all__ = ["CodeVocabulary", "DiTBlock", "add_code_trunk", "attention_inputs", "condition_input", "timestep_embedding"]


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


class CodeVocabulary:
    """Mixin of the priors whose tokens are vocabulary ids (discrete and masked): the ``config.vocabulary`` code
    vectors as a (V, d_lat) buffer ``codes`` (not saved with the weights: the config holds them), and the conversions
    between the tokenizer's latent values and ids. Call :meth:`register_vocabulary` in ``__init__``."""

    codes: Tensor

    def register_vocabulary(self, vocabulary: list[list[float]]) -> None:
        self.register_buffer("codes", torch.tensor(vocabulary, dtype=torch.float32), persistent=False)  # (V, d_lat)

    def ids(self, z: Tensor) -> Tensor:
        """(..., d_lat) latent values (unnormalised) -> (...) id of the nearest vocabulary code (exact for
        the tokenizer's own codes, also under bfloat16 autocast: the distances are always float32)."""
        with torch.autocast(z.device.type, enabled=False):
            flat = z.reshape(-1, z.shape[-1]).to(self.codes.dtype)
            return torch.cdist(flat, self.codes).argmin(-1).view(z.shape[:-1])

    def values(self, ids: Tensor) -> Tensor:
        """(...) vocabulary ids -> (..., d_lat) latent values (unnormalised)."""
        return self.codes[ids]


def add_code_trunk(module: nn.Module, config: PriorConfig) -> None:
    """Give ``module`` the layers both code priors (discrete, masked) have: position and graph-size embeddings, the
    condition network, ``config.layers`` :class:`DiTBlock` s and the output norm (their names are the weights' names)."""
    d = config.d_model
    module.position = nn.Embedding(config.max_nodes, d)
    module.size = nn.Embedding(config.max_nodes + 1, d)
    p = max(config.num_properties, 1)
    module.condition = nn.Sequential(nn.Linear(2 * p, d), nn.SiLU(), nn.Linear(d, d))
    module.blocks = nn.ModuleList(
        DiTBlock(d, config.n_heads, config.ff_mult, config.dropout, config.relative_positions, config.activation) for _ in range(config.layers)
    )
    module.norm_out = nn.LayerNorm(d)
