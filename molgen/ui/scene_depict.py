"""Scene drawings for the web UI, as SVG text (no RDKit, no downloads): each scene both as a 2D top-down layout of
coloured shapes and as a graph of its relations, laid out as an HTML grid like the molecules'.

- Layout: the camera looks from the bottom edge; x grows to the right, "behind" grows upward. A cube is a square,
  a sphere a shaded disc, a cylinder a disc with the ring of its top face; large objects are drawn 1.6 times the size
  of small ones; metal objects have a dark outline and a highlight, rubber ones a plain thin outline. Objects carry
  their number (their index in the scene), the same as in the graph and the table.
- Graph: one node per object (its colour and shape) on a circle; arrows for the relations that are not implied
  through a third object (each axis's transitive reduction): orange ``a -> b``: b is right of a; blue ``a -> b``:
  b is behind a. Every pair of a CLEVR scene is related on both axes, and these arrows give every relation back by
  following them.

Objects of a completed scene that were given (kept from the partial scene) are ringed in gold in both drawings.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from molgen.scenes.scene import Scene, closure, layout, reduction

__all__ = ["COLORS_RGB", "SceneTile", "graph_svg", "layout_svg", "scene_grid_html"]

COLORS_RGB = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
}  # fmt: skip
"""CLEVR's own colour values (its renderer's properties.json)."""

X_ARROW, Y_ARROW, GIVEN = "#e07b00", "#1f6fd1", "#d4a300"
SIZE = (240, 200)


def _rgb(color: str) -> str:
    r, g, b = COLORS_RGB[color]
    return f"rgb({r},{g},{b})"


def _positions(scene: Scene) -> np.ndarray:
    """(N, 2) positions: the scene's own, else a layout realising its relations."""
    if scene.positions is not None:
        return np.asarray(scene.positions, dtype=float).reshape(-1, 2)
    return np.stack([layout(closure(scene.matrix("x"))), layout(closure(scene.matrix("y")))], axis=1).reshape(-1, 2)


def _shape(kind: str, x: float, y: float, r: float, fill: str, metal: bool, ring: bool, label: str) -> str:
    """One object's SVG elements at (x, y) with radius ``r``."""
    stroke = 'stroke="#222" stroke-width="2"' if metal else 'stroke="#666" stroke-width="0.8"'
    parts = []
    if ring:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r + 4:.1f}" fill="none" stroke="{GIVEN}" stroke-width="3"/>')
    if kind == "cube":
        parts.append(f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" fill="{fill}" {stroke}/>')
    else:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" {stroke}/>')
        if kind == "cylinder":
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{0.62 * r:.1f}" fill="none" stroke="rgba(255,255,255,0.75)" stroke-width="1.5"/>')
        else:  # sphere: shading toward the rim
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="url(#shade)"/>')
    if metal:
        parts.append(f'<ellipse cx="{x - 0.35 * r:.1f}" cy="{y - 0.35 * r:.1f}" rx="{0.28 * r:.1f}" ry="{0.18 * r:.1f}" fill="rgba(255,255,255,0.8)"/>')
    parts.append(
        f'<text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="10" text-anchor="middle" fill="#fff" stroke="#000" '
        f'stroke-width="0.6" paint-order="stroke" font-family="sans-serif">{html.escape(label)}</text>'
    )
    return "".join(parts)


_DEFS = (
    '<defs><radialGradient id="shade" cx="0.4" cy="0.4" r="0.6"><stop offset="0.6" stop-color="#000" stop-opacity="0"/>'
    '<stop offset="1" stop-color="#000" stop-opacity="0.35"/></radialGradient>'
    f'<marker id="ax" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{X_ARROW}"/></marker>'
    f'<marker id="ay" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{Y_ARROW}"/></marker></defs>'
)


def _svg(body: str, title: str, size: tuple[int, int]) -> str:
    width, height = size
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"{_DEFS}<title>{html.escape(title)}</title>{body}</svg>"
    )


def layout_svg(scene: Scene, given: Collection[int] = (), size: tuple[int, int] = SIZE) -> str:
    """SVG text of the scene seen from above (module docstring); ``given``: objects to ring."""
    width, height = size
    n = scene.num_objects
    body = [f'<rect width="{width}" height="{height}" fill="#f3f1ec"/>']
    body.append(f'<text x="4" y="{height - 4}" font-size="9" fill="#888" font-family="sans-serif">camera</text>')
    if n:
        pos = _positions(scene)
        span = np.maximum(pos.max(0) - pos.min(0), 1e-9)
        spacing = min(width, height) / (max(n, 4) + 1)  # about one rank apart on an axis, after scaling
        small = 0.36 * spacing  # radius of a small object; a large one is 1.6 times that: neighbours barely overlap
        pad = 1.6 * small + 6
        x = pad + (pos[:, 0] - pos[:, 0].min()) / span[0] * (width - 2 * pad) if span[0] > 1e-8 else np.full(n, width / 2)
        y = height - pad - (pos[:, 1] - pos[:, 1].min()) / span[1] * (height - 2 * pad) if span[1] > 1e-8 else np.full(n, height / 2)
        order = np.argsort(-y, kind="stable")  # far objects first, near ones drawn over them
        for k in order.tolist():
            obj = scene.objects[k]
            r = small * (1.6 if obj.size == "large" else 1.0) * (0.85 if obj.shape == "cube" else 1.0)
            body.append(_shape(obj.shape, float(x[k]), float(y[k]), r, _rgb(obj.color), obj.material == "metal", k in given, str(k)))
    return _svg("".join(body), "top-down layout", size)


def graph_svg(scene: Scene, given: Collection[int] = (), size: tuple[int, int] = SIZE) -> str:
    """SVG text of the scene's relation graph (module docstring); ``given``: objects to ring."""
    width, height = size
    n = scene.num_objects
    body = [f'<rect width="{width}" height="{height}" fill="#fff"/>']
    if n:
        cx, cy, radius = width / 2, height / 2, min(width, height) / 2 - 22
        angles = [math.pi / 2 + 2 * math.pi * k / n for k in range(n)]  # object 0 at the top, then anticlockwise
        xy = [(cx + radius * math.cos(a), cy - radius * math.sin(a)) if n > 1 else (cx, cy) for a in angles]
        node = 11.0
        for axis, colour, marker, bend in (("x", X_ARROW, "ax", 0.12), ("y", Y_ARROW, "ay", -0.12)):
            links = reduction(closure(scene.matrix(axis)))
            for i, j in zip(*np.nonzero(links), strict=True):
                (x1, y1), (x2, y2) = xy[int(i)], xy[int(j)]
                dx, dy = x2 - x1, y2 - y1
                length = math.hypot(dx, dy) or 1.0
                ux, uy = dx / length, dy / length
                sx, sy, ex, ey = x1 + ux * node, y1 + uy * node, x2 - ux * (node + 1), y2 - uy * (node + 1)
                mx, my = (sx + ex) / 2 - uy * bend * length, (sy + ey) / 2 + ux * bend * length  # the two axes bend apart
                body.append(f'<path d="M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}" fill="none" stroke="{colour}" stroke-width="1.4" marker-end="url(#{marker})"/>')
        for k, obj in enumerate(scene.objects):
            x, y = xy[k]
            body.append(_shape(obj.shape, x, y, node * (0.85 if obj.shape == "cube" else 1.0), _rgb(obj.color), obj.material == "metal", k in given, str(k)))
    body.append(
        f'<text x="4" y="{height - 4}" font-size="9" font-family="sans-serif"><tspan fill="{X_ARROW}">&#8594; right of</tspan>'
        f' <tspan fill="{Y_ARROW}">&#8594; behind</tspan></text>'
    )
    return _svg("".join(body), "relation graph", size)


@dataclass
class SceneTile:
    """One cell of the grid: a scene, the legend lines under it, the objects to ring, and whether to grey it."""

    scene: Scene
    legend: list[str]
    given: Collection[int] = field(default_factory=tuple)
    muted: bool = False


def _image(svg: str, alt: str, kind: str) -> str:
    data = base64.b64encode(svg.encode()).decode()
    return f'<img class="molgen-scene-{kind}" src="data:image/svg+xml;base64,{data}" alt="{html.escape(alt)}" title="{html.escape(alt)}" style="width:50%;max-width:240px">'


_GRID_CSS = "display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:10px;"
_CELL_CSS = "border:1px solid #d0d7de;border-radius:6px;padding:4px;background:#fff;text-align:center;"


def scene_grid_html(tiles: list[SceneTile], note: str = "") -> str:
    """An HTML grid: per scene its layout and its graph side by side (``<img>`` with SVG data URIs, which the page's
    HTML sanitiser leaves alone) and the legend lines under them."""
    cells = []
    for k, tile in enumerate(tiles):
        description = "; ".join(f"{i}: {o.describe()}" for i, o in enumerate(tile.scene.objects))
        images = _image(layout_svg(tile.scene, tile.given), description, "layout") + _image(graph_svg(tile.scene, tile.given), description, "graph")
        legend = "<br>".join(html.escape(line) for line in tile.legend)
        style = _CELL_CSS + ("opacity:0.55;" if tile.muted else "")
        cells.append(f'<div class="molgen-scene" data-index="{k}" style="{style}"><div style="display:flex">{images}</div><div style="font-size:12px">{legend}</div></div>')
    head = f'<p class="molgen-grid-note">{html.escape(note)}</p>' if note else ""
    return f'{head}<div class="molgen-grid" style="{_GRID_CSS}">{"".join(cells)}</div>'
