"""Latent tokens of a whole dataset, encoded once and cached: what the prior trains on.

A latent dataset holds, for M graphs in CSR form, each node's posterior mean (and log-variance for a
Gaussian tokenizer) and a table of M x P properties of the graphs' items (NaN where unknown: properties
may be computed for a subset only, since the prior's conditioning has a presence mask per property).

Directory layout::

    latents.npz  mean (T, d) float16, logvar (T, d) float16 (absent for FSQ), ptr (M+1,) int64,
                 properties (M, P) float32
    meta.json    property names, latent size, the tokenizer it was encoded with (a hash of its weights), and a
                 hash of the items (SMILES) in order, so a property table is only reused for the same molecules
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from molgen.batch import batch_from_dataset
from molgen.dataset import GraphDataset, local_offsets
from molgen.tokenizer.model import GraphTokenizer

__all__ = ["LatentDataset", "compute_property_table", "encode_dataset", "generated_dataset", "items_fingerprint", "tokenizer_fingerprint"]

log = logging.getLogger(__name__)


@dataclass
class LatentDataset:
    """Per-node latent tokens of M graphs (CSR) and a property table (M, P) with NaN for unknown values."""

    mean: np.ndarray  # (T, d)
    ptr: np.ndarray  # (M+1,)
    properties: np.ndarray  # (M, P)
    property_names: list[str]
    logvar: np.ndarray | None = None  # (T, d), Gaussian tokenizers only
    tokenizer: str = ""  # fingerprint of the tokenizer that produced the latents
    items: str = ""  # fingerprint of the graphs' items, in order ("" when unknown)

    def __len__(self) -> int:
        return len(self.ptr) - 1

    @property
    def latent_dim(self) -> int:
        return int(self.mean.shape[1])

    @property
    def num_nodes(self) -> np.ndarray:
        """(M,) number of latent tokens (nodes) of each graph."""
        return np.diff(self.ptr)

    def subset(self, indices: np.ndarray) -> LatentDataset:
        idx = np.asarray(indices, dtype=np.int64)
        counts = self.ptr[idx + 1] - self.ptr[idx]
        rows = np.repeat(self.ptr[idx], counts) + local_offsets(counts)
        return LatentDataset(
            mean=self.mean[rows],
            ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            properties=self.properties[idx],
            property_names=list(self.property_names),
            logvar=None if self.logvar is None else self.logvar[rows],
            tokenizer=self.tokenizer,
        )  # a subset holds other items: its items fingerprint is unknown

    def split(self, fraction: float, seed: int = 0) -> tuple[LatentDataset, LatentDataset]:
        """Shuffle with ``seed`` and split off ``fraction`` (at least one graph) as a second set."""
        order = np.random.default_rng(seed).permutation(len(self))
        n_second = max(1, int(round(fraction * len(self))))
        return self.subset(order[n_second:]), self.subset(order[:n_second])

    def dense(self, indices: Sequence[int] | np.ndarray, sample: bool = False, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, d) float32 latents (zero-padded) and (B, N) mask of the chosen graphs.

        ``sample`` draws each token from its Gaussian posterior (mean + std * noise) instead of the mean.
        """
        idx = np.asarray(indices, dtype=np.int64)
        counts = self.ptr[idx + 1] - self.ptr[idx]
        rows = np.repeat(self.ptr[idx], counts) + local_offsets(counts)
        z = torch.from_numpy(self.mean[rows].astype(np.float32))  # (T_b, d)
        if sample and self.logvar is not None:
            std = torch.from_numpy(self.logvar[rows].astype(np.float32)).mul(0.5).exp()
            z = z + std * torch.randn(z.shape, generator=generator)
        n = int(counts.max()) if len(counts) else 0
        graph = torch.from_numpy(np.repeat(np.arange(len(idx)), counts))
        position = torch.from_numpy(local_offsets(counts))
        out = torch.zeros(len(idx), n, self.latent_dim)
        out[graph, position] = z
        mask = torch.zeros(len(idx), n, dtype=torch.bool)
        mask[graph, position] = True
        return out, mask

    @classmethod
    def concat(cls, parts: Sequence[LatentDataset]) -> LatentDataset:
        """One table of ``parts``' graphs in order (same tokenizer, latent size and property names; posteriors kept
        only when every part has them)."""
        if not parts:
            raise ValueError("no latent tables to join")
        first = parts[0]
        for k, part in enumerate(parts[1:], 1):
            if (part.tokenizer, part.latent_dim, part.property_names) != (first.tokenizer, first.latent_dim, first.property_names):
                raise ValueError(f"latent table {k} differs from table 0 in its tokenizer, latent size or property names; only alike tables join")
        offsets = np.cumsum([0] + [int(part.ptr[-1]) for part in parts[:-1]])
        logvar = None if any(part.logvar is None for part in parts) else np.concatenate([part.logvar for part in parts])
        return cls(
            mean=np.concatenate([part.mean for part in parts]),
            ptr=np.concatenate([[0]] + [part.ptr[1:] + offset for part, offset in zip(parts, offsets, strict=True)]).astype(np.int64),
            properties=np.concatenate([part.properties for part in parts]),
            property_names=list(first.property_names), logvar=logvar, tokenizer=first.tokenizer,
        )  # fmt: skip

    # --- storage -----------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "ptr": self.ptr, "properties": self.properties}
        if self.logvar is not None:
            arrays["logvar"] = self.logvar
        np.savez(directory / "latents.npz", **arrays)
        meta = {"property_names": self.property_names, "latent_dim": self.latent_dim, "graphs": len(self), "tokenizer": self.tokenizer, "items": self.items}
        (directory / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> LatentDataset:
        directory = Path(directory)
        if not (directory / "latents.npz").exists():
            raise FileNotFoundError(f"{directory}: not a latent dataset (no latents.npz)")
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        with np.load(directory / "latents.npz", allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in arrays.files}
        return cls(property_names=list(meta["property_names"]), tokenizer=meta.get("tokenizer", ""), items=meta.get("items", ""), **data)


def tokenizer_fingerprint(tokenizer: GraphTokenizer) -> str:
    """A short hash of the weights that make the latent tokens (encoder and bottleneck): a latent cache made by
    another encoder is never reused, while one whose decoder alone was fine-tuned keeps its cache and prior."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tokenizer.state_dict().items()):
        if name.startswith("decoder."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def items_fingerprint(items: Sequence[str]) -> str:
    """A short hash of the items (e.g. SMILES) in order: two latent caches with the same one hold the same molecules."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


@torch.no_grad()
def encode_dataset(tokenizer: GraphTokenizer, dataset: GraphDataset, batch_size: int = 1024, device: str | torch.device = "cpu", progress=None) -> LatentDataset:
    """Encode every graph of ``dataset`` (graphs of similar size batched together; order is kept).

    The property table is left empty (all NaN); fill it with :func:`compute_property_table`.
    ``progress`` is an optional callable taking the number of graphs just encoded (e.g. a tqdm ``update``).
    """
    tokenizer = tokenizer.to(device).eval()
    counts = dataset.num_nodes
    order = np.argsort(counts, kind="stable")  # similar sizes together: little padding
    d = tokenizer.config.latent_dim
    mean = np.zeros((int(counts.sum()), d), dtype=np.float16)
    gaussian = tokenizer.config.bottleneck == "gaussian"
    logvar = np.zeros_like(mean) if gaussian else None
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        batch = batch_from_dataset(dataset, idx).to(device)
        posterior = tokenizer.posterior(batch)
        rows = np.repeat(dataset.node_ptr[idx], counts[idx]) + local_offsets(counts[idx])
        mean[rows] = posterior.mean[batch.mask].cpu().numpy()
        if gaussian:
            logvar[rows] = posterior.logvar[batch.mask].cpu().numpy()
        if progress is not None:
            progress(len(idx))
    return LatentDataset(
        mean=mean,
        ptr=dataset.node_ptr.astype(np.int64).copy(),
        properties=np.full((len(dataset), 0), np.nan, dtype=np.float32),
        property_names=[],
        logvar=logvar,
        tokenizer=tokenizer_fingerprint(tokenizer),
        items=items_fingerprint(dataset.items),
    )


def generated_dataset(z: torch.Tensor, mask: torch.Tensor, tokenizer: str = "") -> LatentDataset:
    """A latent table (no properties) of sampled (B, N, d) latents ``z`` with (B, N) ``mask`` (the tokenizer's
    space, as the pipeline returns them); ``tokenizer``: the fingerprint of the tokenizer they belong to."""
    mask = mask.bool()
    counts = mask.sum(1).cpu().numpy()  # (B,) tokens per graph
    return LatentDataset(
        mean=z[mask].detach().cpu().numpy().astype(np.float32),  # (T, d)
        ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        properties=np.zeros((len(counts), 0), np.float32),
        property_names=[],
        tokenizer=tokenizer,
    )


def _property_chunk(args: tuple[object, list[str], list[str]]) -> np.ndarray:
    domain, items, names = args
    out = np.full((len(items), len(names)), np.nan, dtype=np.float32)
    for r, item in enumerate(items):
        try:
            values = domain.properties(item, names)
        except ValueError:  # an item the domain cannot read stays unknown (NaN)
            continue
        out[r] = [values[n] for n in names]
    return out


def compute_property_table(
    domain,
    items: Sequence[str],
    names: Sequence[str],
    limit: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress=None,
    existing: np.ndarray | None = None,
) -> np.ndarray:
    """(M, P) float32 table of ``domain.properties`` of each item; NaN where not computed or not computable.

    ``limit`` computes them for a random subset of that many items only (properties such as QED and SA cost
    about 1 ms per molecule; the prior's condition mask makes a partly labelled set fine to train on).
    ``existing``: an earlier (M, P) table of the same items; its labelled rows are kept as they are and count
    toward ``limit``, and only rows it left unknown are computed (to label more of a cached set).
    """
    names = list(names)
    table = np.full((len(items), len(names)), np.nan, dtype=np.float32)
    candidates = np.arange(len(items))
    if existing is not None:
        if existing.shape != table.shape:
            raise ValueError(f"existing property table has shape {existing.shape}; expected {table.shape} ({len(items)} items x {names})")
        labelled = ~np.isnan(existing).all(1)
        table[labelled] = existing[labelled]
        candidates = np.flatnonzero(~labelled)
        limit = None if limit is None else max(limit - int(labelled.sum()), 0)
    chosen = candidates if limit is None or limit >= len(candidates) else np.sort(np.random.default_rng(seed).choice(candidates, limit, replace=False))
    chunk = 2000
    jobs = [(domain, [items[i] for i in chosen[k : k + chunk]], names) for k in range(0, len(chosen), chunk)]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(jobs) <= 1:
        results = map(_property_chunk, jobs)
    else:
        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap(_property_chunk, jobs)
    for k, values in zip(range(0, len(chosen), chunk), results):
        table[chosen[k : k + len(values)]] = values
        if progress is not None:
            progress(len(values))
    if workers > 1 and len(jobs) > 1:
        pool.close()
        pool.join()
    return table
