"""Graph domains: objects that know a domain's vocabulary and how to turn its objects into graphs and back."""

from molgen.domains.molecule import MoleculeDomain
from molgen.domains.scene import SceneDomain

DOMAINS = {"molecule": MoleculeDomain, "scene": SceneDomain}
"""Domain name (as saved in a checkpoint's config) -> class with ``from_config``."""

__all__ = ["DOMAINS", "MoleculeDomain", "SceneDomain"]
