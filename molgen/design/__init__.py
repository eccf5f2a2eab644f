"""Guided design: property targets, black-box objectives, substructure constraints, scaffold decoration, motif
extension, linker design, scaffold morphing, analogs, interpolation and latent-space optimisation, every output checked
by RDKit and reported.

::

    from molgen.design import Designer, Filters, objectives
    designer = Designer.from_pretrained()  # the shipped model, checkpoints/moses
    designer.generate(100, targets={"QED": 0.9, "MW": (300, 400)}, must_avoid=["[N+](=O)[O-]"])
    designer.optimize(objectives.qed(), n=64, iterations=10).best[:3]

Modules, one concern each: ``targets`` (property targets and their report), ``constraints`` (SMARTS, filters,
per-molecule checks), ``objectives`` (scoring functions and safe evaluation), ``chemistry`` (the RDKit side:
SMARTS, similarity, cores, fragments and side chains), ``editing`` (latent grids for analogs, decoration and the
other inpainting designs, interpolation),
``optimization`` (the black-box loop with a latent surrogate), ``designer`` (the API), ``results`` (records).
"""

from molgen.design import objectives
from molgen.design.constraints import Filters
from molgen.design.designer import Designer
from molgen.design.results import DesignInputError, DesignResult, OptimizationResult
from molgen.design.targets import Target, target_report

__all__ = ["DesignInputError", "DesignResult", "Designer", "Filters", "OptimizationResult", "Target", "objectives", "target_report"]
