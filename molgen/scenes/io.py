"""Scene files in and out: CLEVR scene JSON, sg2im / Visual Genome scene-graph JSON, and JSON lines.

- **CLEVR scene JSON** (``CLEVR_<split>_scenes.json``): ``{"info": ..., "scenes": [...]}``, each scene with
  ``objects`` (shape, color, material, size, ``3d_coords`` in world units, ...), ``relationships`` (relation name
  -> per object the indices of the objects in that relation to it) and ``directions`` (the camera's unit vectors).
  :func:`read_clevr_scenes` keeps the file's relationships and the camera-frame ground positions
  (``3d_coords . directions["right"]``, ``. directions["behind"]``).
- **Scene-graph JSON** (:func:`read_scene_graphs`), two common shapes:
  sg2im's ``[{"objects": ["red cube", ...], "relationships": [[0, "left of", 1], ...]}, ...]`` and Visual
  Genome's ``[{"image_id": 1, "objects": [{"object_id": 7, "names": ["cube"], "attributes": ["red"]}, ...],
  "relationships": [{"predicate": "left of", "subject_id": 7, "object_id": 9}, ...]}, ...]`` (``subject`` /
  ``object`` dicts with an ``object_id`` are accepted too). They come back as :class:`SceneGraphRecord` (names,
  attribute words and (subject, predicate, object) triples, any vocabulary); :func:`record_to_scene` turns a record
  that speaks CLEVR's vocabulary into a :class:`~molgen.scenes.scene.Scene`.
- **Scene JSON** (:meth:`Scene.to_json`, :func:`scene_from_json`): CLEVR's scene form with camera-frame
  ``position`` per object instead of ``3d_coords``.
- **JSON lines**: one :meth:`Scene.to_json` object per line (:func:`write_jsonl`, :func:`read_jsonl`;
  :func:`read_scene_rows` yields the lines as rows for featurizing, a bad line reported, not raised).
- **Sampled scenes** (:class:`SceneWriter`): one JSON record per line with the sample's index, state, scene (null
  when invalid), error and properties, as :class:`molgen.io.MoleculeWriter` writes molecules.

Errors name the file, the scene (index or image id) and the object or relation at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molgen.graph import DomainError
from molgen.io import BadRow, Row
from molgen.scenes.scene import ATTRIBUTES, Scene, SceneObject, closure, is_acyclic
from molgen.scenes.validity import relationship_problems

__all__ = [
    "PREDICATES",
    "SceneGraphRecord",
    "SceneWriter",
    "clevr_scene",
    "read_clevr_scenes",
    "read_jsonl",
    "read_scene_graphs",
    "read_scene_rows",
    "record_to_scene",
    "scene_from_json",
    "scene_resume_point",
    "write_jsonl",
]

PREDICATES = {
    "left": ("x", True),
    "left of": ("x", True),
    "to the left of": ("x", True),
    "right": ("x", False),
    "right of": ("x", False),
    "to the right of": ("x", False),
    "behind": ("y", False),
    "in back of": ("y", False),
    "front": ("y", True),
    "in front of": ("y", True),
    "front of": ("y", True),
}
"""Predicate words (lower case) -> (axis, converse): "A left of B" puts A before B on x (B is right of A)."""


def _load(path: str | Path) -> Any:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DomainError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def scene_from_json(data: dict[str, Any], where: str = "scene") -> Scene:
    """Inverse of :meth:`Scene.to_json` (objects with optional ``position``, the four relationship lists); errors
    name ``where`` and the object or relation at fault. The relationship lists must be consistent (left the
    converse of right, front of behind); without them, relations derive from the positions."""
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise DomainError(f"{where}: expected an object with an 'objects' list")
    raw_objects = data["objects"]
    try:
        objects = [SceneObject(**{name: o[name] for name in ATTRIBUTES}) for o in raw_objects]
    except KeyError as exc:
        raise DomainError(f"{where}: an object has no {exc.args[0]!r}") from None
    except (DomainError, TypeError) as exc:
        raise DomainError(f"{where}: {exc}") from None
    positions = None
    if raw_objects and all("position" in o for o in raw_objects):
        positions = np.array([o["position"] for o in raw_objects], dtype=float).reshape(len(objects), 2)
    relationships = data.get("relationships")
    if relationships is None:
        if positions is None:
            raise DomainError(f"{where}: neither relationships nor object positions")
        return Scene.from_positions(objects, positions)
    problems = relationship_problems(relationships, len(objects))
    if problems:
        raise DomainError(f"{where}: {problems[0]}")
    n = len(objects)
    right, behind = np.zeros((n, n), bool), np.zeros((n, n), bool)
    for i in range(n):
        right[i, relationships["right"][i]] = True
        behind[i, relationships["behind"][i]] = True
    return Scene.from_matrices(objects, right, behind, positions)


def clevr_scene(data: dict[str, Any], where: str = "scene") -> Scene:
    """One CLEVR scene dict -> :class:`Scene`: the file's relationships, and camera-frame positions when the scene
    has ``3d_coords`` and ``directions`` (relations derive from them when the scene has no relationships)."""
    objects = data.get("objects")
    if not isinstance(objects, list):
        raise DomainError(f"{where}: no 'objects' list")
    directions = data.get("directions")
    if directions and objects and all(isinstance(o, dict) and "3d_coords" in o for o in objects):
        coords = np.array([o["3d_coords"] for o in objects], dtype=float).reshape(len(objects), 3)
        xy = np.stack([coords @ np.asarray(directions["right"]), coords @ np.asarray(directions["behind"])], axis=1)
        objects = [{**o, "position": p.tolist()} for o, p in zip(objects, xy, strict=True)]
    return scene_from_json({"objects": objects, "relationships": data.get("relationships")}, where)


def read_clevr_scenes(path: str | Path) -> list[Scene]:
    """Scenes of a CLEVR scene file (``{"scenes": [...]}``, a list of scenes, or one scene)."""
    data = _load(path)
    scenes = data.get("scenes", [data]) if isinstance(data, dict) else data
    if not isinstance(scenes, list):
        raise DomainError(f"{path}: expected a CLEVR scene file with a 'scenes' list")
    return [
        clevr_scene(s, f"{path}: scene {s.get('image_index', k) if isinstance(s, dict) else k}")
        for k, s in enumerate(scenes)
    ]


@dataclass
class SceneGraphRecord:
    """A scene graph in any vocabulary: per object a name and attribute words, and (subject, predicate, object)
    triples of object indices."""

    names: list[str]
    attributes: list[list[str]]
    triples: list[tuple[int, str, int]]
    image_id: Any = None


def _object_words(obj: Any, where: str) -> tuple[str, list[str], Any]:
    """(name, attribute words, object id) of an sg2im string or a Visual Genome object dict."""
    if isinstance(obj, str):
        return obj, [], None
    if isinstance(obj, dict):
        names = obj.get("names") or ([obj["name"]] if "name" in obj else [])
        if not names:
            raise DomainError(f"{where}: object {obj.get('object_id', '?')} has no name")
        attributes = [str(a) for a in obj.get("attributes", [])]
        return str(names[0]), attributes, obj.get("object_id")
    raise DomainError(f"{where}: an object is {type(obj).__name__}; expected a name or an object dict")


def _endpoint(rel: dict[str, Any], role: str, index: dict[Any, int], where: str) -> int:
    ref = rel.get(f"{role}_id", rel.get(role))
    if isinstance(ref, dict):
        ref = ref.get("object_id")
    if ref not in index:
        raise DomainError(
            f"{where}: relationship {rel.get('relationship_id', rel)} has {role} {ref!r}, not an object of the scene"
        )
    return index[ref]


def _record(data: dict[str, Any], where: str) -> SceneGraphRecord:
    if "objects" not in data:
        raise DomainError(f"{where}: no 'objects'")
    names, attributes, ids = [], [], []
    for k, obj in enumerate(data["objects"]):
        name, words, object_id = _object_words(obj, where)
        names.append(name)
        attributes.append(words)
        ids.append(k if object_id is None else object_id)
    index = {object_id: k for k, object_id in enumerate(ids)}
    triples = []
    for rel in data.get("relationships", []):
        if isinstance(rel, (list, tuple)):  # sg2im: [subject index, predicate, object index]
            if len(rel) != 3:
                raise DomainError(f"{where}: relationship {rel!r} is not [subject, predicate, object]")
            s, p, o = rel
            if not all(isinstance(v, int) and 0 <= v < len(names) for v in (s, o)):
                raise DomainError(f"{where}: relationship {rel!r} names an object outside 0..{len(names) - 1}")
            triples.append((s, str(p), o))
        elif isinstance(rel, dict):  # Visual Genome
            triples.append(
                (
                    _endpoint(rel, "subject", index, where),
                    str(rel.get("predicate", "")),
                    _endpoint(rel, "object", index, where),
                )
            )
        else:
            raise DomainError(f"{where}: a relationship is {type(rel).__name__}")
    return SceneGraphRecord(names, attributes, triples, data.get("image_id"))


def read_scene_graphs(path: str | Path) -> list[SceneGraphRecord]:
    """Records of an sg2im or Visual Genome scene-graph file (a list of scenes, or one scene)."""
    data = _load(path)
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise DomainError(f"{path}: expected a list of scene graphs")
    return [
        _record(item, f"{path}: scene {item.get('image_id', k) if isinstance(item, dict) else k}")
        for k, item in enumerate(items)
    ]


def record_to_scene(record: SceneGraphRecord, where: str = "scene graph") -> Scene:
    """A record in CLEVR's vocabulary -> :class:`Scene`.

    Each object's name and attribute words together must give exactly one value of every CLEVR attribute
    ("large red metal cube", or name "cube" with attributes ["red", "metal", "large"]; "ball"/"block" are read as
    sphere/cube, "shiny"/"matte" as metal/rubber). Predicates are read with :data:`PREDICATES` ("A left of B":
    B is right of A). Relations are closed transitively; a cycle is an error.
    """
    synonyms = {
        "ball": "sphere",
        "block": "cube",
        "shiny": "metal",
        "metallic": "metal",
        "matte": "rubber",
        "big": "large",
        "tiny": "small",
        "grey": "gray",
    }
    objects = []
    for k, (name, words) in enumerate(zip(record.names, record.attributes, strict=True)):
        tokens = [synonyms.get(t, t) for t in " ".join([*words, name]).lower().replace(",", " ").split()]
        values = {}
        for attribute, allowed in ATTRIBUTES.items():
            found = sorted({t for t in tokens if t in allowed})
            if len(found) != 1:
                what = "no" if not found else f"several ({', '.join(found)})"
                raise DomainError(
                    f"{where}: object {k} ({' '.join([*words, name])!r}) has {what} {attribute}; one of {list(allowed)} is needed"
                )
            values[attribute] = found[0]
        objects.append(SceneObject(**values))
    n = len(objects)
    rel = {"x": np.zeros((n, n), bool), "y": np.zeros((n, n), bool)}
    for s, predicate, o in record.triples:
        key = " ".join(predicate.lower().split())
        if key not in PREDICATES:
            raise DomainError(
                f"{where}: predicate {predicate!r} ({s} -> {o}) is not a spatial relation; known: {sorted(PREDICATES)}"
            )
        axis, converse = PREDICATES[key]
        # "s right of o": s comes after o, i.e. (o, s) in the axis order; "s left of o": (s, o)
        rel[axis][(s, o) if converse else (o, s)] = True
    for axis, label in (("x", "left/right"), ("y", "front/behind")):
        if np.diag(rel[axis]).any() or not is_acyclic(rel[axis]):
            raise DomainError(f"{where}: the {label} relations contradict each other (a cycle)")
    return Scene.from_matrices(objects, closure(rel["x"]), closure(rel["y"]))


def write_jsonl(scenes: Iterable[Scene], path: str | Path) -> int:
    """Write one scene JSON object per line; returns the number written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for scene in scenes:
            f.write(json.dumps(scene.to_json(), separators=(",", ":")) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[Scene]:
    """Scenes of a JSON-lines file written by :func:`write_jsonl` (blank lines skipped); errors name the line."""
    scenes = []
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DomainError(f"{path}: line {lineno} is not JSON ({exc.msg})") from None
            scenes.append(scene_from_json(data, f"{path}: line {lineno}"))
    return scenes


def read_scene_rows(path: str | Path) -> Iterator[Row | BadRow]:
    """Each non-blank line of a JSON-lines scene file as a :class:`~molgen.io.Row` (``location`` ``line N``, the line's
    text in ``smiles``, the field every domain's featurizer reads); a line that is not a JSON object is a
    :class:`~molgen.io.BadRow` saying so. Whether it is a valid scene is checked later, by the domain."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scene file")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield BadRow(f"line {lineno}", text[:200], f"not JSON ({exc.msg} at character {exc.pos})")
                continue
            if not isinstance(data, dict):
                yield BadRow(f"line {lineno}", text[:200], f"a scene is a JSON object, got {type(data).__name__}")
                continue
            yield Row(f"line {lineno}", text)


class SceneWriter:
    """Stream sampled scenes to a JSON-lines file (``.jsonl``), one record per sample, flushed as written:
    ``{"index": k, "state": "valid" | "duplicate" | "invalid", "scene": {...} | null, <extra columns>,
    "properties": {...}, "error": "..." | null}``; ``scene`` is :meth:`Scene.to_json` (objects with a layout and the
    four relationship lists), readable by :func:`scene_from_json`.

    Same interface as :class:`molgen.io.MoleculeWriter` (``write(item, state, error, properties, extra)``).
    """

    def __init__(
        self, path: str | Path, property_names: list[str], extra_columns: list[str] | None = None, append_from: int | None = None
    ) -> None:
        """``append_from``: continue a file that already holds this many complete records (see
        :func:`scene_resume_point`); None writes a new file."""
        self.path = Path(path)
        if self.path.suffix.lower() != ".jsonl":
            raise ValueError(f"{self.path}: scenes are written as JSON lines; give a .jsonl file")
        self.property_names = list(property_names)
        self.extra = list(extra_columns or [])
        self.count = append_from or 0
        self._file = open(self.path, "w" if append_from is None else "a", encoding="utf-8")

    def write(
        self, scene: Scene | None, state: str, error: str | None = None, properties: dict[str, float] | None = None,
        extra: dict | None = None,
    ) -> None:  # fmt: skip
        properties, extra = properties or {}, extra or {}
        record: dict[str, Any] = {"index": self.count, "state": state, "scene": None if scene is None else scene.to_json()}
        record.update({c: extra.get(c) for c in self.extra})
        if self.property_names:
            record["properties"] = {n: properties.get(n) for n in self.property_names}
        record["error"] = error
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SceneWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scene_resume_point(path: str | Path, property_names: list[str], extra_columns: list[str] | None = None) -> tuple[int, list[Scene]]:
    """How many complete records an interrupted :class:`SceneWriter` output holds, and the scenes of its valid and
    duplicate ones, in order (so that later repeats are still marked duplicate). A line cut off mid-write is removed
    from the file. Raises ValueError naming the file when it is not such an output."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8")
    complete = text[: text.rfind("\n") + 1]
    count, seen = 0, []
    for lineno, line in enumerate(complete.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{path}: cannot resume: line {lineno} is not JSON (not a molgen scene output?)") from None
        if not isinstance(record, dict) or record.get("index") != count:
            raise ValueError(f"{path}: cannot resume: line {lineno} is not record {count} of a molgen scene output")
        if record.get("scene") is not None and record.get("state") in ("valid", "duplicate"):
            seen.append(scene_from_json(record["scene"], f"{path}: line {lineno}"))
        count += 1
    if len(complete) < len(text):
        path.write_bytes(complete.encode("utf-8"))
    return count, seen
