"""Where the networks run and in which precision: CPU or GPU, float32 or bfloat16 autocast where it is native."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["DEFAULT_PRECISION", "PRECISIONS", "Precision", "fast_bfloat16", "resolve_device"]

DEFAULT_PRECISION = "auto"
PRECISIONS = ("fp32", "bf16", "auto")
"""How the prior-side networks run while sampling: ``fp32``; ``bf16`` (autocast to bfloat16: their matrix products in
bfloat16, everything else in float32); ``auto``: bf16 where the hardware computes it natively (:func:`fast_bfloat16`),
else fp32. The tokenizer always runs in fp32."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively: a CUDA GPU that supports bfloat16, or an x86
    CPU with AVX512-BF16 or AMX (read from /proc/cpuinfo; elsewhere False). Other CPUs emulate bfloat16,
    which is slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Precision:
    """A precision setting resolved on a device; calling it gives the context the networks run in."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
        self.name, self.device = name, device
        self.dtype = torch.bfloat16 if name == "bf16" or (name == "auto" and fast_bfloat16(device)) else torch.float32

    def __call__(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)
