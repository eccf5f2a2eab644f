"""Training the prior and its property predictor with Lightning on cached latent tokens: cross entropy of the next
code (discrete prior), of the masked codes (masked prior) or the flow-matching loss (set prior), property conditions
dropped at random (classifier-free guidance), EMA weights, resumable runs.

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
from molgen.prior import build_prior
from molgen.prior.config import CODE_ARCHITECTURES, PriorConfig
from molgen.prior.masked import mask_tokens
from molgen.prior.predictor import PredictorConfig, PropertyPredictor
from molgen.prior.scheduling import training_pair
from molgen.training import ExportingModule, IndexBatches, fit, load_into_grown, start_run
from molgen.training import TrainSettings as BaseTrainSettings

__all__ = [
    "MODULES", "DiscreteAutoregressiveModule", "MaskedDiffusionModule", "PredictorModule", "PredictorTrainSettings", "PriorModule",
    "PriorTrainSettings", "latent_batches", "load_growing", "prefix_pair", "prior_config_from_data", "token_vocabulary", "train_predictor",
    "train_prior",
]  # fmt: skip

log = logging.getLogger(__name__)

LatentBatch = tuple[Tensor, Tensor, Tensor, Tensor]  # z (B, N, d) normalised, mask (B, N), properties (B, P), property mask (B, P)


def prior_config_from_data(latents: LatentDataset, max_nodes: int, **shape) -> PriorConfig:
    """A :class:`PriorConfig` whose normalisation statistics and size histogram come from ``latents`` (and, for a
    discrete or masked prior, its vocabulary: every distinct token value in them, which must be a quantised tokenizer's)."""
    mean = latents.mean.astype(np.float64)
    if shape.get("architecture") in CODE_ARCHITECTURES:
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
    """The distinct token values of quantised latents (sorted), the vocabulary of a discrete or masked prior; refuses
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


def latent_batches(
    train: LatentDataset, val: LatentDataset, config: PriorConfig, batch_size: int, sample: bool = True, seed: int = 0
) -> IndexBatches:
    """Training batches draw each token from its posterior (``sample``); validation uses the means. Training batches
    hold graphs of similar size (:class:`~molgen.training.SizeBuckets`): a batch is padded to its largest graph."""
    return IndexBatches(
        _LatentCollate(train, config, sample), len(train), _LatentCollate(val, config, False), len(val), batch_size,
        train_sizes=train.num_nodes, seed=seed,
    )  # fmt: skip


class PriorModule(ExportingModule):
    """The set prior's flow-matching loss: mean squared error of the predicted velocity over real tokens; conditions
    dropped for guidance; EMA weights.

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
        noise = torch.randn(z.shape, device=z.device, generator=generator) * mask.unsqueeze(-1)
        # Validation always draws times uniformly, so its loss stays comparable between runs.
        time_sampling = self.hparams.get("time_sampling", "uniform") if drop else "uniform"
        x_t, t, target = training_pair(z, noise, generator, time_sampling)
        pred = network(x_t, t, mask, props, known)  # (B, N, d)
        squared = (pred - target).pow(2) * mask.unsqueeze(-1)
        return squared.sum() / (mask.sum() * config.latent_dim)

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
SAMPLING_DEFAULTS = ("default_sampler", "default_steps", "default_temperature", "default_top_p", "default_repairs")
DATA_STATISTICS = ("latent_mean", "latent_std", "property_mean", "property_std", "num_nodes_counts")
"""Config fields measured on the training data: a prior fine-tuned on other latents (e.g. of a fine-tuned
tokenizer) takes them from its new data."""
GROWABLE = ("layers", "relative_positions")


class _CodeModule(PriorModule):
    """Training of a prior over vocabulary ids: the batch's normalised latents read back as ids."""

    def __init__(self, config: dict, **options) -> None:
        super().__init__(config, **options)
        config_ = self.model.config
        self.register_buffer("latent_mean", torch.tensor(config_.latent_mean), persistent=False)
        self.register_buffer("latent_std", torch.tensor(config_.latent_std), persistent=False)

    def token_ids(self, network: torch.nn.Module, z: Tensor, mask: Tensor) -> Tensor:
        """(B, N, d) normalised latents -> (B, N) vocabulary ids; padding reads id 0 (never scored)."""
        return network.ids(z * self.latent_std + self.latent_mean) * mask


class DiscreteAutoregressiveModule(_CodeModule):
    """Training of a :class:`~molgen.prior.discrete.DiscreteAutoregressivePrior`: teacher forcing on the
    vocabulary ids of the tokens, cross entropy of the next token (nats per token; validation reports the
    same). Conditions are dropped as for the set prior; EMA weights."""

    def loss(self, network: torch.nn.Module, batch: LatentBatch, drop: bool, generator: torch.Generator | None = None) -> Tensor:
        z, mask, props, known = batch
        if drop:
            known = self.dropped(known, generator)
        ids = self.token_ids(network, z, mask)  # (B, N)
        context = network.context(ids, mask.sum(1), props, known)  # (B, N, d_model)
        return F.cross_entropy(network.head(context[mask]).float(), ids[mask])  # loss in float32 (bf16-mixed gives bfloat16 logits)


class MaskedDiffusionModule(_CodeModule):
    """Training of a :class:`~molgen.prior.masked.MaskedDiffusionPrior`: each graph's tokens hidden behind
    ``[MASK]`` at a share drawn from the cosine schedule (:func:`~molgen.prior.masked.mask_tokens`), cross entropy of
    the hidden codes given the rest (nats per masked token; validation reports the same, on masks seeded per batch).
    Conditions are dropped as for the other priors; EMA weights.

    The loss is the plain mean over the masked tokens of the batch, as MaskGIT and aMUSEd train, not MDLM's
    weighted ELBO (linear schedule, each graph's masked tokens weighted 1/t): that weighting makes the loss a bound
    on the log-likelihood, which nothing here reads, at the price of weights that grow without bound as t -> 0 (a
    graph with one hidden token counts most) and so of a noisier gradient; and the sampler is MaskGIT's
    confidence-ordered unmasking (``AmusedScheduler``), whose cosine schedule this training draws mask shares from.
    """

    def loss(self, network: torch.nn.Module, batch: LatentBatch, drop: bool, generator: torch.Generator | None = None) -> Tensor:
        z, mask, props, known = batch
        if drop:
            known = self.dropped(known, generator)
        mask = mask.bool()
        ids = self.token_ids(network, z, mask)  # (B, N)
        hidden = mask_tokens(mask, generator)  # (B, N), real tokens only
        logits = network(ids.masked_fill(hidden, network.mask_id), mask, props, known)  # (B, N, V)
        return F.cross_entropy(logits[hidden].float(), ids[hidden])  # loss in float32 (bf16-mixed gives bfloat16 logits)


MODULES: dict[str, type[PriorModule]] = {"discrete": DiscreteAutoregressiveModule, "set": PriorModule, "masked": MaskedDiffusionModule}
"""``config.architecture`` -> the LightningModule that trains it."""


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


def load_growing(model: torch.nn.Module, source: torch.nn.Module) -> None:
    """Copy ``source``'s weights into ``model``, whose config may differ by sampling defaults, data statistics
    (:data:`DATA_STATISTICS`), more layers, or relative-position biases where ``source`` had none.

    The new parts start as no-ops (a new block's gates and a new offset bias are zero), so the grown prior
    predicts exactly what ``source`` did before it is trained further.
    """
    mine, theirs = model.config.to_dict(), source.config.to_dict()
    for config in (mine, theirs):
        for key in SAMPLING_DEFAULTS + DATA_STATISTICS:
            del config[key]
    if mine["architecture"] != theirs["architecture"]:
        if not {mine["architecture"], theirs["architecture"]} <= set(CODE_ARCHITECTURES):
            raise ValueError(f"init_from: a {theirs['architecture']} prior cannot start a {mine['architecture']} one (only discrete <-> masked)")
        mine.pop("architecture"), theirs.pop("architecture")
        if mine != theirs:
            different = sorted(k for k in mine if mine[k] != theirs.get(k))
            raise ValueError(f"init_from: another prior family starts from the same shape; the configs differ in {', '.join(different)}")
        load_across_families(model, source)
        return
    layers, k = (mine.pop(key) for key in GROWABLE)
    source_layers, source_k = (theirs.pop(key) for key in GROWABLE)
    if mine != theirs or layers < source_layers or (source_k and k != source_k):
        raise ValueError(
            "init_from: the prior's config differs from the one to train; only more layers "
            f"({source_layers} -> {layers}) and relative-position biases added to a prior without them ({source_k} -> {k}) are allowed"
        )
    new_blocks = tuple(f"blocks.{i}." for i in range(source_layers, layers))
    load_into_grown(model, source, lambda name: name.startswith(new_blocks) or (source_k == 0 and ".offset_bias." in name))


def load_across_families(model: torch.nn.Module, source: torch.nn.Module) -> None:
    """Start a prior of one code family (discrete autoregressive or masked diffusion) from a trained prior of the other
    with the same shape and vocabulary: the shared trunk (size and condition inputs, positions, blocks, output norm),
    the code head and the code embeddings carry over; what only one family has starts fresh (the masked prior's
    ``[MASK]`` embedding, the autoregressive prior's start vector). The attention learned causally is used
    bidirectionally (or the other way round) from then on, so the new prior needs training; it starts from what the
    codes and conditions mean rather than from noise."""
    own = model.state_dict()
    state = {}
    for name, weight in source.state_dict().items():
        if name not in own:
            continue
        if name == "token_in.weight":  # codes first in both; the masked prior has one more row, [MASK]
            rows = min(weight.shape[0], own[name].shape[0])
            weight = torch.cat([weight[:rows], own[name][rows:]])
        if weight.shape == own[name].shape:
            state[name] = weight
    missing = sorted(set(own) - set(state))
    if any(name != "start" for name in missing):
        raise ValueError(f"init_from: weights the source prior lacks: {missing[:3]}")
    model.load_state_dict(state, strict=False)


@dataclass
class PriorTrainSettings(BaseTrainSettings):
    """Training settings of a prior: the shared ones plus EMA and condition dropout."""

    batch_size: int = 512
    lr: float = 5e-4
    ema_decay: float = 0.999
    drop_all: float = 0.1
    drop_each: float = 0.3
    posterior_sample: bool = True  # train on posterior samples of each token rather than its mean
    time_sampling: str = "uniform"  # set prior: see molgen.prior.scheduling.TIME_SAMPLINGS
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
    init_from: torch.nn.Module | None = None,
    export_extra: dict | None = None,
) -> PriorModule:
    """Train (or resume training of) a prior on latent tokens; exports EMA weights to ``run_dir/model/prior``."""
    run_dir = Path(run_dir)
    train, val = start_run(settings, train, val)
    if settings.labelled_share is not None:
        train = repeat_labelled(train, settings.labelled_share)
    module = MODULES[config.architecture](config.to_dict(), **settings.module_options())
    if init_from is not None:
        load_growing(module.model, init_from)
        module.reset_ema()
    module.export_dir = run_dir / "model" / "prior"
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__, **(export_extra or {})}
    batches = latent_batches(train, val, config, settings.batch_size, sample=settings.posterior_sample, seed=settings.seed)
    fit(module, batches, run_dir, settings, len(train), resume)
    return module


@dataclass
class PredictorTrainSettings(BaseTrainSettings):
    """Training settings of a property predictor: the shared ones (steps, time, devices, ...)."""

    batch_size: int = 512
    lr: float = 1e-3


def prefix_pair(z: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """What a prefix predictor trains on: each graph's first k tokens (k drawn uniformly from 0..nodes) with the
    rest zeroed, and t = 1 - k / nodes, the share of its tokens still unknown."""
    nodes = mask.sum(1)  # (B,)
    k = (torch.rand(nodes.shape, device=z.device, generator=generator) * (nodes + 1)).floor().clamp(max=nodes)
    known = torch.arange(z.shape[1], device=z.device)[None, :] < k[:, None]  # (B, N)
    return z * known.unsqueeze(-1), 1 - k / nodes.clamp(min=1)


class PredictorModule(ExportingModule):
    """Mean squared error of the normalised properties (over the known ones) at prefix lengths drawn uniformly."""

    def __init__(self, config: dict, prior_config: dict, lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 200, total_steps: int = 10_000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = PropertyPredictor(PredictorConfig(**config))
        self.prior_config = PriorConfig(**prior_config)

    def loss(self, batch: LatentBatch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean squared error over known properties, and its per-property parts (``mse_<name>``)."""
        z, mask, props, known = batch
        x_t, t = prefix_pair(z, mask, generator)
        squared = (self.model(x_t, t, mask) - props).pow(2) * known
        per_property = squared.sum(0) / known.sum(0).clamp(min=1)
        parts = {f"mse_{name}": value for name, value in zip(self.model.config.property_names, per_property, strict=True)}
        return squared.sum() / known.sum().clamp(min=1), parts

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
    data = latent_batches(train, val, prior_config, settings.batch_size, seed=settings.seed)
    fit(module, data, run_dir, settings, len(train), resume)
    return module
