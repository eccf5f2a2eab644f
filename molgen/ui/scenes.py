"""The web UI's scene side: where the page reaches the scene library (:class:`molgen.scenes.designer.SceneDesigner`
and :meth:`MolgenPipeline.nearest` over a scene model), and the records it shows (table rows, legends, the JSON-lines
download). Every call takes the request's :class:`~molgen.ui.jobs.Deadline` and stops at it with what it has.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from molgen.domains.scene import as_scene
from molgen.pipeline import MolgenPipeline
from molgen.scenes.designer import DesignedScene, SceneDesigner
from molgen.scenes.scene import Scene
from molgen.ui.jobs import Deadline, collect

__all__ = ["POOL", "SceneOutcome", "SceneService", "legend", "table", "write_jsonl"]

POOL = Path(__file__).resolve().parents[2] / "data" / "clevr" / "CLEVR_val_scenes_500.json"
"""The scenes the Nearest tab searches: CLEVR v1.0's 500 validation scenes (generator scenes when absent)."""
MAX_SCENE_TEXT = 20000  # characters of pasted scene JSON


@dataclass
class SceneOutcome:
    """What a request made (a designed scene, or a retrieved neighbour: ``distance`` set) and why it stopped early."""

    records: list
    stopped: str | None = None


@dataclass
class Neighbour:
    """A retrieved scene for the page: its index in the pool, its latent distance to the query."""

    scene: Scene
    index: int
    distance: float


class SceneService:
    """Scene requests for the page: design to a request, complete a partial scene, retrieve the nearest scenes."""

    def __init__(self, pipeline: MolgenPipeline, candidates: int = 32, rounds: int = 4) -> None:
        if pipeline.domain.name != "scene":
            raise ValueError(f"the scene tabs need a scene model; this one's domain is {pipeline.domain.name!r}")
        self.pipeline = pipeline
        self.designer = SceneDesigner(pipeline, candidates=candidates, rounds=rounds)
        self._pool: list[Scene] | None = None
        self._pool_latents = None

    # --- the three tabs ----------------------------------------------------------------------------------------

    def design(self, request: str, n: int, deadline: Deadline | None = None, seed: int = 0) -> SceneOutcome:
        return SceneOutcome(*collect(self.designer.generate_iter(_text("request", request), n, seed), deadline))

    def complete(self, partial: str, request: str, n: int, deadline: Deadline | None = None, seed: int = 0) -> SceneOutcome:
        """``partial``: scene JSON as text (objects with positions, or with the four relationship lists)."""
        scene = parse_scene("partial scene", partial)
        # each completion is its own call: the deadline is checked between them
        designs = (d for k in range(n) for d in self.designer.complete(scene, request or (), n=1, seed=seed + k))
        return SceneOutcome(*collect(designs, deadline))

    def nearest(self, query: str, k: int, seed: int = 0) -> tuple[Scene, SceneOutcome]:
        """The ``k`` pool scenes nearest ``query`` (scene JSON text; empty: a scene sampled from the model)."""
        if (query or "").strip():
            scene = parse_scene("query scene", query)
        else:
            scene = self.pipeline.sample(1, seed=seed)[0].item
        pool, latents = self.pool()
        hits = self.pipeline.nearest([scene], latents, k=min(k, len(pool)))[0]
        return scene, SceneOutcome([Neighbour(pool[h.index], h.index, h.distance) for h in hits])

    def pool(self):
        """(scenes, their latents) the Nearest tab searches, encoded on first use."""
        if self._pool is None:
            from molgen.scenes.generator import generate_scenes
            from molgen.scenes.io import read_clevr_scenes

            self._pool = read_clevr_scenes(POOL) if POOL.exists() else generate_scenes(500, seed=5)
            self._pool_latents = self.pipeline.encode(self._pool)
        return self._pool, self._pool_latents

    @property
    def pool_name(self) -> str:
        return "the 500 CLEVR v1.0 validation scenes" if POOL.exists() else "500 generator scenes (seed 5)"


def _text(field: str, text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{field}: type what the scenes should hold, e.g. '2 red cubes; something left of a metal sphere'")
    return text


def parse_scene(field: str, text: str | None) -> Scene:
    """A scene from JSON text; errors name the field."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{field}: paste a scene as JSON, e.g. {EXAMPLE_PARTIAL}")
    if len(text) > MAX_SCENE_TEXT:
        raise ValueError(f"{field}: at most {MAX_SCENE_TEXT:,} characters")
    try:
        return as_scene(text)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


EXAMPLE_PARTIAL = json.dumps(
    {
        "objects": [
            {"shape": "cube", "color": "red", "material": "metal", "size": "large", "position": [-1.5, 0.0]},
            {"shape": "sphere", "color": "green", "material": "rubber", "size": "small", "position": [1.0, 1.5]},
        ]
    }
)


# --- records for the page --------------------------------------------------------------------------------------


def legend(index: int, record) -> list[str]:
    """Legend lines under a scene: number, satisfied or what it misses (or its distance to the query)."""
    if isinstance(record, Neighbour):
        return [f"#{index} · pool scene {record.index}", f"latent distance {record.distance:.2f} · {record.scene.num_objects} objects"]
    lines = [f"#{index} · {record.scene.num_objects} objects"]
    lines.append("satisfies the request" if record.satisfied else "misses: " + "; ".join(record.unmet))
    return lines


def table(records: list) -> pd.DataFrame:
    """One row per scene: its number, objects and (designed scenes) whether it satisfies the request."""
    rows = []
    for k, r in enumerate(records):
        row = {"#": k, "objects": r.scene.num_objects, "description": "; ".join(f"{i}: {o.describe()}" for i, o in enumerate(r.scene.objects))}
        if isinstance(r, DesignedScene):
            row.update({"satisfied": r.satisfied, "unmet": "; ".join(r.unmet), "given objects": "" if r.given is None else " ".join(f"{p}->{s}" for p, s in r.given.items())})
        else:
            row.update({"pool scene": r.index, "latent distance": round(r.distance, 3)})
        rows.append(row)
    return pd.DataFrame(rows)


def write_jsonl(records: list, stem: str) -> Path:
    """The records as JSON lines in a temporary directory, for download: each line a record with its ``scene``."""
    out = Path(tempfile.mkdtemp(prefix="molgen-scenes-")) / f"{stem}.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for k, r in enumerate(records):
            record: dict = {"index": k}
            if isinstance(r, DesignedScene):
                record.update({"satisfied": r.satisfied, "unmet": r.unmet, "given": None if r.given is None else {str(p): s for p, s in r.given.items()}})
            else:
                record.update({"pool_index": r.index, "distance": r.distance})
            record["scene"] = r.scene.to_json()
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return out
