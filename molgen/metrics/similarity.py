"""Morgan bit matrices -> Tanimoto aggregates: MOSES' SNN and internal diversity.

Tanimoto similarities are computed in blocks from matrix products of 0/1 matrices: the intersection counts are
exact (on CPU int8 x int8 -> int32 or float32, whichever this CPU computes faster, measured once; float16 on GPU,
where counts up to 2048 are exact), the union is
``|a| + |b| - |a & b|``, and only the block's aggregate (max, or row sums) is kept. As in MOSES, two empty
fingerprints have similarity 1.

Each molecule may carry a weight (how many times it occurs in the sample), so a sample with duplicates is
scored as MOSES scores the full list while each distinct fingerprint is compared only once.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

__all__ = ["internal_diversity", "max_tanimoto", "nearest_neighbour_similarity", "tanimoto_matrix", "unpack_bits"]

log = logging.getLogger(__name__)

GEN_CHUNK = 2048
REF_CHUNK = 16384


def unpack_bits(packed: np.ndarray) -> np.ndarray:
    """(N, n_bits / 8) uint8 packed fingerprints (``np.packbits``) -> (N, n_bits) uint8 of 0/1."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        raise ValueError(f"packed fingerprints must be a 2-d array (N, bytes), got shape {packed.shape}")
    return np.unpackbits(packed, axis=1)


@lru_cache(maxsize=1)
def _int_mm_available() -> bool:
    """Whether this torch build multiplies int8 matrices on CPU (``torch._int_mm``), and gets it right."""
    try:
        x = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.int8)
        return bool(torch.equal(torch._int_mm(x, x.T.contiguous()), torch.tensor([[2, 2], [2, 3]], dtype=torch.int32)))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


@lru_cache(maxsize=1)
def _int8_is_faster() -> bool:
    """Whether ``torch._int_mm`` beats a float32 product on this CPU for a block of the size used here. Some CPUs
    run int8 products many times slower than float32 ones (no VNNI kernels), others faster; both are exact, so the
    choice changes speed only."""
    if not _int_mm_available():
        return False
    x = torch.randint(0, 2, (256, 2048), dtype=torch.int8)
    y_t = torch.randint(0, 2, (2048, 1024), dtype=torch.int8)
    x_f, y_f = x.float(), y_t.float()

    def best_of(product, repeats: int = 3) -> float:
        product()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            times.append(time.perf_counter() - start)
        return min(times)

    faster = best_of(lambda: torch._int_mm(x, y_t)) < best_of(lambda: x_f @ y_f)
    log.debug("Tanimoto intersections on CPU: %s products", "int8" if faster else "float32")
    return faster


def _to_device(bits: np.ndarray, device: torch.device) -> Tensor:
    """(N, n_bits) 0/1 array -> int8 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(bits, dtype=np.uint8).view(np.int8)).to(device)


def _intersections(x: Tensor, y_t: Tensor) -> Tensor:
    """|x_i & y_j| for 0/1 int8 matrices x (G, K) and y_t (K, R), as float32 (G, R)."""
    if x.device.type == "cpu":
        if _int8_is_faster():
            return torch._int_mm(x, y_t).float()  # (G, R)
        return x.float() @ y_t.float()  # (G, R); integers below 2**24 are exact in float32
    return (x.half() @ y_t.half()).float()  # (G, R); integers <= 2048 are exact in float16


def _tanimoto_block(x: Tensor, y_t: Tensor, x_count: Tensor, y_count: Tensor) -> Tensor:
    """Tanimoto similarities (G, R) of x (G, K) against y_t (K, R); x_count (G,), y_count (R,) are popcounts."""
    sim = _intersections(x, y_t)  # (G, R) intersections
    union = x_count[:, None] + y_count[None, :]  # (G, R)
    union.sub_(sim)
    sim.div_(union)
    if bool((x_count == 0).any()) and bool((y_count == 0).any()):
        sim.nan_to_num_(nan=1.0)  # 0/0: two empty fingerprints are identical, as in MOSES
    return sim


def tanimoto_matrix(a: np.ndarray, b: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """All Tanimoto similarities (A, B) between 0/1 fingerprint rows a (A, n_bits) and b (B, n_bits). Small inputs."""
    device = torch.device(device)
    x, y = _to_device(a, device), _to_device(b, device)
    sim = _tanimoto_block(x, y.T.contiguous(), x.sum(1, dtype=torch.float32), y.sum(1, dtype=torch.float32))
    return sim.cpu().numpy().astype(np.float64)


def max_tanimoto(
    gen_bits: np.ndarray,
    ref_bits: np.ndarray,
    device: str | torch.device = "cpu",
    gen_chunk: int = GEN_CHUNK,
    ref_chunk: int = REF_CHUNK,
) -> np.ndarray:
    """For each row of gen_bits (G, n_bits), its highest Tanimoto similarity to any row of ref_bits (R, n_bits).

    Returns (G,) float64. Both inputs are 0/1 arrays with the same number of bits.
    """
    if gen_bits.ndim != 2 or ref_bits.ndim != 2 or gen_bits.shape[1] != ref_bits.shape[1]:
        raise ValueError(
            f"fingerprint matrices must be (N, n_bits) with equal n_bits, got {gen_bits.shape} and {ref_bits.shape}"
        )
    if len(ref_bits) == 0:
        raise ValueError("cannot find nearest neighbours in an empty reference set")
    device = torch.device(device)
    gen = _to_device(gen_bits, device)  # (G, K)
    gen_count = gen.sum(1, dtype=torch.float32)  # (G,)
    best = torch.zeros(len(gen_bits), dtype=torch.float32, device=device)  # (G,)
    with torch.inference_mode():
        for r in range(0, len(ref_bits), ref_chunk):
            ref = _to_device(ref_bits[r : r + ref_chunk], device)  # (R', K)
            ref_t, ref_count = ref.T.contiguous(), ref.sum(1, dtype=torch.float32)  # (K, R'), (R',)
            for g in range(0, len(gen_bits), gen_chunk):
                sim = _tanimoto_block(gen[g : g + gen_chunk], ref_t, gen_count[g : g + gen_chunk], ref_count)
                best[g : g + gen_chunk] = torch.maximum(best[g : g + gen_chunk], sim.amax(1))
    return best.cpu().numpy().astype(np.float64)


def _normalised_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,) or (weights < 0).any():
        raise ValueError(f"weights must be {n} non-negative numbers, got shape {weights.shape}")
    return weights


def nearest_neighbour_similarity(
    gen_bits: np.ndarray,
    ref_bits: np.ndarray,
    weights: np.ndarray | None = None,
    device: str | torch.device = "cpu",
) -> float:
    """MOSES' SNN: mean over generated molecules of the Tanimoto similarity to the nearest reference molecule.

    gen_bits (G, n_bits), ref_bits (R, n_bits) are 0/1 arrays; weights (G,) count repeated generated molecules.
    """
    w = _normalised_weights(weights, len(gen_bits))
    return float(np.dot(w, max_tanimoto(gen_bits, ref_bits, device)) / w.sum())


def internal_diversity(
    bits: np.ndarray,
    weights: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    chunk: int = 4096,
) -> tuple[float, float]:
    """MOSES' (IntDiv, IntDiv2) of a set of molecules given as 0/1 fingerprint rows bits (N, n_bits).

    With T the Tanimoto matrix over all ordered pairs, self-pairs included: IntDiv = 1 - mean(T) and
    IntDiv2 = 1 - mean_i sqrt(mean_j T_ij^2). weights (N,) count repeated molecules. Only blocks on and above
    the diagonal are computed.
    """
    w = _normalised_weights(weights, len(bits))
    n = w.sum()
    if len(bits) == 0 or n == 0:
        return float("nan"), float("nan")
    device = torch.device(device)
    x = _to_device(bits, device)  # (N, K)
    count = x.sum(1, dtype=torch.float32)  # (N,)
    w_t = torch.from_numpy(w.astype(np.float32)).to(device)  # (N,)
    row_sum = np.zeros(len(bits))  # sum_j w_j T_ij
    row_sq = np.zeros(len(bits))  # sum_j w_j T_ij^2
    with torch.inference_mode():
        for i in range(0, len(bits), chunk):
            for j in range(i, len(bits), chunk):
                rows, cols = slice(i, i + chunk), slice(j, j + chunk)
                sim = _tanimoto_block(x[rows], x[cols].T.contiguous(), count[rows], count[cols])  # (C, C')
                sq = sim.square()
                wi, wj = w_t[i : i + chunk], w_t[j : j + chunk]
                row_sum[i : i + chunk] += (sim @ wj).double().cpu().numpy()
                row_sq[i : i + chunk] += (sq @ wj).double().cpu().numpy()
                if j != i:  # the transposed block, by symmetry
                    row_sum[j : j + chunk] += (wi @ sim).double().cpu().numpy()
                    row_sq[j : j + chunk] += (wi @ sq).double().cpu().numpy()
    int_div = 1.0 - float(np.dot(w, row_sum)) / n**2
    int_div2 = 1.0 - float(np.dot(w, np.sqrt(row_sq / n))) / n
    return int_div, int_div2
