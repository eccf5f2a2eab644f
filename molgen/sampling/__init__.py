"""Sampling a prior: one sampler per prior family (:mod:`~molgen.sampling.discrete`, :mod:`~molgen.sampling.flow`)
behind one interface (:mod:`~molgen.sampling.base`), options in one :class:`~molgen.sampling.config.SamplingConfig`."""

from molgen.sampling.config import Edit, SamplingConfig

__all__ = ["Edit", "SamplingConfig"]
