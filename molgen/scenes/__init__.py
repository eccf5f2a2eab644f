"""Scene graphs, the second graph domain: CLEVR-style scenes, their generator, readers, validity and metrics.

The data flow mirrors the molecular one: ``scene JSON -> scenes.io -> Scene -> domains.scene (graph) -> tokenizer``
and back through :meth:`molgen.domains.scene.SceneDomain.from_graph` / ``from_scores``. Requests
(:mod:`~molgen.scenes.constraints`: counts, relations, a partial scene to keep) are checked on scenes; the
:mod:`~molgen.scenes.designer` meets them with a scene model's pipeline. Nothing here imports RDKit; only the
designer, which drives a pipeline, imports torch.
"""

from molgen.scenes.scene import ATTRIBUTES, RELATION_MARGIN, Scene, SceneObject

__all__ = ["ATTRIBUTES", "RELATION_MARGIN", "Scene", "SceneObject"]
