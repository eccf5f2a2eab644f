"""Canonical SMILES -> ChemNet activations -> Fréchet ChemNet Distance (FCD), as fcd_torch computes it.

ChemNet (Preuer et al. 2018) ships, ported to PyTorch, inside the ``fcd_torch`` wheel; nothing is downloaded.
Only its weights and layer builder are used here. Its ``FCD`` class is replaced because it leans on APIs that
current numpy / scipy deprecate (``np.row_stack``, ``scipy.linalg.sqrtm(disp=...)``), holds every activation
in memory, and recomputes a sample's activations for each reference set. What is kept exactly: the character
encoding (``fcd_torch.utils.get_one_hot`` with 350 positions, scaled by 1/35), the network, float32
activations, and the covariance with denominator n - 1.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["CHEMNET_LENGTH", "FCDStats", "chemnet_activations", "chemnet_tokens", "frechet_distance"]

log = logging.getLogger(__name__)

CHEMNET_LENGTH = 350  # characters per SMILES, padded (fcd_torch's SmilesDataset)
CHEMNET_VOCAB = (
    "C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")", "+", "-", "1",
    "2", "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c", "n", "o", "s", "X", ".",
)  # fmt: skip
_INDEX = {symbol: i for i, symbol in enumerate(CHEMNET_VOCAB)}
_UNKNOWN, _END = _INDEX["X"], _INDEX["."]
_SECOND_LETTERS = frozenset("ril")  # 'Cl', 'Br', 'Si' (and any other letter followed by r, i or l) are one symbol


def chemnet_tokens(smiles: str, length: int = CHEMNET_LENGTH) -> np.ndarray:
    """ChemNet's symbol indices (L,) for ``smiles``, L <= ``length``, ending with the end symbol '.'.

    Same reading as ``fcd_torch.utils.get_one_hot``: a character followed by r, i or l is read with it as one
    symbol, symbols outside the vocabulary become 'X', and reading stops at the first '.' (so only the first
    fragment of a multi-fragment SMILES is seen) or after ``length - 1`` symbols.
    """
    if not smiles:
        raise ValueError("ChemNet cannot read an empty SMILES")
    text, tokens, src = smiles + ".", [], 0
    while True:
        width = 2 if text[src + 1] in _SECOND_LETTERS else 1
        tokens.append(_INDEX.get(text[src : src + width], _UNKNOWN))
        src += width
        if text[src] == "." or len(tokens) == length - 1:
            tokens.append(_END)
            return np.asarray(tokens, dtype=np.int64)


def _one_hot(tokens: Sequence[np.ndarray], length: int = CHEMNET_LENGTH) -> Tensor:
    """ChemNet's input (B, 35, length) float32: one-hot symbols scaled by 1/35, zeros after the end symbol."""
    x = np.zeros((len(tokens), length, len(CHEMNET_VOCAB)), dtype=np.float32)  # (B, length, 35)
    rows = np.repeat(np.arange(len(tokens)), [len(t) for t in tokens])
    positions = np.concatenate([np.arange(len(t)) for t in tokens])
    x[rows, positions, np.concatenate(tokens)] = np.float32(1.0 / len(CHEMNET_VOCAB))
    return torch.from_numpy(x).transpose(1, 2)  # (B, 35, length)


def _weights_path() -> Path:
    import fcd_torch

    path = Path(fcd_torch.__file__).resolve().parent / "ChemNet_v0.13_pretrained.pt"
    if not path.exists():
        raise FileNotFoundError(f"ChemNet weights not found at {path}; reinstall fcd_torch (pip install fcd_torch==1.0.7)")
    return path


@lru_cache(maxsize=1)
def _chemnet_cpu() -> nn.Module:
    from fcd_torch.utils import load_imported_model

    config = torch.load(_weights_path(), map_location="cpu", weights_only=True)
    return load_imported_model(config).eval()


@lru_cache(maxsize=4)
def _chemnet(device: str) -> nn.Module:
    """ChemNet on ``device``: (B, 35, 350) one-hot SMILES -> (B, 512) activations of its last LSTM."""
    model = _chemnet_cpu()
    return model if device == "cpu" else copy.deepcopy(model).to(device)


def chemnet_activations(smiles: Sequence[str], device: str | torch.device = "cpu", batch_size: int = 512) -> np.ndarray:
    """ChemNet activations (N, 512) float32 of canonical SMILES strings (fcd_torch canonicalises its input first)."""
    model, device = _chemnet(str(torch.device(device))), torch.device(device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(smiles), batch_size):
            x = _one_hot([chemnet_tokens(s) for s in smiles[start : start + batch_size]]).to(device)  # (B, 35, 350)
            out.append(model(x).float().cpu().numpy())  # (B, 512)
    return np.concatenate(out) if out else np.zeros((0, 512), dtype=np.float32)


@dataclass(frozen=True)
class FCDStats:
    """Mean (512,) and covariance (512, 512) of ChemNet activations over ``n`` molecules (float64)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: float

    @classmethod
    def from_smiles(
        cls,
        smiles: Sequence[str],
        weights: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 512,
        what: str = "molecules",
    ) -> FCDStats | None:
        """Statistics of canonical SMILES, each counted ``weights[i]`` times (default once); None under 2 molecules.

        Activations are accumulated batch by batch (sums shifted by the first batch's mean, in float64), so
        memory does not grow with the number of molecules.
        """
        w = np.ones(len(smiles)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(smiles),):
            raise ValueError(f"weights must have one entry per SMILES ({len(smiles)}), got shape {w.shape}")
        n = float(w.sum())
        if n < 2:
            log.warning("FCD needs at least 2 molecules, got %g: FCD is NaN", n)
            return None
        shift = s1 = s2 = None
        start, n_batches = time.time(), -(-len(smiles) // batch_size)
        for b, first in enumerate(range(0, len(smiles), batch_size), 1):
            acts = chemnet_activations(smiles[first : first + batch_size], device, batch_size).astype(np.float64)
            wb = w[first : first + batch_size]  # (B,)
            if shift is None:
                shift = np.average(acts, axis=0, weights=wb) if wb.sum() > 0 else acts.mean(0)  # (512,)
                s1, s2 = np.zeros_like(shift), np.zeros((len(shift), len(shift)))
            centred = acts - shift  # (B, 512)
            s1 += wb @ centred
            s2 += (centred * wb[:, None]).T @ centred
            if b % max(1, n_batches // 10) == 0 or b == n_batches:
                done = min(first + batch_size, len(smiles))
                log.info("ChemNet on %s: %d/%d (%.0f s)", what, done, len(smiles), time.time() - start)
        mean_centred = s1 / n
        sigma = (s2 - n * np.outer(mean_centred, mean_centred)) / (n - 1)
        return cls(mu=shift + mean_centred, sigma=(sigma + sigma.T) / 2, n=n)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues -> 0)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: FCDStats, b: FCDStats) -> float:
    """Fréchet distance between the Gaussians N(a.mu, a.sigma) and N(b.mu, b.sigma).

    d = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)). The last trace is computed as
    tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric matrix with the same eigenvalues as S_a S_b, which avoids the
    complex round-off of a general matrix square root.
    """
    if a.mu.shape != b.mu.shape or a.sigma.shape != b.sigma.shape:
        raise ValueError(f"FCD statistics differ in size: {a.mu.shape} vs {b.mu.shape}")
    diff = a.mu - b.mu
    root_a = _sqrt_psd(a.sigma)
    middle = root_a @ b.sigma @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_sqrt)
