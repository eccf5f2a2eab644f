"""molgen: generative design of molecules and other graphs.

A graph tokenizer turns a molecular graph into latent tokens and back; a latent prior learns their distribution;
design (targets, objectives, constraints, scaffolds, analogs, optimisation) works on top. The public API::

    import molgen
    pipe = molgen.MolgenPipeline.from_pretrained()          # the shipped model (molgen.DEFAULT_MODEL)
    molecules = pipe.sample(100, seed=0, temperature=0.9)   # options: molgen.SamplingConfig fields
    designer = molgen.Designer(pipe)
    designer.generate(100, targets={"QED": 0.9})
    designer.optimize(molgen.objectives.qed(), n=64, iterations=10).best[:3]

Names are imported on first use, so ``import molgen.tokenizer`` (say) loads no more than it needs.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "MolgenPipeline": "molgen.pipeline",
    "DEFAULT_MODEL": "molgen.pipeline",
    "SamplingConfig": "molgen.sampling.config",
    "DecodedMolecule": "molgen.records",
    "Latents": "molgen.records",
    "Reconstruction": "molgen.records",
    "Designer": "molgen.design",
    "DesignResult": "molgen.design",
    "DesignInputError": "molgen.design",
    "OptimizationResult": "molgen.design",
    "Filters": "molgen.design",
    "Target": "molgen.design",
    "objectives": "molgen.design",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'molgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
