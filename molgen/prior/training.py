"""Training the prior with Lightning on cached latent tokens: flow-matching or diffusion loss, property
conditions dropped at random (classifier-free guidance), EMA weights, resumable runs.

Nothing here is needed to sample from a trained prior: see ``molgen.checkpoint`` and ``molgen.pipeline``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from molgen.latents import LatentDataset
from molgen.prior.autoregressive import build_prior
from molgen.prior.config import PriorConfig
from molgen.prior.model import LatentPrior
from molgen.prior.scheduling import clean_estimate, training_pair
from molgen.training import ExportingModule, IndexBatches, fit, load_into_grown, start_run
from molgen.training import TrainSettings as BaseTrainSettings

__all__ = [
    "AutoregressiveModule", "DiscreteAutoregressiveModule", "PriorModule", "PriorTrainSettings", "latent_batches", "load_growing", "prior_config_from_data",
    "token_vocabulary", "train_prior",
]

log = logging.getLogger(__name__)

LatentBatch = tuple[Tensor, Tensor, Tensor, Tensor]  # z (B, N, d) normalised, mask (B, N), properties (B, P), property mask (B, P)


def prior_config_from_data(latents: LatentDataset, max_nodes: int, **shape) -> PriorConfig:
    """A :class:`PriorConfig` whose normalisation statistics and size histogram come from ``latents`` (and, for a
    discrete prior, its vocabulary: every distinct token value in them, which must be a quantised tokenizer's)."""
    mean = latents.mean.astype(np.float64)
    if shape.get("architecture") == "discrete":
        shape["vocabulary"] = token_vocabulary(latents)
    props = latents.properties.astype(np.float64)
    known = ~np.isnan(props)
    if props.shape[1] and known.sum(0).min() < 2:
        missing = [n for n, k in zip(latents.property_names, known.sum(0)) if k < 2]
        raise ValueError(f"properties {missing} are known for fewer than 2 graphs; cannot normalise them")
    with np.errstate(invalid="ignore"):
        p_mean, p_std = np.nanmean(props, 0), np.nanstd(props, 0)
    counts = np.bincount(latents.num_nodes, minlength=max_nodes + 1)
    if len(counts) > max_nodes + 1:
        raise ValueError(f"a graph has {len(counts) - 1} nodes, more than max_nodes={max_nodes}")
    return PriorConfig(
        latent_dim=latents.latent_dim,
        max_nodes=max_nodes,
        latent_mean=[float(v) for v in mean.mean(0)],
        latent_std=[float(max(v, 1e-6)) for v in mean.std(0)],
        property_names=list(latents.property_names),
        property_mean=[float(v) for v in p_mean],
        property_std=[float(max(v, 1e-6)) for v in p_std],
        num_nodes_counts=[int(c) for c in counts],
        **shape,
    )


MAX_VOCABULARY = 65_536


def token_vocabulary(latents: LatentDataset) -> list[list[float]]:
    """The distinct token values of quantised latents (sorted), the vocabulary of a discrete prior; refuses
    continuous latents (a Gaussian tokenizer's), whose values hardly ever repeat."""
    codes = np.unique(latents.mean.astype(np.float32), axis=0)
    if len(codes) > min(MAX_VOCABULARY, max(len(latents.mean) // 4, 1)):
        raise ValueError(
            f"the latents hold {len(codes):,} distinct token values in {len(latents.mean):,} tokens: a discrete prior needs a quantised "
            "tokenizer's latents (train one with --bottleneck fsq)"
        )
    return [[float(v) for v in code] for code in codes]


class _LatentCollate:
    """Indices -> normalised dense latents and properties (NaN properties become absent)."""

    def __init__(self, data: LatentDataset, config: PriorConfig, sample: bool) -> None:
        self.data, self.sample = data, sample
        self.latent_mean, self.latent_std = torch.tensor(config.latent_mean), torch.tensor(config.latent_std)
        self.property_mean = torch.tensor(config.property_mean, dtype=torch.float32)
        self.property_std = torch.tensor(config.property_std, dtype=torch.float32)

    def __call__(self, indices: list[int]) -> LatentBatch:
        z, mask = self.data.dense(indices, sample=self.sample)  # (B, N, d), (B, N)
        z = (z - self.latent_mean) / self.latent_std * mask.unsqueeze(-1)
        props = torch.from_numpy(self.data.properties[np.asarray(indices)])  # (B, P), NaN = unknown
        known = ~torch.isnan(props)
        props = torch.where(known, (props - self.property_mean) / self.property_std, torch.zeros_like(props))
        return z, mask, props, known


def latent_batches(train: LatentDataset, val: LatentDataset, config: PriorConfig, batch_size: int, sample: bool = True) -> IndexBatches:
    """Training batches draw each token from its posterior (``sample``); validation uses the means."""
    return IndexBatches(_LatentCollate(train, config, sample), len(train), _LatentCollate(val, config, False), len(val), batch_size)


class PriorModule(ExportingModule):
    """Mean squared error of the prediction over real tokens; conditions dropped for guidance; EMA weights.

    ``drop_all``: probability of training a batch row unconditionally; ``drop_each``: probability of hiding
    each given property otherwise (so every subset of properties is seen).
    """

    def __init__(
        self,
        config: dict,
        lr: float = 5e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 500,
        total_steps: int = 100_000,
        ema_decay: float = 0.999,
        drop_all: float = 0.1,
        drop_each: float = 0.3,
        time_sampling: str = "uniform",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_prior(PriorConfig(**config))
        self.ema = self._new_ema()

    def _new_ema(self) -> AveragedModel:
        ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(self.hparams.ema_decay), use_buffers=True)
        ema.requires_grad_(False)  # not trained by gradients (and so invisible to DDP's gradient sync)
        return ema

    def reset_ema(self) -> None:
        """Restart the average from the current weights (after loading weights from elsewhere)."""
        self.ema = self._new_ema()

    def dropped(self, known: Tensor, generator: torch.Generator | None) -> Tensor:
        """The property mask with conditions hidden at random (classifier-free guidance training)."""
        rows = torch.rand(known.shape[0], 1, device=known.device, generator=generator) >= self.hparams.drop_all
        each = torch.rand(known.shape, device=known.device, generator=generator) >= self.hparams.drop_each
        return known & rows & each

    def loss(self, network: torch.nn.Module, batch: LatentBatch, drop: bool, generator: torch.Generator | None = None) -> Tensor:
        z, mask, props, known = batch
        config = self.model.config
        if drop:
            known = self.dropped(known, generator)
        noise = self.noise(z, generator) * mask.unsqueeze(-1)
        # Validation always draws times uniformly, so its loss stays comparable between runs.
        time_sampling = self.hparams.get("time_sampling", "uniform") if drop else "uniform"
        x_t, t, target = training_pair(config, z, noise, generator, time_sampling)
        target = self.regression_target(x_t, t, mask, props, known, target)
        x_self = self.self_estimate(network, x_t, t, mask, props, known, train=drop, generator=generator)
        pred = network(x_t, t, mask, props, known, x_self=x_self)  # (B, N, d)
        squared = (pred - target).pow(2) * mask.unsqueeze(-1)
        return squared.sum() / (mask.sum() * config.latent_dim)

    def self_estimate(
        self, network: torch.nn.Module, x_t: Tensor, t: Tensor, mask: Tensor, props: Tensor, known: Tensor, train: bool, generator: torch.Generator | None
    ) -> Tensor | None:
        """Self-conditioning (a prior with ``self_condition``): in half of the training batches the network first
        predicts without an estimate, and the clean latents that prediction implies (no gradient through it) are
        its input for the trained prediction; the other half trains the first step of sampling, without one.
        Validation always takes the two passes, as every sampling step after the first does."""
        if not self.model.config.self_condition:
            return None
        if train and torch.rand((), device=x_t.device, generator=generator) < 0.5:
            return None
        with torch.no_grad():
            first = network(x_t, t, mask, props, known)
            return clean_estimate(self.model.config, x_t, t, first).detach() * mask.unsqueeze(-1)

    def noise(self, z: Tensor, generator: torch.Generator | None) -> Tensor:
        """The noise that makes a training pair from clean latents ``z`` (B, N, d): standard normal."""
        return torch.randn(z.shape, device=z.device, generator=generator)

    def regression_target(self, x_t: Tensor, t: Tensor, mask: Tensor, props: Tensor, known: Tensor, target: Tensor) -> Tensor:
        """What the network learns to predict at ``x_t``: the objective's own target (a distilled student
        overrides this with its teacher's prediction)."""
        return target

    def training_step(self, batch: LatentBatch, batch_idx: int) -> Tensor:
        loss = self.loss(self.model, batch, drop=True)
        self.log("train/loss", loss, batch_size=len(batch[0]))
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=len(batch[0]))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.ema.update_parameters(self.model)

    def validation_step(self, batch: LatentBatch, batch_idx: int) -> None:
        # The same noise at every validation (seeded per batch), so losses are comparable across steps.
        generator = torch.Generator(device=batch[0].device).manual_seed(batch_idx)
        loss = self.loss(self.ema.module, batch, drop=False, generator=generator)
        self.log("val/loss", loss, batch_size=len(batch[0]), sync_dist=True, prog_bar=True)

    def export(self, directory: Path, training: dict) -> None:
        from molgen.checkpoint import save_prior

        save_prior(self.ema.module, directory, training={**training, "weights": "EMA"})


# What may differ between a trained prior and the prior that continues from it: sampling defaults, and the
# network may grow (more blocks, relative-position biases added) in ways that start out computing the same.
SAMPLING_DEFAULTS = ("default_sampler", "default_steps", "default_restarts", "restart_strength", "default_autoguidance", "default_temperature",
                    "restart_temperature", "autoguidance_interval", "default_top_p")
DATA_STATISTICS = ("latent_mean", "latent_std", "property_mean", "property_std", "num_nodes_counts")
"""Config fields measured on the training data: a prior fine-tuned on other latents (e.g. of a fine-tuned
tokenizer) takes them from its new data."""
GROWABLE = ("layers", "relative_positions", "self_condition")


class AutoregressiveModule(PriorModule):
    """Training of an :class:`~molgen.prior.autoregressive.AutoregressivePrior`: the causal transformer reads
    the clean tokens (teacher forcing, every position at once) and the token head regresses the flow velocity
    ``noise - token`` at ``draws_per_token`` random noise levels per token (the head is cheap, so several draws
    make better use of one transformer pass). Conditions are dropped as for the set prior; EMA weights."""

    def __init__(self, config: dict, draws_per_token: int = 4, **options) -> None:
        super().__init__(config, **options)
        if draws_per_token < 1:
            raise ValueError(f"draws_per_token={draws_per_token}: must be >= 1")

    def loss(self, network: torch.nn.Module, batch: LatentBatch, drop: bool, generator: torch.Generator | None = None) -> Tensor:
        z, mask, props, known = batch
        if drop:
            known = self.dropped(known, generator)
        context = network.context(z, mask.sum(1), props, known)  # (B, N, d_model)
        modulations = network.head.modulations(context[mask])  # rows: the M real tokens
        x0 = z[mask].expand(self.hparams.draws_per_token, -1, -1)  # (K, M, d_lat)
        t = torch.rand(x0.shape[:2], device=z.device, generator=generator)  # (K, M)
        noise = torch.randn(x0.shape, device=z.device, generator=generator)
        x_t = (1 - t[..., None]) * x0 + t[..., None] * noise
        return (network.head(x_t, t, modulations) - (noise - x0)).pow(2).mean()


class DiscreteAutoregressiveModule(PriorModule):
    """Training of a :class:`~molgen.prior.autoregressive.DiscreteAutoregressivePrior`: teacher forcing on the
    vocabulary ids of the tokens, cross entropy of the next token (nats per token; validation reports the
    same). Conditions are dropped as for the set prior; EMA weights."""

    def __init__(self, config: dict, **options) -> None:
        super().__init__(config, **options)
        config_ = self.model.config
        self.register_buffer("latent_mean", torch.tensor(config_.latent_mean), persistent=False)
        self.register_buffer("latent_std", torch.tensor(config_.latent_std), persistent=False)

    def loss(self, network: torch.nn.Module, batch: LatentBatch, drop: bool, generator: torch.Generator | None = None) -> Tensor:
        z, mask, props, known = batch
        if drop:
            known = self.dropped(known, generator)
        ids = network.ids(z * self.latent_std + self.latent_mean) * mask  # (B, N); padding reads id 0, never scored
        context = network.context(ids, mask.sum(1), props, known)  # (B, N, d_model)
        return F.cross_entropy(network.head(context[mask]).float(), ids[mask])  # loss in float32 (bf16-mixed gives bfloat16 logits)


def repeat_labelled(data: LatentDataset, share: float) -> LatentDataset:
    """``data`` with its rows that have properties repeated (a whole number of times, at least once) so that
    they make up about ``share`` of the rows: a partly labelled set (``--property-limit``) then shows the
    prior a condition in more of its training batches, with the unlabelled rows still all there."""
    if not 0 < share < 1:
        raise ValueError(f"labelled_share={share}: must be strictly between 0 and 1")
    labelled = np.flatnonzero(~np.isnan(data.properties).all(1))
    if len(labelled) == 0:
        raise ValueError("labelled_share: no training row has properties (compute some with --property-limit)")
    unlabelled = len(data) - len(labelled)
    repeats = max(1, round(share * unlabelled / ((1 - share) * len(labelled))))
    if repeats == 1:
        return data
    return data.subset(np.concatenate([np.arange(len(data)), np.tile(labelled, repeats - 1)]))


def load_growing(model: LatentPrior, source: LatentPrior) -> None:
    """Copy ``source``'s weights into ``model``, whose config may differ by sampling defaults, data statistics
    (:data:`DATA_STATISTICS`), more layers, or relative-position biases where ``source`` had none.

    The new parts start as no-ops (a new block's gates and a new offset bias are zero), so the grown prior
    predicts exactly what ``source`` did before it is trained further. Self-conditioning may be added too
    (its input projection starts at zero).
    """
    mine, theirs = model.config.to_dict(), source.config.to_dict()
    for config in (mine, theirs):
        for key in SAMPLING_DEFAULTS + DATA_STATISTICS:
            del config[key]
    layers, k, self_condition = (mine.pop(key) for key in GROWABLE)
    source_layers, source_k, source_self = (theirs.pop(key) for key in GROWABLE)
    if mine != theirs or layers < source_layers or (source_k and k != source_k) or (source_self and not self_condition):
        raise ValueError(
            "init_from: the prior's config differs from the one to train; only more layers "
            f"({source_layers} -> {layers}), relative-position biases added to a prior without them "
            f"({source_k} -> {k}) and self-conditioning added ({source_self} -> {self_condition}) are allowed"
        )
    new_blocks = tuple(f"blocks.{i}." for i in range(source_layers, layers))
    load_into_grown(
        model, source,
        lambda name: name.startswith(new_blocks) or (source_k == 0 and ".offset_bias." in name) or (not source_self and name.startswith("self_in.")),
    )  # fmt: skip


@dataclass
class PriorTrainSettings(BaseTrainSettings):
    """Training settings of a prior: the shared ones plus EMA and condition dropout."""

    batch_size: int = 512
    lr: float = 5e-4
    ema_decay: float = 0.999
    drop_all: float = 0.1
    drop_each: float = 0.3
    posterior_sample: bool = True  # train on posterior samples of each token rather than its mean
    time_sampling: str = "uniform"  # see molgen.prior.scheduling.TIME_SAMPLINGS
    draws_per_token: int = 4  # autoregressive priors: noise draws per token and training step (see AutoregressiveModule)
    labelled_share: float | None = None  # repeat the rows with properties until they are about this share of the training rows

    def module_options(self) -> dict:
        """The :class:`PriorModule` hyperparameters these settings give (optimisation, EMA, condition dropout)."""
        return {
            "lr": self.lr, "weight_decay": self.weight_decay, "warmup_steps": self.warmup_steps, "total_steps": self.max_steps,
            "ema_decay": self.ema_decay, "drop_all": self.drop_all, "drop_each": self.drop_each, "time_sampling": self.time_sampling,
        }  # fmt: skip


def train_prior(
    train: LatentDataset,
    run_dir: str | Path,
    config: PriorConfig,
    settings: PriorTrainSettings,
    val: LatentDataset | None = None,
    resume: bool = True,
    init_from: LatentPrior | None = None,
    export_extra: dict | None = None,
) -> PriorModule:
    """Train (or resume training of) a prior on latent tokens; exports EMA weights to ``run_dir/model/prior``."""
    run_dir = Path(run_dir)
    train, val = start_run(settings, train, val)
    if settings.labelled_share is not None:
        train = repeat_labelled(train, settings.labelled_share)
    if config.architecture == "autoregressive":
        module = AutoregressiveModule(config.to_dict(), draws_per_token=settings.draws_per_token, **settings.module_options())
    elif config.architecture == "discrete":
        module = DiscreteAutoregressiveModule(config.to_dict(), **settings.module_options())
    else:
        module = PriorModule(config.to_dict(), **settings.module_options())
    if init_from is not None:
        load_growing(module.model, init_from)
        module.reset_ema()
    module.export_dir = run_dir / "model" / "prior"
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__, **(export_extra or {})}
    batches = latent_batches(train, val, config, settings.batch_size, sample=settings.posterior_sample)
    fit(module, batches, run_dir, settings, len(train), resume)
    return module
