"""The prior's config: network shape, the sampling defaults, and the data statistics it was fitted with (saved as JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from molgen.config import JsonConfig

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "CODE_ARCHITECTURES", "PriorConfig"]

ARCHITECTURES = ("discrete", "set", "masked")
"""How the prior generates a graph's latent tokens: ``discrete``, token after token in the canonical order, each a
choice among a quantised (FSQ) tokenizer's codes (:class:`molgen.prior.discrete.DiscreteAutoregressivePrior`, the
shipped model's); ``set``, all tokens at once by flow matching, sampled with diffusers' schedulers
(:class:`molgen.prior.flow.LatentPrior`); ``masked``, the same codes drawn in a few parallel steps by masked
(absorbing-state) discrete diffusion, every position fixed or regenerated at will, sampled with diffusers'
AmusedScheduler (:class:`molgen.prior.masked.MaskedDiffusionPrior`)."""

CODE_ARCHITECTURES = ("discrete", "masked")
"""The architectures whose tokens are choices among ``config.vocabulary`` (a softmax over codes)."""

ACTIVATIONS = ("gelu_tanh", "gelu")
"""The MLP activation of the prior's blocks: GELU's tanh approximation or its exact erf form (faster on CPU). The
two differ slightly, so a trained prior keeps the one it was trained with."""


@dataclass
class PriorConfig(JsonConfig):
    """Shape of a prior network, its sampling defaults, and the statistics it normalises with.

    ``latent_mean``/``latent_std`` (per latent dimension), ``property_mean``/``property_std`` (per conditioning
    property), ``num_nodes_counts`` (how many training graphs had N nodes, index N) and, for a discrete or masked
    prior, ``vocabulary`` (the code vectors seen in the training latents, one per id) are computed from the training
    latents, never typed in.
    """

    latent_dim: int
    max_nodes: int
    architecture: str = "set"  # one of ARCHITECTURES
    d_model: int = 128
    n_heads: int = 4
    layers: int = 4
    ff_mult: int = 4
    dropout: float = 0.0
    relative_positions: int = 0  # attention bias per head for token offsets up to this (0: none; see molgen.prior.blocks)
    activation: str = "gelu_tanh"  # one of ACTIVATIONS
    vocabulary: list[list[float]] = field(default_factory=list)  # discrete and masked only (CODE_ARCHITECTURES)
    num_train_timesteps: int = 1000  # set only: diffusers' timestep scale (network time = timestep / this)
    default_sampler: str = "euler"  # set only: one of molgen.prior.scheduling.SAMPLERS
    default_steps: int = 20  # set and masked: scheduler steps
    default_temperature: float = 1.0  # set: scale of the starting noise; discrete and masked: the softmax temperature
    default_top_p: float = 1.0  # discrete and masked: nucleus sampling share (1: off)
    default_repairs: int = 0  # discrete only: repair passes over samples whose argmax decoding breaks a rule
    latent_mean: list[float] = field(default_factory=list)
    latent_std: list[float] = field(default_factory=list)
    property_names: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    num_nodes_counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if not self.default_temperature > 0:
            raise ValueError(f"default_temperature must be > 0, got {self.default_temperature}")
        if not 0 < self.default_top_p <= 1 or (self.default_top_p < 1 and self.architecture not in CODE_ARCHITECTURES):
            raise ValueError(f"default_top_p must be in (0, 1], and below 1 only for a prior over codes {CODE_ARCHITECTURES}; got {self.default_top_p} ({self.architecture!r})")
        if isinstance(self.default_repairs, bool) or not isinstance(self.default_repairs, int) or self.default_repairs < 0:
            raise ValueError(f"default_repairs must be a whole number >= 0, got {self.default_repairs!r}")
        if self.default_steps < 1:
            raise ValueError(f"default_steps must be >= 1, got {self.default_steps}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.relative_positions < 0:
            raise ValueError(f"relative_positions must be >= 0 (0: no relative-position bias), got {self.relative_positions}")
        if self.architecture in CODE_ARCHITECTURES and (not self.vocabulary or any(len(code) != self.latent_dim for code in self.vocabulary)):
            raise ValueError(f"a {self.architecture} prior needs its vocabulary: code vectors of {self.latent_dim} numbers (measured from quantised latents)")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def num_properties(self) -> int:
        return len(self.property_names)
