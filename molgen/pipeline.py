"""The user-facing object: load a model directory and turn SMILES into latent tokens and back.

No Lightning here: only the domain, the batcher and the tokenizer's ``nn.Module``.

>>> pipe = MolgenPipeline.from_pretrained("checkpoints/moses")      # doctest: +SKIP
>>> latents = pipe.encode(["CCO", "c1ccccc1"])                      # doctest: +SKIP
>>> [m.smiles for m in pipe.decode(latents)]                        # doctest: +SKIP
['CCO', 'c1ccccc1']
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from molgen.batch import batch_from_graphs, graphs_from_dense
from molgen.checkpoint import load_domain, load_tokenizer
from molgen.graph import DomainError
from molgen.tokenizer.model import GraphTokenizer

__all__ = ["Latents", "MolgenPipeline", "Reconstruction", "DecodedMolecule"]

log = logging.getLogger(__name__)


@dataclass
class Latents:
    """Latent tokens of a batch of graphs: ``z`` (B, N, latent_dim), zero-padded; ``mask`` (B, N)."""

    z: Tensor
    mask: Tensor

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        """(n_i, latent_dim) tokens of graph i."""
        return self.z[i, : int(self.mask[i].sum())]


@dataclass
class DecodedMolecule:
    """One decoded graph: canonical SMILES if valid, else None with the reason in ``error``."""

    smiles: str | None
    state: Literal["valid", "invalid"]
    error: str | None = None


@dataclass
class Reconstruction:
    """Input SMILES, its canonical form, what came back, and whether the two are identical."""

    input: str
    canonical: str | None
    reconstructed: str | None
    exact: bool
    error: str | None = None


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MolgenPipeline:
    """A graph domain + tokenizer (+ the prior, in a later version) loaded from ``checkpoints/<name>/``."""

    def __init__(self, domain, tokenizer: GraphTokenizer, device: str | torch.device = "cpu") -> None:
        self.domain = domain
        self.device = _resolve_device(device)
        self.tokenizer = tokenizer.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "auto") -> MolgenPipeline:
        """Load ``path/domain.json`` and ``path/tokenizer/``."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model directory")
        device = _resolve_device(device)
        return cls(load_domain(path / "domain.json"), load_tokenizer(path / "tokenizer", device=device), device)

    # --- SMILES -> latents ---------------------------------------------------------------------------

    def encode(self, smiles: Sequence[str], batch_size: int = 512) -> Latents:
        """Latent tokens of each SMILES (all must be valid and inside the vocabulary; errors name the SMILES)."""
        graphs = [self._graph(s) for s in smiles]
        chunks = [self._encode_graphs(graphs[k : k + batch_size]) for k in range(0, len(graphs), batch_size)]
        return _concat_latents(chunks)

    def _graph(self, smiles: str):
        graph = self.domain.to_graph(smiles)
        if graph.num_nodes > self.tokenizer.config.max_nodes:
            raise DomainError(
                f"SMILES {smiles!r}: {graph.num_nodes} heavy atoms, more than this tokenizer's "
                f"max_nodes={self.tokenizer.config.max_nodes}"
            )
        return graph

    def _encode_graphs(self, graphs) -> Latents:
        batch = batch_from_graphs(graphs).to(self.device)
        return Latents(self.tokenizer.encode(batch), batch.mask)

    # --- latents -> SMILES ---------------------------------------------------------------------------

    def decode(self, latents: Latents, batch_size: int = 512) -> list[DecodedMolecule]:
        """Decode latent tokens to molecules (argmax decoding); invalid graphs are kept, with the reason."""
        out: list[DecodedMolecule] = []
        for k in range(0, len(latents), batch_size):
            z = latents.z[k : k + batch_size].to(self.device)
            mask = latents.mask[k : k + batch_size].to(self.device)
            x, adj = self.tokenizer.decode(z, mask)
            for graph in graphs_from_dense(x, adj, mask):
                try:
                    out.append(DecodedMolecule(self.domain.from_graph(graph), "valid"))
                except ValueError as exc:
                    out.append(DecodedMolecule(None, "invalid", str(exc)))
        return out

    # --- round trip ----------------------------------------------------------------------------------

    def reconstruct(self, smiles: Sequence[str], batch_size: int = 512) -> Iterator[Reconstruction]:
        """SMILES -> latents -> SMILES for each input, yielded in order. Bad inputs are reported, not raised."""
        for k in range(0, len(smiles), batch_size):
            chunk = list(smiles[k : k + batch_size])
            graphs, canon, results = [], [], [None] * len(chunk)
            for n, s in enumerate(chunk):
                try:
                    graphs.append((n, self._graph(s)))
                    canon.append(self.domain.canonical(s))
                except ValueError as exc:  # invalid SMILES, unsupported or out-of-vocabulary atoms, too large
                    results[n] = Reconstruction(s, None, None, False, str(exc))
            if graphs:
                decoded = self.decode(self._encode_graphs([g for _, g in graphs]))
                for (n, _), c, d in zip(graphs, canon, decoded, strict=True):
                    results[n] = Reconstruction(chunk[n], c, d.smiles, d.smiles == c, d.error)
            yield from results


def _concat_latents(chunks: list[Latents]) -> Latents:
    if not chunks:
        raise ValueError("nothing to encode")
    n = max(c.z.shape[1] for c in chunks)
    z = torch.cat([torch.nn.functional.pad(c.z, (0, 0, 0, n - c.z.shape[1])) for c in chunks])
    mask = torch.cat([torch.nn.functional.pad(c.mask, (0, n - c.mask.shape[1])) for c in chunks])
    return Latents(z, mask)
