"""Graph domains: objects that know a domain's vocabulary and how to turn its objects into graphs and back."""

from molgen.domains.molecule import MoleculeDomain

DOMAINS = {"molecule": MoleculeDomain}
"""Domain name (as saved in a checkpoint's config) -> class with ``from_config``."""

__all__ = ["DOMAINS", "MoleculeDomain"]
