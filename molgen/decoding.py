"""Latent tokens -> graph -> domain object, checked: the tokenizer's decoder followed by the domain's validity rules.

``raw`` decoding takes the decoder's argmax and checks it; ``valence`` decoding is the domain's own decoding from
the decoder's probabilities, valid by construction (its ``from_scores``: for molecules bonds placed within each
atom's valence, for scenes relations placed so that a layout realises them); ``verified`` decoding is the argmax checked
by re-encoding it, and where it does not give back the tokens, the nearest graph that does
(:mod:`molgen.tokenizer.search`), then checked as ``raw``. Figures of the three are never mixed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from molgen.batch import graphs_from_dense
from molgen.records import DecodedMolecule, Latents
from molgen.tokenizer.model import GraphTokenizer
from molgen.tokenizer.search import verified_decode

__all__ = ["DECODINGS", "Decoder", "ScoreAdjuster"]

DECODINGS = ("raw", "valence")
"""What sampling and design decode with. Decoding encoded items (reconstruction, a designer's seeds) may also be
``verified``."""

ScoreAdjuster = Callable[[int, list[np.ndarray], np.ndarray], tuple[list[np.ndarray], np.ndarray]]
"""``adjust(index, node_probs, edge_probs) -> (node_probs, edge_probs)`` for graph ``index`` of a decode call:
one (n, K_f) array per node field and the (n, n, K_e) edge-label probabilities (label 0 = no bond)."""


class Decoder:
    """A tokenizer's decoder and a graph domain: latents in, one :class:`DecodedMolecule` per graph out."""

    def __init__(self, domain, tokenizer: GraphTokenizer, device: torch.device) -> None:
        self.domain, self.tokenizer, self.device = domain, tokenizer, device

    @torch.no_grad()
    def __call__(
        self, latents: Latents, batch_size: int = 512, decoding: str = "raw", connected: bool | None = None, adjust: ScoreAdjuster | None = None
    ) -> list[DecodedMolecule]:
        """Decode latent tokens; invalid graphs are kept, with the reason.

        ``raw``: argmax decoding; a graph that is not a valid domain object (or, with ``connected``, falls apart into
        fragments) is ``invalid``; ``connected`` None: as the domain says (its ``connected``: true for molecules, false
        for scenes, whose unrelated groups of objects are valid). ``valence``: the domain's decoding from probabilities
        (valence-aware for molecules, always one connected molecule; layout-aware for scenes), always valid.
        ``adjust`` (valence decoding only) may change graph ``index``'s decoder probabilities first, e.g. to fix atoms
        and bonds known in advance (scaffold decoration).
        """
        if decoding not in (*DECODINGS, "verified"):
            raise ValueError(f"decoding must be one of {(*DECODINGS, 'verified')}, got {decoding!r}")
        if adjust is not None and decoding != "valence":
            raise ValueError("adjust works on decoder probabilities: use it with decoding='valence'")
        out: list[DecodedMolecule] = []
        for k in range(0, len(latents), batch_size):
            z = latents.z[k : k + batch_size].to(self.device)
            mask = latents.mask[k : k + batch_size].to(self.device)
            if decoding in ("raw", "verified"):
                if connected is None:
                    connected = getattr(self.domain, "connected", True)
                x, adj = self.tokenizer.decode(z, mask) if decoding == "raw" else verified_decode(self.tokenizer, z, mask)[:2]
                out.extend(self._from_graph(graph, connected) for graph in graphs_from_dense(x, adj, mask))
                continue
            node_probs, edge_probs = self.tokenizer.decode_probs(z, mask)
            node_probs = [p.cpu().numpy() for p in node_probs]
            edge_probs = edge_probs.cpu().numpy()
            for b, size in enumerate(mask.sum(1).tolist()):
                nodes, edges = [p[b, :size] for p in node_probs], edge_probs[b, :size, :size]
                if adjust is not None:
                    nodes, edges = adjust(k + b, nodes, edges)
                out.append(_checked(lambda nodes=nodes, edges=edges: self.domain.from_scores(nodes, edges)))
        return out

    def _from_graph(self, graph, connected: bool) -> DecodedMolecule:
        if connected and graph.num_nodes and (parts := graph.num_components()) > 1:
            return DecodedMolecule(None, "invalid", f"decoded graph falls apart into {parts} fragments")
        return _checked(lambda: self.domain.from_graph(graph))


def _checked(make_item) -> DecodedMolecule:
    try:
        return DecodedMolecule(make_item(), "valid")
    except ValueError as exc:
        return DecodedMolecule(None, "invalid", str(exc))
