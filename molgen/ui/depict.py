"""2D depictions for the web UI: RDKit SVGs, optionally drawn in the orientation of a reference (the seed of
analogs, the core of decorations) with the shared part highlighted, laid out as an HTML grid.

This module only draws; which molecules to draw comes from the design API.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

from rdkit import Chem, rdBase
from rdkit.Chem import rdDepictor, rdFMCS
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Chem.Scaffolds import MurckoScaffold

__all__ = ["Reference", "Tile", "grid_html", "molecule_svg", "reference_from_core", "reference_from_smiles"]

HIGHLIGHT = (0.55, 0.80, 1.0)  # light blue: the part shared with the seed / core
MCS_SECONDS = 1  # per molecule; an analog the search cannot finish in time is drawn unaligned
MIN_SHARED_ATOMS = 3  # a smaller common part would orient the drawing by chance

rdDepictor.SetPreferCoordGen(True)


@dataclass
class Reference:
    """What results are drawn against: ``mol`` has 2D coordinates; ``pattern`` (a query) finds the part of a
    result to align and highlight; ``use_mcs`` falls back to the maximum common substructure when the
    pattern is not found (analogs of a seed)."""

    mol: Chem.Mol
    pattern: Chem.Mol
    use_mcs: bool = False


@dataclass
class Tile:
    """One cell of the grid: a SMILES (None: nothing to draw) and the legend lines under it."""

    smiles: str | None
    legend: list[str]
    muted: bool = False  # drawn greyed (rejected or duplicate results)


def _with_coords(mol: Chem.Mol) -> Chem.Mol:
    mol = Chem.Mol(mol)
    rdDepictor.Compute2DCoords(mol)
    return mol


def reference_from_smiles(smiles: str) -> Reference | None:
    """Reference for analogs of ``smiles``: its Murcko scaffold (or the whole molecule when it has no ring),
    with the maximum common substructure as fallback. None if the SMILES does not parse."""
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        return None
    scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    pattern = scaffold if scaffold.GetNumAtoms() >= MIN_SHARED_ATOMS else mol
    return Reference(_with_coords(mol), pattern, use_mcs=True)


def reference_from_core(core: str) -> Reference | None:
    """Reference for decorations of ``core`` (``[*:1]`` attachment points allowed): the core without its
    attachment points. None if it does not parse."""
    mol = Chem.MolFromSmiles(core) if core else None
    if mol is None:
        return None
    bare = Chem.DeleteSubstructs(mol, Chem.MolFromSmarts("[#0]"))
    with rdBase.BlockLogs():
        try:
            Chem.SanitizeMol(bare)
        except Exception:  # a core whose rings only make sense with the dummies: match it as written
            bare = mol
    if bare.GetNumAtoms() == 0:
        return None
    return Reference(_with_coords(bare), bare)


def _match(mol: Chem.Mol, reference: Reference) -> tuple[Chem.Mol, tuple[int, ...]] | None:
    """(query, atom indices of ``mol``) of the part shared with the reference, or None."""
    hit = mol.GetSubstructMatch(reference.pattern)
    if hit:
        return reference.pattern, hit
    if not reference.use_mcs:
        return None
    result = rdFMCS.FindMCS([reference.mol, mol], timeout=MCS_SECONDS, ringMatchesRingOnly=True, completeRingsOnly=True)
    if result.numAtoms < MIN_SHARED_ATOMS:
        return None
    query = Chem.MolFromSmarts(result.smartsString)
    hit = mol.GetSubstructMatch(query) if query is not None else ()
    return (query, hit) if hit else None


def molecule_svg(smiles: str, legend: str = "", reference: Reference | None = None, size: tuple[int, int] = (260, 200)) -> str:
    """SVG text of one molecule; aligned to ``reference`` and its shared part highlighted when it contains it.

    A SMILES RDKit cannot parse is drawn as a box naming the problem (never raises)."""
    width, height = size
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        text = html.escape(f"cannot draw {smiles!r}")
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<text x="8" y="{height // 2}" font-size="12">{text}</text></svg>'
        )
    highlight: tuple[int, ...] = ()
    with rdBase.BlockLogs():
        found = _match(mol, reference) if reference is not None else None
        if found is not None:
            query, highlight = found
            try:
                rdDepictor.GenerateDepictionMatching2DStructure(mol, reference.mol, refPatt=query)
            except ValueError:  # the shared part is not in the reference's depiction as such
                rdDepictor.Compute2DCoords(mol)
        else:
            rdDepictor.Compute2DCoords(mol)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    options = drawer.drawOptions()
    options.legendFontSize = 14
    options.clearBackground = False
    bonds = [b.GetIdx() for b in mol.GetBonds() if b.GetBeginAtomIdx() in highlight and b.GetEndAtomIdx() in highlight]
    drawer.DrawMolecule(
        mol,
        legend=legend,
        highlightAtoms=list(highlight),
        highlightBonds=bonds,
        highlightAtomColors={i: HIGHLIGHT for i in highlight},
        highlightBondColors={i: HIGHLIGHT for i in bonds},
    )
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


_GRID_CSS = (
    "display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:10px;"
)
_CELL_CSS = "border:1px solid #d0d7de;border-radius:6px;padding:4px;background:#fff;text-align:center;"


def grid_html(tiles: list[Tile], reference: Reference | None = None, note: str = "") -> str:
    """An HTML grid of depictions (each an ``<img>`` holding the SVG as a data URI, so that the page's
    HTML sanitiser leaves it alone) with the legend lines under each image."""
    cells = []
    for k, tile in enumerate(tiles):
        title = html.escape(tile.smiles or "")
        if tile.smiles:
            svg = molecule_svg(tile.smiles, reference=reference)
            data = base64.b64encode(svg.encode()).decode()
            image = f'<img class="molgen-mol" src="data:image/svg+xml;base64,{data}" alt="{title}" title="{title}" style="width:100%;max-width:260px">'
        else:
            image = '<div class="molgen-mol-missing" style="height:120px;line-height:120px;color:#888">no molecule</div>'
        legend = "<br>".join(html.escape(line) for line in tile.legend)
        style = _CELL_CSS + ("opacity:0.55;" if tile.muted else "")
        cells.append(f'<div class="molgen-cell" data-index="{k}" style="{style}">{image}<div style="font-size:12px">{legend}</div></div>')
    head = f'<p class="molgen-grid-note">{html.escape(note)}</p>' if note else ""
    return f'{head}<div class="molgen-grid" style="{_GRID_CSS}">{"".join(cells)}</div>'
