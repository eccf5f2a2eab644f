"""A discriminator on noisy latent tokens: the data's, or the prior's own samples? For discriminator guidance
(Kim et al. 2023, "Refining generative process with discriminator guidance in score-based diffusion models").

Where the prior is wrong, its samples' noised latents differ from the data's at the same noise level. A classifier
``d(x_t, t)`` trained to tell the data's noised latents (label 1) from the noised latents of the prior's own samples
(label 0) has, at its optimum, the logit ``log p_data(x_t) - log p_prior(x_t)``: its gradient is the correction that
turns the prior's score into the data's. While sampling, :class:`molgen.guidance.DiscriminatorGuidance` moves the
latents up that gradient before each step.

A discrete (autoregressive) prior never holds a noisy graph, so its discriminator reads finished graphs only (t = 0)
and is used after sampling instead (Azadi et al. 2019, "Discriminator rejection sampling"; sampling-importance-
resampling): :class:`molgen.guidance.Resampling` draws ``candidates`` graphs per graph asked for and keeps
one of them with probability proportional to ``exp(scale * logit)``, the estimated density ratio (``scale`` 1: the
data's distribution as the number of candidates grows).

The network is the property predictor's (a small transformer on noisy normalised latents and the noise level) with one
output, the logit. It is trained for one prior sampled one way: the fake half of its data is that prior's samples at
its default settings (drawn once and kept in the run directory, so a resumed run trains on the same ones). Like the
prior, it knows nothing of chemistry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.config import JsonConfig
from molgen.latents import LatentDataset
from molgen.prior.config import PriorConfig
from molgen.prior.predictor import NoisyLatentModule, PredictorConfig, PropertyPredictor
from molgen.prior.scheduling import training_pair
from molgen.prior.training import LatentBatch, latent_batches
from molgen.training import fit, start_run
from molgen.training import TrainSettings as BaseTrainSettings

__all__ = [
    "DiscriminatorConfig", "DiscriminatorModule", "DiscriminatorTrainSettings", "LatentDiscriminator", "generated_dataset", "real_and_fake",
    "train_discriminator",
]  # fmt: skip

LABEL = "real"  # the one column of the training table: 1 for the data's latents, 0 for the prior's samples


@dataclass
class DiscriminatorConfig(JsonConfig):
    """Shape of a :class:`LatentDiscriminator`, the latent normalisation of the prior it was trained for, and the
    guidance weight to sample with by default (0: off unless asked for)."""

    latent_dim: int
    max_nodes: int
    d_model: int = 64
    n_heads: int = 4
    layers: int = 2
    ff_mult: int = 2
    relative_positions: int = 0
    latent_mean: list[float] = field(default_factory=list)
    latent_std: list[float] = field(default_factory=list)
    default_scale: float = 0.0
    candidates: int = 2  # a discrete prior's resampling: graphs drawn per graph returned

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not self.default_scale >= 0:
            raise ValueError(f"default_scale={self.default_scale}: must be >= 0")
        if not isinstance(self.candidates, int) or self.candidates < 1:
            raise ValueError(f"candidates={self.candidates!r}: must be a whole number >= 1")

    @classmethod
    def for_prior(cls, prior: PriorConfig, **shape) -> DiscriminatorConfig:
        """A discriminator for ``prior``'s normalised latents; ``shape``: d_model, layers, ..."""
        return cls(latent_dim=prior.latent_dim, max_nodes=prior.max_nodes, latent_mean=list(prior.latent_mean), latent_std=list(prior.latent_std), **shape)

    def check_fits(self, prior: PriorConfig) -> None:
        """Raise ValueError unless this discriminator reads ``prior``'s latents."""
        different = [k for k in ("latent_dim", "max_nodes") if getattr(self, k) != getattr(prior, k)]
        different += [k for k in ("latent_mean", "latent_std") if not np.allclose(getattr(self, k), getattr(prior, k), atol=1e-6)]
        if different:
            raise ValueError(
                f"the discriminator was trained for another prior (different {', '.join(different)}): train it again "
                "on this model (molgen train discriminator)"
            )

    def network_config(self) -> PredictorConfig:
        """The property-predictor network it is built on: one output (the logit), identity normalisation."""
        return PredictorConfig(
            latent_dim=self.latent_dim, max_nodes=self.max_nodes, d_model=self.d_model, n_heads=self.n_heads, layers=self.layers,
            ff_mult=self.ff_mult, relative_positions=self.relative_positions, latent_mean=self.latent_mean, latent_std=self.latent_std,
            property_names=[LABEL], property_mean=[0.0], property_std=[1.0],
        )  # fmt: skip


class LatentDiscriminator(nn.Module):
    """(B, N, latent_dim) noisy normalised latents + (B,) noise level in [0, 1] + (B, N) mask -> (B,) logit of
    "these are the data's latents, not the prior's"."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = PropertyPredictor(config.network_config())

    def forward(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        return self.net(x, t, mask)[:, 0]


@dataclass
class DiscriminatorTrainSettings(BaseTrainSettings):
    """Training settings of a discriminator: the shared ones, and the range of noise scales (sampling temperatures)."""

    batch_size: int = 512
    lr: float = 1e-3
    warmup_steps: int = 200
    noise_scale_low: float = 0.6
    noise_scale_high: float = 1.0


class DiscriminatorModule(NoisyLatentModule):
    """Binary cross-entropy of real (1) against generated (0) latents, noised as the prior's training noises them,
    with the noise scaled by a factor in ``noise_scale`` (sampling runs at temperatures below 1)."""

    def __init__(
        self, config: dict, prior_config: dict, lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 200,
        total_steps: int = 10_000, noise_scale: tuple[float, float] = (0.6, 1.0),
    ) -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters()
        low, high = noise_scale
        if not 0 < low <= high:
            raise ValueError(f"noise_scale={noise_scale}: must be (low, high) with 0 < low <= high")
        self.model = LatentDiscriminator(DiscriminatorConfig(**config))
        self.prior_config = PriorConfig(**prior_config)

    def loss(self, batch: LatentBatch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean binary cross-entropy over the batch, and its accuracy. A discrete prior's tokens are never noisy:
        its discriminator reads finished graphs (t = 0) only."""
        z, mask, labels, _ = batch
        if self.prior_config.architecture == "discrete":
            x_t, t = z * mask.unsqueeze(-1), torch.zeros(z.shape[0], device=z.device)
        else:
            low, high = self.hparams.noise_scale
            scale = low + (high - low) * torch.rand(z.shape[0], 1, 1, device=z.device, generator=generator)
            noise = torch.randn(z.shape, device=z.device, generator=generator) * scale * mask.unsqueeze(-1)
            x_t, t, _ = training_pair(self.prior_config, z, noise, generator, "uniform")
        logit = self.model(x_t, t, mask)
        target = labels[:, 0]
        return F.binary_cross_entropy_with_logits(logit, target), {"accuracy": ((logit > 0).float() == target).float().mean()}

    def export(self, directory: Path, training: dict) -> None:
        from molgen.checkpoint import save_discriminator

        save_discriminator(self.model, directory, training=training)


def generated_dataset(z: Tensor, mask: Tensor, tokenizer: str = "") -> LatentDataset:
    """A latent table (no properties) of sampled (B, N, d) latents ``z`` with (B, N) ``mask`` (the tokenizer's
    space, as the pipeline returns them); ``tokenizer``: the fingerprint of the tokenizer they belong to."""
    mask = mask.bool()
    counts = mask.sum(1).cpu().numpy()
    return LatentDataset(
        mean=z[mask].detach().cpu().numpy().astype(np.float32), ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        properties=np.zeros((len(counts), 0), np.float32), property_names=[], tokenizer=tokenizer,
    )  # fmt: skip


def real_and_fake(real: LatentDataset, fake: LatentDataset, seed: int = 0) -> LatentDataset:
    """One table of as many random ``real`` graphs as there are ``fake`` ones (label 1) and the ``fake`` ones
    (label 0). Real tokens keep their posterior (training draws them as the prior's training did); fake tokens
    are exact (their log-variance is set very low)."""
    if len(fake) == 0:
        raise ValueError("no generated latents to train on")
    if len(real) < len(fake):
        raise ValueError(f"{len(real)} real graphs for {len(fake)} generated ones: need at least as many real ones")
    chosen = real.subset(np.random.default_rng(seed).permutation(len(real))[: len(fake)])
    if chosen.latent_dim != fake.latent_dim:
        raise ValueError(f"real latents have {chosen.latent_dim} dimensions, generated ones {fake.latent_dim}")
    logvar = None
    if chosen.logvar is not None:
        logvar = np.concatenate([chosen.logvar, np.full_like(fake.mean, -30.0, dtype=chosen.logvar.dtype)])
    return LatentDataset(
        mean=np.concatenate([chosen.mean, fake.mean.astype(chosen.mean.dtype)]),
        ptr=np.concatenate([chosen.ptr, chosen.ptr[-1] + fake.ptr[1:]]),
        properties=np.concatenate([np.ones((len(chosen), 1), np.float32), np.zeros((len(fake), 1), np.float32)]),
        property_names=[LABEL],
        logvar=logvar,
        tokenizer=real.tokenizer,
    )


def train_discriminator(
    data: LatentDataset,
    run_dir: str | Path,
    config: DiscriminatorConfig,
    prior_config: PriorConfig,
    settings: DiscriminatorTrainSettings,
    resume: bool = True,
    export_extra: dict | None = None,
) -> DiscriminatorModule:
    """Train (or resume) a discriminator on ``data`` (from :func:`real_and_fake`) for ``prior_config``'s latents;
    exported to ``run_dir/model/discriminator`` at every checkpoint."""
    config.check_fits(prior_config)
    if data.property_names != [LABEL]:
        raise ValueError(f"discriminator data must have the one column {LABEL!r} (see real_and_fake), got {data.property_names}")
    run_dir = Path(run_dir)
    train, val = start_run(settings, data)
    module = DiscriminatorModule(
        config.to_dict(), prior_config.to_dict(), lr=settings.lr, weight_decay=settings.weight_decay, warmup_steps=settings.warmup_steps,
        total_steps=settings.max_steps, noise_scale=(settings.noise_scale_low, settings.noise_scale_high),
    )  # fmt: skip
    module.export_dir = run_dir / "model" / "discriminator"
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__, **(export_extra or {})}
    # the label is the one "property"; identity normalisation keeps it 0 / 1
    labelled = replace(prior_config, property_names=[LABEL], property_mean=[0.0], property_std=[1.0])
    fit(module, latent_batches(train, val, labelled, settings.batch_size), run_dir, settings, len(train), resume)
    return module
