"""The records that travel between the stages: latent tokens of a batch of graphs, a decoded item, a round trip.

Items are the domain's: canonical SMILES for molecules, :class:`~molgen.scenes.scene.Scene` objects for scenes. The
field keeps the name ``smiles`` (what the molecule path has always read); ``item`` is the same value by its general
name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DecodedMolecule", "Latents", "Reconstruction"]


@dataclass
class DecodedMolecule:
    """One decoded graph: the domain's canonical item if valid (canonical SMILES; a scene for scenes), else None with
    the reason in ``error``.

    ``state`` is ``valid``, ``invalid`` or (in a sample) ``duplicate``: a valid item already produced
    earlier in the same call. ``properties`` are filled for valid and duplicate items when asked for.
    """

    smiles: str | Any | None
    state: Literal["valid", "invalid", "duplicate"]
    error: str | None = None
    properties: dict[str, float] = field(default_factory=dict)

    @property
    def item(self) -> str | Any | None:
        """The decoded item whatever the domain (the same value as ``smiles``)."""
        return self.smiles


@dataclass
class Latents:
    """Latent tokens of a batch of graphs: ``z`` (B, N, latent_dim), zero-padded; ``mask`` (B, N). ``decoded``: their
    molecules, when the sampler already decoded them (to choose among candidates), with the ``decoding`` used."""

    z: Tensor
    mask: Tensor
    decoded: list[DecodedMolecule] | None = field(default=None, repr=False, compare=False)
    decoding: str | None = None

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        """(n_i, latent_dim) tokens of graph i."""
        return self.z[i, : int(self.mask[i].sum())]

    def rows(self, start: int, count: int) -> Latents:
        """Graphs ``start .. start + count``, or the single graph of a batch of one (broadcast)."""
        if len(self) == 1:
            return self
        return Latents(self.z[start : start + count], self.mask[start : start + count])

    @staticmethod
    def concat(chunks: list[Latents]) -> Latents:
        """One batch of several, padded to the longest; decoded molecules are kept when every chunk has them alike."""
        if not chunks:
            raise ValueError("nothing to concatenate: no latents")
        n = max(c.z.shape[1] for c in chunks)
        z = torch.cat([F.pad(c.z, (0, 0, 0, n - c.z.shape[1])) for c in chunks])
        mask = torch.cat([F.pad(c.mask, (0, n - c.mask.shape[1])) for c in chunks])
        decodings = {c.decoding for c in chunks}
        if len(decodings) == 1 and None not in decodings and all(c.decoded is not None for c in chunks):
            return Latents(z, mask, [m for c in chunks for m in c.decoded], decodings.pop())
        return Latents(z, mask)


@dataclass
class Reconstruction:
    """Input item (SMILES, or a scene), its canonical form, what came back, and whether the two are identical."""

    input: str | Any
    canonical: str | Any | None
    reconstructed: str | Any | None
    exact: bool
    error: str | None = None
