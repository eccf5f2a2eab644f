"""Latent priors: the networks that learn the distribution of a tokenizer's latent tokens (no training code here)."""

from __future__ import annotations

from torch import nn

from molgen.prior.config import ARCHITECTURES, PriorConfig
from molgen.prior.discrete import DiscreteAutoregressivePrior
from molgen.prior.flow import LatentPrior
from molgen.prior.masked import MaskedDiffusionPrior

__all__ = ["ARCHITECTURES", "PRIORS", "DiscreteAutoregressivePrior", "LatentPrior", "MaskedDiffusionPrior", "PriorConfig", "build_prior"]

PRIORS: dict[str, type[nn.Module]] = {"discrete": DiscreteAutoregressivePrior, "set": LatentPrior, "masked": MaskedDiffusionPrior}
"""``config.architecture`` -> the network class."""


def build_prior(config: PriorConfig) -> nn.Module:
    """The untrained network ``config.architecture`` names."""
    return PRIORS[config.architecture](config)
