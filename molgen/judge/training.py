"""Training the judge: mean squared error of the normalised properties of labelled graphs (data, and the
model's own decoded samples), with Lightning like every molgen component."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from molgen.batch import GraphBatch, batch_from_dataset
from molgen.dataset import GraphDataset
from molgen.judge.model import GraphJudge, JudgeConfig
from molgen.training import TrainSettings as BaseTrainSettings
from molgen.training import ExportingModule, IndexBatches, fit, start_run

__all__ = ["JudgeModule", "JudgeTrainSettings", "LabelledGraphs", "train_judge"]

JudgeBatch = tuple[GraphBatch, Tensor, Tensor]  # graphs, (B, P) normalised properties (0 where unknown), (B, P) known


@dataclass
class LabelledGraphs:
    """Graphs with a (M, P) table of their properties (NaN where unknown), columns named ``names``."""

    graphs: GraphDataset
    table: np.ndarray
    names: list[str]

    def __post_init__(self) -> None:
        if self.table.shape != (len(self.graphs), len(self.names)):
            raise ValueError(f"property table of shape {self.table.shape} for {len(self.graphs)} graphs x {len(self.names)} properties")

    def __len__(self) -> int:
        return len(self.graphs)

    def subset(self, indices: np.ndarray) -> LabelledGraphs:
        return LabelledGraphs(self.graphs.subset(indices), self.table[indices], self.names)

    def split(self, fraction: float, seed: int = 0) -> tuple[LabelledGraphs, LabelledGraphs]:
        order = np.random.default_rng(seed).permutation(len(self))
        cut = int(round(len(self) * fraction))
        return self.subset(np.sort(order[cut:])), self.subset(np.sort(order[:cut]))

    @classmethod
    def concat(cls, parts: list[LabelledGraphs]) -> LabelledGraphs:
        """One set of all ``parts``' graphs (same vocabulary and property names), in order."""
        names = parts[0].names
        if any(p.names != names for p in parts):
            raise ValueError("labelled graph sets with different property columns cannot be joined")
        graphs = [p.graphs[i] for p in parts for i in range(len(p))]
        items = [item for p in parts for item in p.graphs.items]
        return cls(GraphDataset.from_graphs(graphs, items, parts[0].graphs.vocab), np.concatenate([p.table for p in parts]), names)


class _Collate:
    """Indices -> (dense graphs, normalised properties, known mask); a class so spawned workers can pickle it."""

    def __init__(self, data: LabelledGraphs, columns: list[int], mean: np.ndarray, std: np.ndarray) -> None:
        self.data, self.columns, self.mean, self.std = data, columns, mean, std

    def __call__(self, indices: list[int]) -> JudgeBatch:
        values = self.data.table[np.asarray(indices)][:, self.columns]  # (B, P)
        known = ~np.isnan(values)
        normalised = np.where(known, (values - self.mean) / self.std, 0.0)
        return batch_from_dataset(self.data.graphs, indices), torch.as_tensor(normalised, dtype=torch.float32), torch.as_tensor(known, dtype=torch.float32)


@dataclass
class JudgeTrainSettings(BaseTrainSettings):
    """Training settings of a judge: the shared ones (steps, time, devices, ...)."""

    batch_size: int = 256
    lr: float = 1e-3
    warmup_steps: int = 300


class JudgeModule(ExportingModule):
    """Mean squared error of the normalised properties over the known ones; validation also reports each property's
    mean absolute error in its own units (``mae_<name>``)."""

    def __init__(self, config: dict, lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 300, total_steps: int = 10_000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = GraphJudge(JudgeConfig(**config))

    def loss(self, batch: JudgeBatch) -> tuple[Tensor, Tensor]:
        graphs, props, known = batch
        error = self.model(graphs.x, graphs.adj, graphs.mask) - props  # (B, P)
        return (error.pow(2) * known).sum() / known.sum().clamp(min=1), error

    def training_step(self, batch: JudgeBatch, batch_idx: int) -> Tensor:
        loss, _ = self.loss(batch)
        self.log("train/loss", loss, batch_size=len(batch[1]))
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=len(batch[1]))
        return loss

    def validation_step(self, batch: JudgeBatch, batch_idx: int) -> None:
        loss, error = self.loss(batch)
        known = batch[2]
        self.log("val/loss", loss, batch_size=len(known), sync_dist=True, prog_bar=True)
        std = torch.as_tensor(self.model.config.property_std, device=error.device)
        mae = (error.abs() * known).sum(0) / known.sum(0).clamp(min=1) * std  # (P,) in each property's units
        for name, value in zip(self.model.config.property_names, mae, strict=True):
            self.log(f"val/mae_{name}", value, batch_size=len(known), sync_dist=True)

    def export(self, directory: Path, training: dict) -> None:
        from molgen.checkpoint import save_judge

        save_judge(self.model, directory, training=training)


def train_judge(
    train: LabelledGraphs, run_dir: str | Path, config: JudgeConfig, settings: JudgeTrainSettings, val: LabelledGraphs | None = None,
    resume: bool = True, export_extra: dict | None = None,
) -> JudgeModule:  # fmt: skip
    """Train (or resume) a judge on labelled graphs; exported to ``run_dir/model/judge`` at every checkpoint. The
    table's columns are matched to the config's properties by name (each must be there)."""
    missing = [n for n in config.property_names if n not in train.names]
    if missing:
        raise ValueError(f"the judge predicts {config.property_names}; the training table has no column for {missing}")
    run_dir = Path(run_dir)
    train, val = start_run(settings, train, val)
    module = JudgeModule(config.to_dict(), lr=settings.lr, weight_decay=settings.weight_decay, warmup_steps=settings.warmup_steps, total_steps=settings.max_steps)
    module.export_dir = run_dir / "model" / "judge"
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__, **(export_extra or {})}
    columns = [train.names.index(n) for n in config.property_names]
    mean, std = np.asarray(config.property_mean), np.asarray(config.property_std)
    data = IndexBatches(_Collate(train, columns, mean, std), len(train), _Collate(val, columns, mean, std), len(val), settings.batch_size)
    fit(module, data, run_dir, settings, len(train), resume)
    return module
