"""A property predictor that reads a prefix of a discrete prior's tokens, for property guidance and for choosing
among candidates.

It reads the first k tokens of a graph exact and the rest unknown (zero), with t = 1 - k / nodes the share still
unknown, and predicts the normalised properties of the whole molecule: a future discriminator, as FUDGE (Yang & Klein
2021) uses for language models. :class:`molgen.sampling.guidance.PrefixPropertyGuidance` turns its error to the
targets at the next position into a change of each code's log-probability; with every token known it rates a
finished graph (:class:`molgen.sampling.guidance.Resampling`).

Like the prior, this module knows nothing of chemistry: properties are named columns of the latent cache. Training
is ``molgen.prior.training.PredictorModule``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from molgen.config import SELECTIONS, JsonConfig
from molgen.prior.blocks import DiTBlock, attention_inputs, timestep_embedding
from molgen.prior.config import PriorConfig

__all__ = ["NORMALISATION", "PredictorConfig", "PropertyPredictor"]

NORMALISATION = ("latent_mean", "latent_std", "property_names", "property_mean", "property_std")
"""What a predictor shares with the prior it guides: it reads that prior's normalised latents and predicts
its normalised properties."""


@dataclass
class PredictorConfig(JsonConfig):
    """Shape of a :class:`PropertyPredictor`, and the prior normalisation it was trained in (copied from the
    prior's config, checked when the two are loaded together)."""

    latent_dim: int
    max_nodes: int
    d_model: int = 64
    n_heads: int = 4
    layers: int = 2
    ff_mult: int = 2
    relative_positions: int = 0
    latent_mean: list[float] = field(default_factory=list)
    latent_std: list[float] = field(default_factory=list)
    property_names: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    # property-guidance strength a design request with targets gets when it does not set one (0: off unless asked;
    # molgen.design.Designer.generate, `molgen design generate`, the web page)
    default_scale: float = 0.0
    # a discrete prior under property guidance: graphs drawn per graph returned, one kept by the predicted error of the
    # whole graph (molgen.sampling.guidance.Resampling; 1: none) when the request does not say
    default_candidates: int = 1
    # ... and how the one is kept (molgen.config.SELECTIONS): "draw" in proportion to exp(-scale x error), "best"
    default_selection: str = "draw"

    def __post_init__(self) -> None:
        if not self.property_names:
            raise ValueError("a property predictor needs at least one property (the prior was trained without any)")
        if not self.default_scale >= 0:
            raise ValueError(f"default_scale={self.default_scale}: must be >= 0 (0: property guidance off unless asked)")
        if isinstance(self.default_candidates, bool) or not isinstance(self.default_candidates, int) or self.default_candidates < 1:
            raise ValueError(f"default_candidates={self.default_candidates!r}: must be a whole number >= 1 (1: no resampling)")
        if self.default_selection not in SELECTIONS:
            raise ValueError(f"default_selection={self.default_selection!r}: must be one of {SELECTIONS}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @classmethod
    def for_prior(cls, prior: PriorConfig, **shape) -> PredictorConfig:
        """A predictor for ``prior``'s latents and properties; ``shape``: d_model, layers, ..."""
        if prior.architecture != "discrete":
            raise ValueError(f"a property predictor reads a discrete prior's token prefixes; this prior is {prior.architecture!r}")
        return cls(latent_dim=prior.latent_dim, max_nodes=prior.max_nodes, **shape, **{k: getattr(prior, k) for k in NORMALISATION})

    def check_fits(self, prior: PriorConfig) -> None:
        """Raise ValueError unless this predictor reads ``prior``'s latents and predicts its properties."""
        different = [k for k in ("latent_dim", "max_nodes", *NORMALISATION) if getattr(self, k) != getattr(prior, k)]
        if different:
            raise ValueError(
                f"the property predictor was trained for another prior (different {', '.join(different)}): "
                "train it again on this prior (molgen train predictor)"
            )


class PropertyPredictor(nn.Module):
    """(B, N, latent_dim) normalised token prefixes (unknown tokens zero) + (B,) share of tokens unknown in [0, 1] +
    (B, N) mask -> (B, P) normalised properties of the whole molecule."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.latent_in = nn.Linear(config.latent_dim, d)
        self.position = nn.Embedding(config.max_nodes, d)
        self.size = nn.Embedding(config.max_nodes + 1, d)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(DiTBlock(d, config.n_heads, config.ff_mult, 0.0, config.relative_positions) for _ in range(config.layers))
        self.norm_out = nn.LayerNorm(d)
        self.out = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, len(config.property_names)))

    def forward(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        n = x.shape[1]
        c = F.silu(self.time(timestep_embedding(t, self.config.d_model)) + self.size(mask.sum(1)))  # (B, d)
        h = self.latent_in(x) + self.position.weight[:n].unsqueeze(0)  # (B, N, d)
        attn_mask, offsets = attention_inputs(mask, self.config.relative_positions, h.dtype)
        for block in self.blocks:
            h = block(h, c, attn_mask, offsets)
        weights = mask.unsqueeze(-1).float()
        pooled = (self.norm_out(h) * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, d): mean over real tokens
        return self.out(pooled)
