"""Training the tokenizer with Lightning: losses, metrics, latent health, data loading, resumable runs.

Nothing here is needed to *use* a trained tokenizer: see ``molgen.checkpoint`` and ``molgen.pipeline``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.batch import GraphBatch, batch_from_dataset
from molgen.dataset import GraphDataset
from molgen.tokenizer.config import TokenizerConfig
from molgen.tokenizer.model import DecoderOutput, GraphTokenizer, Posterior
from molgen.training import ExportingModule, IndexBatches, fit, load_into_grown, start_run
from molgen.training import TrainSettings as BaseTrainSettings

__all__ = ["GraphDataModule", "TokenizerModule", "TrainSettings", "reconstruction_metrics", "train_tokenizer"]

log = logging.getLogger(__name__)


def reconstruction_metrics(batch: GraphBatch, x_hat: Tensor, adj_hat: Tensor) -> dict[str, Tensor]:
    """Per-batch node accuracy (all fields right), edge accuracy (over node pairs i < j), and the number of
    graphs reconstructed exactly. Returns counts so that they can be summed over batches."""
    mask = batch.mask
    node_ok = (x_hat == batch.x).all(-1) & mask  # (B, N)
    pair_mask = torch.triu(mask[:, :, None] & mask[:, None, :], diagonal=1)  # (B, N, N)
    edge_ok = (adj_hat == batch.adj) & pair_mask
    graph_ok = (node_ok.sum(1) == mask.sum(1)) & (edge_ok.sum((1, 2)) == pair_mask.sum((1, 2)))
    bond_mask = pair_mask & (batch.adj > 0)
    return {
        "nodes_correct": node_ok.sum(),
        "nodes": mask.sum(),
        "pairs_correct": edge_ok.sum(),
        "pairs": pair_mask.sum(),
        "bonds_correct": (edge_ok & bond_mask).sum(),
        "bonds": bond_mask.sum(),
        "graphs_exact": graph_ok.sum(),
        "graphs": torch.tensor(len(batch), device=mask.device),
    }


class TokenizerModule(ExportingModule):
    """Reconstruction loss (node and edge cross-entropy) + ``kl_weight`` x KL for the Gaussian bottleneck."""

    def __init__(
        self,
        config: dict,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        kl_weight: float = 1e-4,
        warmup_steps: int = 500,
        total_steps: int = 100_000,
        latent_noise: float = 0.0,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = GraphTokenizer(TokenizerConfig(**config))
        if freeze_encoder:
            # The latent tokens stay exactly as they were (a prior trained on them stays valid); only the decoder learns.
            self.model.encoder.requires_grad_(False)
            self.model.bottleneck.requires_grad_(False)
        self._val: dict[str, Tensor] = {}
        self._val_latents: list[Tensor] = []

    # --- losses ------------------------------------------------------------------------------------

    def losses(self, batch: GraphBatch, posterior: Posterior, out: DecoderOutput) -> dict[str, Tensor]:
        mask = batch.mask
        node_loss = sum(
            F.cross_entropy(logits[mask], batch.x[..., f][mask]) for f, logits in enumerate(out.node_logits)
        )
        b, i, j = out.pairs.unbind(-1)
        edge_loss = F.cross_entropy(out.edge_logits, batch.adj[b, i, j])
        losses = {"node_loss": node_loss, "edge_loss": edge_loss}
        total = node_loss + edge_loss
        if posterior.kl is not None:
            kl = posterior.kl[mask].sum(-1).mean()  # nats per node
            losses["kl"] = kl
            total = total + self.hparams.kl_weight * kl
        losses["loss"] = total
        return losses

    def training_step(self, batch: GraphBatch, batch_idx: int) -> Tensor:
        if self.hparams.freeze_encoder:
            with torch.no_grad():
                posterior = self.model.posterior(batch, sample=True)
            posterior.kl = None  # nothing to regularise: the latents are fixed
        else:
            posterior = self.model.posterior(batch, sample=True)
        z = posterior.z
        if self.hparams.latent_noise > 0:
            z = noisy_latents(z, batch.mask, self.hparams.latent_noise)
        out = self.model.decode_logits(z, batch.mask)
        losses = self.losses(batch, posterior, out)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(batch))
        self.log("loss", losses["loss"], prog_bar=True, logger=False, batch_size=len(batch))
        return losses["loss"]

    # --- validation: exactness and latent health -------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val = {}
        self._val_latents = []

    def validation_step(self, batch: GraphBatch, batch_idx: int) -> None:
        posterior = self.model.posterior(batch, sample=False)
        x_hat, adj_hat = self.model.decode(posterior.mean, batch.mask)
        for key, value in reconstruction_metrics(batch, x_hat, adj_hat).items():
            self._val[key] = self._val.get(key, 0) + value
        if self.hparams.latent_noise > 0:
            # Exactness when every token is off by noise of the largest trained scale (the same noise each time).
            generator = torch.Generator(device=batch.mask.device).manual_seed(batch_idx)
            z = noisy_latents(posterior.mean, batch.mask, self.hparams.latent_noise, generator, fixed=True)
            x_hat, adj_hat = self.model.decode(z, batch.mask)
            self._val["noisy_exact"] = self._val.get("noisy_exact", 0) + reconstruction_metrics(batch, x_hat, adj_hat)["graphs_exact"]
        out = self.model.decode_logits(posterior.mean, batch.mask)
        self.log("val/loss", self.losses(batch, posterior, out)["loss"], batch_size=len(batch), sync_dist=True)
        if posterior.indices is not None:
            self._val_latents.append(posterior.indices[batch.mask].cpu())
        else:
            self._val_latents.append(torch.cat([posterior.mean[batch.mask], posterior.kl[batch.mask]], -1).cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        totals = {k: self.all_gather(v).sum().float() if self.trainer.world_size > 1 else v.float() for k, v in self._val.items()}
        metrics = {
            "val/node_acc": totals["nodes_correct"] / totals["nodes"],
            "val/edge_acc": totals["pairs_correct"] / totals["pairs"],
            "val/bond_acc": totals["bonds_correct"] / totals["bonds"],
            "val/exact": totals["graphs_exact"] / totals["graphs"],
        }
        if "noisy_exact" in totals:
            metrics["val/exact_at_noise"] = totals["noisy_exact"] / totals["graphs"]
        metrics.update({f"val/{k}": torch.tensor(v) for k, v in latent_health(self.model, torch.cat(self._val_latents)).items() if not isinstance(v, list)})
        self.log_dict(metrics, prog_bar=False, sync_dist=False)
        self.log("exact", metrics["val/exact"], prog_bar=True, logger=False)

    # --- export ----------------------------------------------------------------------------------------

    def export(self, directory: Path, training: dict) -> None:
        from molgen.checkpoint import save_tokenizer

        save_tokenizer(self.model, directory, training=training)


def noisy_latents(z: Tensor, mask: Tensor, scale: float, generator: torch.Generator | None = None, fixed: bool = False) -> Tensor:
    """``z`` (B, N, d) plus isotropic Gaussian noise on real tokens: standard deviation ``scale`` for every graph
    if ``fixed``, else drawn per graph uniformly from [0, scale].

    Training the decoder on such latents makes it tolerate the errors of a prior's samples: it learns to
    decode the nearest consistent graph rather than trusting each token to within the posterior's tiny spread.
    """
    batch = z.shape[0]
    sigma = torch.full((batch,), scale, device=z.device) if fixed else torch.rand(batch, device=z.device, generator=generator) * scale
    noise = torch.randn(z.shape, device=z.device, generator=generator)  # (B, N, d)
    return z + sigma[:, None, None] * noise * mask.unsqueeze(-1)


def latent_health(model: GraphTokenizer, latents: Tensor) -> dict[str, float | list[float]]:
    """Posterior-collapse and codebook-collapse diagnostics over a set of nodes.

    Gaussian: ``latents`` is (M, 2 * latent_dim) = [posterior mean, KL per dim]; reports KL per dimension
    (nats), total KL per node, and active units (dims whose posterior mean varies across nodes with
    variance > 0.01, Burda et al. 2016). FSQ: ``latents`` is (M,) code indices; reports codebook
    utilisation (share of codes used) and perplexity (exp of the code-usage entropy).
    """
    if model.config.bottleneck == "fsq":
        size = model.bottleneck.codebook_size
        counts = torch.bincount(latents.long(), minlength=size).double()
        p = counts / counts.sum()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        return {
            "codebook_utilization": float((counts > 0).double().mean()),
            "codebook_perplexity": float(entropy.exp()),
            "codebook_size": float(size),
            "bits_per_node": float(math.log2(size)),
        }
    d = model.config.latent_dim
    mean, kl = latents[:, :d].double(), latents[:, d:].double()
    variance = mean.var(0) if len(mean) > 1 else torch.zeros(d, dtype=torch.double)
    return {
        "active_units": float((variance > 0.01).sum()),
        "kl_per_node": float(kl.sum(1).mean()),
        "kl_per_dim": [round(float(v), 4) for v in kl.mean(0)],
        "mean_variance_per_dim": [round(float(v), 4) for v in variance],
    }


class _Collate:
    """Indices -> dense batch of ``dataset`` (a class, not a lambda, so spawned workers can pickle it)."""

    def __init__(self, dataset: GraphDataset) -> None:
        self.dataset = dataset

    def __call__(self, indices: list[int]) -> GraphBatch:
        return batch_from_dataset(self.dataset, indices)


class GraphDataModule(IndexBatches):
    """Batches of a :class:`GraphDataset` of graphs of similar size (:class:`molgen.training.SizeBuckets`, in a
    shuffled order), densified in ``collate`` (so DDP samplers work unchanged)."""

    def __init__(self, train: GraphDataset, val: GraphDataset, batch_size: int = 256, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__(_Collate(train), len(train), _Collate(val), len(val), batch_size, num_workers, train.num_nodes, seed)


@dataclass
class TrainSettings(BaseTrainSettings):
    """Training settings of a tokenizer: the shared ones plus the weight of the KL term."""

    kl_weight: float = 1e-4
    latent_noise: float = 0.0  # decoder trained on latents plus noise of std up to this (see noisy_latents)
    freeze_encoder: bool = False  # train the decoder only (the latent tokens do not change)


def load_deepening(
    model: GraphTokenizer,
    source: GraphTokenizer,
    node_rows: list[list[int | None]] | None = None,
    edge_rows: list[int | None] | None = None,
) -> None:
    """Copy ``source``'s weights into ``model``, a grown copy of it: more decoder layers, more positions
    (``max_nodes``), more edge labels, other node labels and node fields appended after ``source``'s.

    The extra decoder layers start as identities (their attention and feed-forward outputs are zero), so the
    deepened tokenizer decodes exactly as ``source`` did before fine-tuning. ``edge_rows`` gives, for each of
    ``model``'s edge labels, ``source``'s label of the same value, or None for a new one (default: ``source``'s
    labels, new ones appended); a new edge label starts as the mean of the existing bond labels in the encoder's
    attention biases and in the decoder's edge logits (for aromatic bonds: between single and double).
    ``node_rows[f]`` does the same for ``source``'s node field ``f`` (default: unchanged): a new value starts as the
    mean of its field's embeddings and with the field's lowest logit bias. ``model``'s fields after ``source``'s
    (chirality added to a flat model) start with a zero embedding, so graphs encode as before, and a freshly
    initialised head. New positions start at random with the scale of the trained ones, and the encoder's
    embedding of a node's edges (``incident_edges``), when ``source`` lacks it, at zero. So a model trained on one
    chemistry starts training on a wider one where it stands.
    """
    mine, theirs = model.config.to_dict(), source.config.to_dict()
    extra = mine.pop("decoder_layers") - theirs.pop("decoder_layers")
    edges, source_edges = mine.pop("edge_vocab_size"), theirs.pop("edge_vocab_size")
    sizes, source_sizes = mine.pop("node_vocab_sizes"), theirs.pop("node_vocab_sizes")
    positions, source_positions = mine.pop("max_nodes"), theirs.pop("max_nodes")
    incident, source_incident = mine.pop("incident_edges"), theirs.pop("incident_edges")
    if edge_rows is None:
        edge_rows = [*range(source_edges), *[None] * (edges - source_edges)]
    if node_rows is None:
        node_rows = [list(range(k)) for k in source_sizes]
    shapes_fit = len(edge_rows) == edges and len(node_rows) == len(source_sizes) <= len(sizes) and all(
        len(rows) == k for rows, k in zip(node_rows, sizes, strict=False)
    )
    if mine != theirs or extra < 0 or positions < source_positions or not shapes_fit or source_incident > incident:
        raise ValueError(
            "init_from: the tokenizer's config differs from the one to train (only more decoder layers, more "
            "positions, more edge labels and node labels mapped by value are allowed)"
        )
    state = source.state_dict()
    for name, weights in state.items():
        if _is_edge_label_weight(name):
            state[name] = _mapped_rows(weights, edge_rows, weights[1:].mean(0))  # label 0: no bond
        elif name.startswith(("encoder.node_embeddings.", "decoder.node_heads.")):
            fill = weights.min() if name.endswith(".bias") else weights.mean(0)
            state[name] = _mapped_rows(weights, node_rows[int(name.split(".")[2])], fill)
        elif name in ("encoder.position.weight", "decoder.position.weight", "decoder.distance.weight"):
            noise = torch.randn(positions - source_positions, weights.shape[1], generator=torch.Generator().manual_seed(0))
            state[name] = torch.cat([weights, noise * weights.std()])
    new_fields = tuple(f"{part}.{f}." for f in range(len(source_sizes), len(sizes)) for part in ("encoder.node_embeddings", "decoder.node_heads"))
    new = tuple(f"decoder.layers.{k}." for k in range(len(model.decoder.layers) - extra, len(model.decoder.layers)))
    load_into_grown(model, state, lambda name: name.startswith((*new, *new_fields, "encoder.incident_edges.")))
    for layer in model.decoder.layers[len(model.decoder.layers) - extra :]:
        for projection in (layer.self_attn.out_proj, layer.linear2):
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)
    with torch.no_grad():
        for embedding in model.encoder.node_embeddings[len(source_sizes) :]:
            embedding.weight.zero_()
        if incident and not source_incident:
            model.encoder.incident_edges.weight.zero_()


def _mapped_rows(weights: Tensor, rows: list[int | None], fill: Tensor) -> Tensor:
    """Row ``k`` of the result is ``weights[rows[k]]``, or ``fill`` where ``rows[k]`` is None."""
    return torch.stack([weights[r] if r is not None else fill for r in rows]) if rows else weights[:0]


def _is_edge_label_weight(name: str) -> bool:
    """The weights with one row per edge label: the encoder's attention biases and the decoder's edge logits."""
    return name.startswith(("encoder.edge_bias.", "encoder.incident_edges.", "decoder.edge_mlp.4."))


def train_tokenizer(
    train: GraphDataset,
    run_dir: str | Path,
    config: TokenizerConfig,
    settings: TrainSettings,
    val: GraphDataset | None = None,
    domain_config: dict | None = None,
    resume: bool = True,
    init_from: GraphTokenizer | None = None,
    init_from_info: dict | None = None,
    label_maps: dict | None = None,
) -> TokenizerModule:
    """Train (or resume training of) a tokenizer.

    Lightning checkpoints (for resuming) go to ``run_dir/checkpoints``; at every checkpoint and at the end the
    model is also exported as a model directory, ``run_dir/model`` (``domain.json`` + ``tokenizer/``), which
    :class:`molgen.pipeline.MolgenPipeline` loads and which can be copied to ``checkpoints/<name>``.
    ``init_from`` starts from a trained tokenizer's weights (fresh optimiser and schedule) instead of at random;
    ``config`` may grow it as :func:`load_deepening` allows, ``label_maps`` (its ``node_rows`` and ``edge_rows``) saying
    which of its labels each of ``config``'s stands for; ``init_from_info`` (e.g. its training.json) is recorded in the export.
    """
    run_dir = Path(run_dir)
    train, val = start_run(settings, train, val)
    module = TokenizerModule(
        config.to_dict(),
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        kl_weight=settings.kl_weight,
        warmup_steps=settings.warmup_steps,
        total_steps=settings.max_steps,
        latent_noise=settings.latent_noise,
        freeze_encoder=settings.freeze_encoder,
    )
    if init_from is not None:
        load_deepening(module.model, init_from, **(label_maps or {}))
    module.export_dir = run_dir / "model" / "tokenizer"
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__}
    if init_from_info is not None:
        module.export_extra["initialized_from"] = init_from_info
    if domain_config is not None:
        module.export_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "model" / "domain.json").write_text(json.dumps(domain_config, indent=1))
    fit(module, GraphDataModule(train, val, settings.batch_size, seed=settings.seed), run_dir, settings, len(train), resume)
    return module
