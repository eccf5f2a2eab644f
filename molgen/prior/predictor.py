"""A property predictor on noisy latent tokens, for property guidance while the prior samples.

Classifier guidance (Dhariwal & Nichol 2021) for regression targets: a small transformer reads the prior's
noisy normalised latents ``x_t`` and the noise level ``t`` and predicts the normalised properties of the
molecule the latents will decode to. It is trained on the prior's own noising of the cached training
latents (:func:`molgen.prior.scheduling.training_pair`), so at every sampling step it sees what it was
trained on; :class:`molgen.guidance.PropertyGuidance` moves the latents down the gradient of its squared
error to the targets. The prior's classifier-free guidance and this gradient work together: the first
samples from the conditional prior, the second pushes each sample toward its target.

For a discrete autoregressive prior, which draws token after token and never holds a noisy graph, the predictor
reads prefixes instead (``reads="prefix"``): the first k tokens exact, the rest zero, with t = 1 - k / nodes;
:class:`molgen.guidance.PrefixPropertyGuidance` turns its gradient at the next position into a change of each
code's log-probability.

Like the prior, this module knows nothing of chemistry: properties are named columns of the latent cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.config import SELECTIONS, JsonConfig
from molgen.latents import LatentDataset
from molgen.prior.config import PriorConfig
from molgen.prior.model import DiTBlock, attention_inputs, timestep_embedding
from molgen.prior.scheduling import training_pair
from molgen.prior.training import LatentBatch, latent_batches
from molgen.training import TrainSettings as BaseTrainSettings
from molgen.training import ExportingModule, fit, start_run

__all__ = ["PredictorConfig", "PredictorModule", "PredictorTrainSettings", "PropertyPredictor", "prefix_pair", "train_predictor"]

READS = ("noisy", "prefix")
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
    # what it reads: "noisy" latents at a noise level t (guiding a set prior), or a "prefix": the first k tokens of
    # a graph exact and the rest unknown (zero), with t = 1 - k / nodes the share still unknown (guiding a discrete
    # autoregressive prior token by token)
    reads: str = "noisy"
    latent_mean: list[float] = field(default_factory=list)
    latent_std: list[float] = field(default_factory=list)
    property_names: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    # property-guidance strength a design request with targets gets when it does not set one (0: off unless asked;
    # molgen.design.Designer.generate, `molgen design generate`, the web page)
    default_scale: float = 0.0
    # a discrete prior under property guidance: graphs drawn per graph returned, one kept by the predicted error of the
    # whole graph (molgen.guidance.Resampling; 1: none) when the request does not say
    default_candidates: int = 1
    # ... and how the one is kept (molgen.guidance.SELECTIONS): "draw" in proportion to exp(-scale x error), "best"
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
        if self.reads not in READS:
            raise ValueError(f"reads must be one of {READS}, got {self.reads!r}")

    @classmethod
    def for_prior(cls, prior: PriorConfig, **shape) -> PredictorConfig:
        """A predictor for ``prior``'s latents and properties (reading prefixes for a discrete prior, which draws
        token by token; noisy latents otherwise); ``shape``: d_model, layers, ..."""
        reads = "prefix" if prior.architecture == "discrete" else "noisy"
        return cls(latent_dim=prior.latent_dim, max_nodes=prior.max_nodes, reads=reads, **shape, **{k: getattr(prior, k) for k in NORMALISATION})

    def check_fits(self, prior: PriorConfig) -> None:
        """Raise ValueError unless this predictor reads ``prior``'s latents and predicts its properties."""
        different = [k for k in ("latent_dim", "max_nodes", *NORMALISATION) if getattr(self, k) != getattr(prior, k)]
        if different:
            raise ValueError(
                f"the property predictor was trained for another prior (different {', '.join(different)}): "
                "train it again on this prior (molgen train predictor)"
            )


class PropertyPredictor(nn.Module):
    """(B, N, latent_dim) noisy normalised latents + (B,) noise level in [0, 1] + (B, N) mask -> (B, P)
    normalised properties of the clean molecule."""

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


@dataclass
class PredictorTrainSettings(BaseTrainSettings):
    """Training settings of a property predictor: the shared ones (steps, time, devices, ...)."""

    batch_size: int = 512
    lr: float = 1e-3


class NoisyLatentModule(ExportingModule):
    """Training and validation steps shared by the small networks trained on a prior's noisy latents (the property
    predictor, the discriminator): ``loss(batch, generator)`` gives the loss and named validation figures."""

    def loss(self, batch: LatentBatch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def training_step(self, batch: LatentBatch, batch_idx: int) -> Tensor:
        loss, _ = self.loss(batch)
        self.log("train/loss", loss, batch_size=len(batch[0]))
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: LatentBatch, batch_idx: int) -> None:
        generator = torch.Generator(device=batch[0].device).manual_seed(batch_idx)
        loss, figures = self.loss(batch, generator)
        self.log("val/loss", loss, batch_size=len(batch[0]), sync_dist=True, prog_bar=True)
        for name, value in figures.items():
            self.log(f"val/{name}", value, batch_size=len(batch[0]), sync_dist=True)


def prefix_pair(z: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """What a prefix predictor trains on: each graph's first k tokens (k drawn uniformly from 0..nodes) with the
    rest zeroed, and t = 1 - k / nodes, the share of its tokens still unknown."""
    nodes = mask.sum(1)  # (B,)
    k = (torch.rand(nodes.shape, device=z.device, generator=generator) * (nodes + 1)).floor().clamp(max=nodes)
    known = torch.arange(z.shape[1], device=z.device)[None, :] < k[:, None]  # (B, N)
    return z * known.unsqueeze(-1), 1 - k / nodes.clamp(min=1)


class PredictorModule(NoisyLatentModule):
    """Mean squared error of the normalised properties (over the known ones) at noise levels drawn as the
    prior's training draws them (or, reading prefixes, at prefix lengths drawn uniformly)."""

    def __init__(self, config: dict, prior_config: dict, lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 200, total_steps: int = 10_000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = PropertyPredictor(PredictorConfig(**config))
        self.prior_config = PriorConfig(**prior_config)

    def loss(self, batch: LatentBatch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean squared error over known properties, and its per-property parts (``mse_<name>``)."""
        z, mask, props, known = batch
        if self.model.config.reads == "prefix":
            x_t, t = prefix_pair(z, mask, generator)
        else:
            noise = torch.randn(z.shape, device=z.device, generator=generator) * mask.unsqueeze(-1)
            x_t, t, _ = training_pair(self.prior_config, z, noise, generator, "uniform")
        squared = (self.model(x_t, t, mask) - props).pow(2) * known
        per_property = squared.sum(0) / known.sum(0).clamp(min=1)
        parts = {f"mse_{name}": value for name, value in zip(self.model.config.property_names, per_property, strict=True)}
        return squared.sum() / known.sum().clamp(min=1), parts

    def export(self, directory: Path, training: dict) -> None:
        from molgen.checkpoint import save_predictor

        save_predictor(self.model, directory, training=training)


def train_predictor(
    train: LatentDataset,
    run_dir: str | Path,
    config: PredictorConfig,
    prior_config: PriorConfig,
    settings: PredictorTrainSettings,
    val: LatentDataset | None = None,
    resume: bool = True,
    export_extra: dict | None = None,
    init_from: PropertyPredictor | None = None,
) -> PredictorModule:
    """Train (or resume) a property predictor for ``prior_config``'s latents; exported to
    ``run_dir/model/predictor`` at every checkpoint. ``init_from``: a trained predictor of the same shape whose
    weights a new run starts from (fine-tuning, e.g. on the model's own decoded samples); a resumed run continues
    from its checkpoint instead."""
    config.check_fits(prior_config)
    if init_from is not None and init_from.config.to_dict() != config.to_dict():
        different = sorted(k for k, v in init_from.config.to_dict().items() if config.to_dict().get(k) != v)
        raise ValueError(f"init_from: its config differs from the run's in {', '.join(different)}; fine-tuning keeps the network's shape")
    run_dir = Path(run_dir)
    train, val = start_run(settings, train, val)
    module = PredictorModule(
        config.to_dict(), prior_config.to_dict(), lr=settings.lr, weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_steps, total_steps=settings.max_steps,
    )  # fmt: skip
    if init_from is not None:
        module.model.load_state_dict(init_from.state_dict())
    module.export_dir = run_dir / "model" / "predictor"
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__, **(export_extra or {})}
    data = latent_batches(train, val, prior_config, settings.batch_size)
    fit(module, data, run_dir, settings, len(train), resume)
    return module
