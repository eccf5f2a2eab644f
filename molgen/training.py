"""What training any molgen component shares: run settings, AdamW with warm-up + cosine, and the Lightning
Trainer (resumable, checkpointing every few minutes, scaling through Lightning's accelerators and strategies).

The component-specific parts (losses, metrics, exports) live beside each network: ``molgen.tokenizer.training``
and ``molgen.prior.training``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["ExportingModule", "IndexBatches", "SizeBuckets", "TrainSettings", "adamw_warmup_cosine", "fit", "load_into_grown", "start_run"]

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """How to run training: optimisation, schedule, checkpointing and Lightning Trainer options."""

    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 500
    max_steps: int = 100_000
    max_time: str | None = None  # "DD:HH:MM:SS", passed to the Trainer
    val_every: int = 2000  # steps between validations
    val_size: int = 2000
    checkpoint_minutes: float = 5.0
    checkpoint_steps: int | None = None  # checkpoint every this many steps instead of every checkpoint_minutes
    seed: int = 0
    accelerator: str = "auto"
    devices: str | int = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    threads: int | None = None
    progress: bool = True
    precision: str = "32-true"  # Lightning's: "bf16-mixed" runs the networks under bfloat16 autocast (fast on CPUs with AMX)


def start_run(settings: TrainSettings, train, val=None):
    """Seed everything, set torch's threads, and hold out ``settings.val_size`` items (at most 10%) for
    validation when no validation set is given. ``train``/``val`` are datasets with ``split(fraction, seed)``."""
    L.seed_everything(settings.seed, workers=True)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if val is None:
        train, val = train.split(min(settings.val_size / max(len(train), 1), 0.1), seed=settings.seed)
    return train, val


def load_into_grown(model: nn.Module, source: nn.Module | dict, is_new) -> None:
    """Copy ``source``'s weights (a module or its state dict) into ``model``, a grown copy of it;
    ``is_new(name)`` says which of ``model``'s weights may be missing from ``source`` (they keep their
    initialisation). Anything else that does not match is an error naming the weights."""
    state = source.state_dict() if isinstance(source, nn.Module) else source
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"init_from: weights the grown model does not have: {unexpected[:3]}")
    absent = [name for name in missing if not is_new(name)]
    if absent:
        raise ValueError(f"init_from: weights missing from the source: {absent[:3]}")


class _Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class SizeBuckets(Dataset):
    """Fixed batches of indices 0..n-1 in which items are of similar size, as fairseq's ``batch_by_size`` makes
    them: a seeded permutation is cut into windows of ``window`` batches, each window sorted by size and cut
    into batches. The loader shuffles the batches' order every epoch. A batch is padded to its largest item, so on
    data with a few large items (molecules of 50 atoms among ones of 25) this saves most of the padded work."""

    def __init__(self, sizes: np.ndarray, batch_size: int, seed: int = 0, window: int = 64) -> None:
        order = np.random.default_rng(seed).permutation(len(sizes))
        span = batch_size * window
        self.batches: list[list[int]] = []
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(sizes[chunk], kind="stable")]
            self.batches += [chunk[k : k + batch_size].tolist() for k in range(0, len(chunk), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> list[int]:
        return self.batches[i]


class IndexBatches(L.LightningDataModule):
    """Batches of indices 0..n-1 turned into tensors by a collate callable (one per split).

    Sampling indices rather than items keeps Lightning's distributed samplers working unchanged, and lets
    the collate densify a whole batch at once from compact arrays. With ``train_sizes`` (each item's size) the
    training batches are :class:`SizeBuckets` (items of similar size together); the loader, or Lightning's
    distributed sampler, then draws whole batches.
    """

    def __init__(
        self, train_collate, train_size: int, val_collate, val_size: int, batch_size: int, num_workers: int = 0,
        train_sizes: np.ndarray | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.train_collate, self.train_size = train_collate, train_size
        self.val_collate, self.val_size = val_collate, val_size
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_sizes, self.seed = train_sizes, seed

    def _loader(self, collate, size: int, shuffle: bool) -> DataLoader:
        return DataLoader(_Indices(size), batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        if self.train_sizes is not None:
            buckets = SizeBuckets(np.asarray(self.train_sizes), self.batch_size, self.seed)
            return DataLoader(buckets, batch_size=None, shuffle=True, collate_fn=self.train_collate, num_workers=self.num_workers)
        return self._loader(self.train_collate, self.train_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_collate, self.val_size, shuffle=False)


def adamw_warmup_cosine(model: nn.Module, lr: float, weight_decay: float, warmup_steps: int, total_steps: int) -> dict:
    """AdamW (no decay on biases, norms and nn.Embedding tables), linear warm-up then cosine decay to 5% of ``lr``;
    the dict ``LightningModule.configure_optimizers`` returns."""
    decay, no_decay = [], []
    embeddings = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or id(param) in embeddings else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, foreach=True
    )
    total = max(total_steps, warmup_steps + 1)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / (total - warmup_steps))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class ExportingModule(L.LightningModule):
    """What every molgen LightningModule shares: AdamW with warm-up + cosine over ``self.model`` (from the
    hparams ``lr``, ``weight_decay``, ``warmup_steps``, ``total_steps``), its training wall time kept across
    resumed runs, and at every checkpoint an export of the network (safetensors + JSON, :meth:`export`) to
    ``export_dir`` with a training record (``export_extra`` plus step, epoch, wall time and validation metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.export_dir: Path | None = None  # where on_save_checkpoint also writes safetensors + JSON
        self.export_extra: dict = {}
        self._seconds_before = 0.0  # training wall time of earlier runs of this model (restored on resume)
        self._started = time.time()

    def train_seconds(self) -> float:
        """Wall time spent training this model, over all resumed runs."""
        return self._seconds_before + (time.time() - self._started)

    def on_train_start(self) -> None:
        self._started = time.time()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._seconds_before = float(checkpoint.get("train_seconds", 0.0))

    def configure_optimizers(self):
        h = self.hparams
        return adamw_warmup_cosine(self.model, h.lr, h.weight_decay, h.warmup_steps, h.total_steps)  # trainable parameters only

    def training_record(self) -> dict:
        return {
            **self.export_extra,
            "global_step": int(self.global_step),
            "epoch": int(self.current_epoch),
            "train_seconds": round(self.train_seconds(), 1),
            "val": {k: round(float(v), 6) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")},
        }

    def export(self, directory: Path, training: dict) -> None:
        """Save the network for use (safetensors + JSON) with its training record."""
        raise NotImplementedError

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["train_seconds"] = self.train_seconds()
        if self.export_dir is not None and self.trainer.is_global_zero:
            self.export(self.export_dir, self.training_record())


def fit(module: L.LightningModule, datamodule: L.LightningDataModule, run_dir: str | Path, settings: TrainSettings, train_size: int, resume: bool = True) -> None:
    """Train ``module`` with a Trainer built from ``settings``; resumes from ``run_dir/checkpoints/last.ckpt``.

    A checkpoint is written every ``settings.checkpoint_steps`` steps, or else every ``settings.checkpoint_minutes``
    of training, and at the end; modules export their shippable weights in ``on_save_checkpoint``. A run killed at
    any moment resumes from its last checkpoint, losing at most one interval.
    """
    run_dir = Path(run_dir)
    if settings.checkpoint_steps is not None and settings.checkpoint_steps < 1:
        raise ValueError(f"checkpoint_steps={settings.checkpoint_steps}: must be >= 1")
    interval = (
        {"every_n_train_steps": settings.checkpoint_steps} if settings.checkpoint_steps else {"train_time_interval": timedelta(minutes=settings.checkpoint_minutes)}
    )
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0, **interval)
    val_every = min(settings.val_every, max(1, math.ceil(train_size / settings.batch_size)))
    trainer = L.Trainer(
        default_root_dir=run_dir,
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
        max_steps=settings.max_steps,
        max_time=settings.max_time,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        callbacks=[checkpoint],
        logger=CSVLogger(run_dir, name="logs"),
        enable_progress_bar=settings.progress,
        gradient_clip_val=1.0,
        precision=settings.precision,
        num_sanity_val_steps=0,
        log_every_n_steps=50,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    trainer.save_checkpoint(last)  # also exports via on_save_checkpoint
