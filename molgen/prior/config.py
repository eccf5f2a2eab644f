"""The prior's config: network shape, objective, and the data statistics it was fitted with (saved as JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from molgen.config import JsonConfig

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "OBJECTIVES", "PriorConfig"]

ARCHITECTURES = ("set", "autoregressive", "discrete")
"""How the prior generates a graph's latent tokens: ``set``, all tokens denoised together by one transformer
(:class:`molgen.prior.model.LatentPrior`); ``autoregressive``, token after token in the canonical order, each
drawn by a small flow-matching head given the tokens before it
(:class:`molgen.prior.autoregressive.AutoregressivePrior`); or ``discrete``, token after token as well, each a
choice among a quantised tokenizer's codes (:class:`molgen.prior.autoregressive.DiscreteAutoregressivePrior`)."""

ACTIVATIONS = ("gelu_tanh", "gelu")
"""The MLP activation of the prior's blocks: GELU's tanh approximation (the first priors) or its exact erf form,
which PyTorch's CPU kernel computed about twice as fast in a microbenchmark here (its share of the whole
sampling speed-up of a distilled student was not measured on its own). The two differ slightly, so a trained
prior keeps the one it was trained with."""

OBJECTIVES: dict[str, tuple[str, ...]] = {
    # objective -> what the network may predict
    "flow": ("velocity",),  # flow matching: x_t = (1 - t) x0 + t noise, the network predicts noise - x0
    "diffusion": ("epsilon", "v_prediction"),  # DDPM forward process (diffusers' DDPMScheduler)
}


@dataclass
class PriorConfig(JsonConfig):
    """Shape of a :class:`~molgen.prior.model.LatentPrior` and the statistics it normalises with.

    ``latent_mean``/``latent_std`` (per latent dimension), ``property_mean``/``property_std`` (per
    conditioning property) and ``num_nodes_counts`` (how many training graphs had N nodes, index N) are
    computed from the training latents, never typed in.
    """

    latent_dim: int
    max_nodes: int
    objective: Literal["flow", "diffusion"] = "flow"
    prediction: str = "velocity"
    d_model: int = 128
    n_heads: int = 4
    layers: int = 4
    ff_mult: int = 4
    dropout: float = 0.0
    relative_positions: int = 0  # attention bias per head for token offsets up to this (0: none; see model)
    activation: str = "gelu_tanh"  # the blocks' MLP: "gelu_tanh" (tanh approximation) or "gelu" (exact, erf); see ACTIVATIONS
    self_condition: bool = False  # the network also reads its own last estimate of the clean latents (see model)
    architecture: str = "set"  # one of ARCHITECTURES
    head_width: int = 128  # autoregressive only: width of the per-token flow head
    head_blocks: int = 3  # autoregressive only: its residual blocks
    # discrete only: the code vectors (latent values, as the tokenizer gives them) seen in the training latents,
    # one per vocabulary id; measured from the data, never typed in
    vocabulary: list[list[float]] = field(default_factory=list)
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # diffusion only
    default_sampler: str = "euler"
    default_steps: int = 20
    default_restarts: int = 0  # restart-sampling passes after the first (see MolgenPipeline.sample_latents)
    restart_strength: float = 0.5  # how far back along the schedule each restart noises the latents
    default_autoguidance: float = 1.0  # weight of the model against its guide prior, when it has one (1: off)
    default_temperature: float = 1.0  # scale of the starting (and restart) noise unless told otherwise
    restart_temperature: float | None = None  # scale of each restart's fresh noise (None: the sampling temperature)
    default_top_p: float = 1.0  # discrete only: nucleus sampling share (see MolgenPipeline.sample_latents; 1: off)
    # Noise levels (network time, 0 = clean, 1 = pure noise) at which autoguidance applies; outside, the prior
    # alone predicts and the guide is not evaluated (Kynkäänniemi et al. 2024, guidance in a limited interval).
    autoguidance_interval: list[float] = field(default_factory=lambda: [0.0, 1.0])
    latent_mean: list[float] = field(default_factory=list)
    latent_std: list[float] = field(default_factory=list)
    property_names: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    num_nodes_counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        if self.prediction not in OBJECTIVES[self.objective]:
            raise ValueError(f"objective {self.objective!r} predicts one of {OBJECTIVES[self.objective]}, got {self.prediction!r}")
        if self.default_restarts < 0 or not 0 < self.restart_strength < 1:
            raise ValueError(
                f"default_restarts={self.default_restarts}, restart_strength={self.restart_strength}: "
                "restarts must be >= 0 and the strength strictly between 0 and 1"
            )
        if not self.default_autoguidance > 0:
            raise ValueError(f"default_autoguidance must be > 0 (1: off), got {self.default_autoguidance}")
        if not self.default_temperature > 0:
            raise ValueError(f"default_temperature must be > 0, got {self.default_temperature}")
        if not 0 < self.default_top_p <= 1 or (self.default_top_p < 1 and self.architecture != "discrete"):
            raise ValueError(f"default_top_p must be in (0, 1], and below 1 only for a discrete prior; got {self.default_top_p} ({self.architecture!r})")
        if self.restart_temperature is not None and not self.restart_temperature > 0:
            raise ValueError(f"restart_temperature must be > 0 or null (the sampling temperature), got {self.restart_temperature}")
        low, high = _interval(self.autoguidance_interval)
        if not 0 <= low <= high <= 1:
            raise ValueError(f"autoguidance_interval must be [low, high] with 0 <= low <= high <= 1, got {self.autoguidance_interval}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.relative_positions < 0:
            raise ValueError(f"relative_positions must be >= 0 (0: no relative-position bias), got {self.relative_positions}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.architecture == "autoregressive" and self.objective != "flow":
            raise ValueError(f"an autoregressive prior draws each token by flow matching: objective must be 'flow', got {self.objective!r}")
        if self.architecture == "autoregressive" and self.self_condition:
            raise ValueError("self_condition is an option of the set prior; an autoregressive prior reads the exact tokens before each one")
        if self.architecture == "discrete":
            if not self.vocabulary or any(len(code) != self.latent_dim for code in self.vocabulary):
                raise ValueError(f"a discrete prior needs its vocabulary: code vectors of {self.latent_dim} numbers (measured from quantised latents)")
            if self.self_condition:
                raise ValueError("self_condition is an option of the set prior; a discrete prior reads the exact tokens before each one")
        if self.head_width < 1 or self.head_blocks < 1:
            raise ValueError(f"head_width={self.head_width}, head_blocks={self.head_blocks}: both must be >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def num_properties(self) -> int:
        return len(self.property_names)


def _interval(value) -> tuple[float, float]:
    """``[low, high]`` as two floats, (nan, nan) when it is not a pair of numbers (so the range check refuses it)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        return float("nan"), float("nan")
    return low, high
