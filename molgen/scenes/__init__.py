"""Scene graphs, the second graph domain: CLEVR-style scenes, their generator, readers, validity and metrics.

The data flow mirrors the molecular one: ``scene JSON -> scenes.io -> Scene -> domains.scene (graph) -> tokenizer``
and back through :meth:`molgen.domains.scene.SceneDomain.from_graph` / ``from_scores``. Nothing here imports
RDKit or torch.
"""

from molgen.scenes.scene import ATTRIBUTES, RELATION_MARGIN, Scene, SceneObject

__all__ = ["ATTRIBUTES", "RELATION_MARGIN", "Scene", "SceneObject"]
