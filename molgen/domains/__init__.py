"""Graph domains: objects that know a domain's vocabulary and how to turn its objects into graphs and back.

Domains are imported when first asked for, so that a scene model never imports RDKit (the molecule domain's
dependency): :data:`DOMAINS` names each domain's class by ``"module:Class"`` and :func:`domain_class` imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

DOMAINS = {"molecule": "molgen.domains.molecule:MoleculeDomain", "scene": "molgen.domains.scene:SceneDomain"}
"""Domain name (as saved in a checkpoint's ``domain.json``) -> ``"module:Class"`` of a class with ``from_config``."""

__all__ = ["DOMAINS", "MoleculeDomain", "SceneDomain", "domain_class"]


def domain_class(name: str) -> type:
    """The class of domain ``name`` (imported now); ValueError naming the known domains otherwise."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; known: {sorted(DOMAINS)}")
    module, _, cls = DOMAINS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def __getattr__(attribute: str) -> Any:
    """``from molgen.domains import MoleculeDomain`` (or ``SceneDomain``) imports that domain on first use."""
    for path in DOMAINS.values():
        module, _, cls = path.partition(":")
        if cls == attribute:
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
