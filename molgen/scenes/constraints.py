"""What a constrained scene request asks for, and whether a scene gives it: object counts ("2 red cubes", "at least
one metal sphere", "no cylinders", "6 objects"), relations ("something left of a metal sphere") and containment of
a partial scene (completion: its objects, attributes and relations back exactly).

A request is written as clauses separated by ``;``, ``,`` or ``and``:

- ``[quantity] description``: a count. Quantity: ``N`` or ``exactly N`` (exactly N), ``at least N``, ``at most N``,
  ``a`` / ``an`` / ``some`` (at least one), ``no`` (none); numbers are digits or ``one`` .. ``ten``. Description:
  attribute values, then a noun: ``cube``, ``sphere``, ``cylinder`` (``block``, ``ball`` are accepted) or
  ``object`` / ``thing`` for any shape; plurals allowed. ``6 objects`` is the object count. Without a quantity a
  clause means at least one (``red cube``).
- ``description relation description``: some object of the first description stands in the relation to some
  other object of the second (``something left of a metal sphere``, ``a red cube behind a cylinder``). Relations:
  ``left of``, ``right of``, ``behind``, ``in front of`` (``to the left of`` ... too); ``something``,
  ``anything``, ``an object`` describe any object.

Counts and relations are checked on the scene's closed relations, CLEVR's way: ``a`` is left of ``b`` when ``b``
is right of ``a``. Nothing here imports torch.

>>> request = parse_request("2 red cubes; something left of a metal sphere")
>>> [c.describe() for c in request]
['exactly 2 red cubes', 'something left of a metal sphere']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx
from networkx.algorithms.isomorphism import DiGraphMatcher

from molgen.scenes.metrics import relation_digraph
from molgen.scenes.scene import ATTRIBUTES, RELATIONS, Scene, SceneObject, closure

__all__ = [
    "Constraint",
    "Contains",
    "Count",
    "ObjectPattern",
    "Relation",
    "parse_request",
    "unmet",
]

NUMBERS = {w: k for k, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"))}
ALIASES = {
    "ball": "sphere", "block": "cube", "grey": "gray", "shiny": "metal", "metallic": "metal", "matte": "rubber",
    "big": "large", "tiny": "small",
}  # fmt: skip
ANY_NOUNS = ("object", "thing")
ANY_WORDS = ("something", "anything")
RELATION_WORDS = {"left of": "left", "right of": "right", "behind": "behind", "in front of": "front"}
ARTICLES = ("a", "an", "some", "the")
_VALUE_OF = {value: name for name, values in ATTRIBUTES.items() for value in values}  # "red" -> "color"


@dataclass(frozen=True)
class ObjectPattern:
    """Some attribute values an object must have (None: any value)."""

    shape: str | None = None
    color: str | None = None
    material: str | None = None
    size: str | None = None

    def matches(self, obj: SceneObject) -> bool:
        return all(getattr(self, name) in (None, getattr(obj, name)) for name in ATTRIBUTES)

    def given(self) -> dict[str, str]:
        """The attributes this pattern fixes, e.g. {"color": "red", "shape": "cube"}."""
        return {name: getattr(self, name) for name in ATTRIBUTES if getattr(self, name) is not None}

    def describe(self, plural: bool = False) -> str:
        """'large red metal cube(s)' / 'object(s)' when nothing is fixed."""
        words = [getattr(self, name) for name in ("size", "color", "material") if getattr(self, name) is not None]
        noun = self.shape or "object"
        return " ".join([*words, noun + ("s" if plural else "")])


class Constraint:
    """What every constraint offers: ``check(scene)`` and a ``describe()`` for messages."""

    def check(self, scene: Scene) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Count(Constraint):
    """Between ``low`` and ``high`` (None: no upper bound) objects match ``pattern`` (the empty pattern: the object
    count)."""

    pattern: ObjectPattern
    low: int = 1
    high: int | None = None

    def __post_init__(self) -> None:
        if self.low < 0 or (self.high is not None and self.high < self.low):
            raise ValueError(f"count of {self.pattern.describe(True)}: bounds {self.low}..{self.high} are empty")

    def count(self, scene: Scene) -> int:
        return sum(self.pattern.matches(o) for o in scene.objects)

    def check(self, scene: Scene) -> bool:
        n = self.count(scene)
        return n >= self.low and (self.high is None or n <= self.high)

    def describe(self) -> str:
        noun = self.pattern.describe(plural=True)
        if self.high == self.low:
            return f"no {noun}" if self.low == 0 else f"exactly {self.low} {self.pattern.describe(self.low != 1)}"
        if self.high is None:
            return f"at least {self.low} {self.pattern.describe(self.low != 1)}"
        if self.low == 0:
            return f"at most {self.high} {self.pattern.describe(self.high != 1)}"
        return f"between {self.low} and {self.high} {noun}"


@dataclass(frozen=True)
class Relation(Constraint):
    """Some object matching ``subject`` is ``relation`` (left, right, behind, front) of another matching ``obj``."""

    subject: ObjectPattern
    relation: str
    obj: ObjectPattern

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"relation {self.relation!r}: must be one of {list(RELATIONS)}")

    def pairs(self, scene: Scene) -> list[tuple[int, int]]:
        """(subject, object) index pairs that satisfy the relation."""
        axis, converse = RELATIONS[self.relation]
        after = closure(scene.matrix(axis))  # [i, j]: j right of / behind i
        out = []
        for a, sa in enumerate(scene.objects):
            if not self.subject.matches(sa):
                continue
            for b, sb in enumerate(scene.objects):
                # a right of b: a after b; a left of b: b after a (converse)
                if a != b and self.obj.matches(sb) and (after[a, b] if converse else after[b, a]):
                    out.append((a, b))
        return out

    def check(self, scene: Scene) -> bool:
        return bool(self.pairs(scene))

    def describe(self) -> str:
        subject = "something" if not self.subject.given() else f"a {self.subject.describe()}"
        words = {"left": "left of", "right": "right of", "behind": "behind", "front": "in front of"}[self.relation]
        obj = "something" if not self.obj.given() else f"a {self.obj.describe()}"
        return f"{subject} {words} {obj}"


def _label_match(a: dict, b: dict) -> bool:
    return a["label"] == b["label"]


@dataclass(frozen=True)
class Contains(Constraint):
    """The scene holds ``partial`` exactly: an object for each of its objects, with the same attributes, and the
    same relations between them on both axes (an induced sub-scene, relations closed). ``form`` is the model's:
    in the dense form every related pair counts."""

    partial: Scene
    form: str = "dense"
    _graph: nx.DiGraph = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_graph", relation_digraph(self.partial, "dense"))

    def embedding(self, scene: Scene) -> dict[int, int] | None:
        """partial object -> scene object, or None when the scene does not hold the partial scene."""
        matcher = DiGraphMatcher(relation_digraph(scene, "dense"), self._graph, node_match=_label_match, edge_match=_label_match)
        for mapping in matcher.subgraph_isomorphisms_iter():
            return dict(sorted((p, s) for s, p in mapping.items()))
        return None

    def check(self, scene: Scene) -> bool:
        return self.embedding(scene) is not None

    def describe(self) -> str:
        return f"the {self.partial.num_objects} given objects and their relations"


def unmet(scene: Scene, constraints: Iterable[Constraint]) -> list[str]:
    """The descriptions of the constraints ``scene`` does not satisfy (empty: all satisfied)."""
    return [c.describe() for c in constraints if not c.check(scene)]


# --- parsing ---------------------------------------------------------------------------------------------------


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBERS.get(word)


def _singular(word: str) -> str:
    word = ALIASES.get(word, word)
    if word.endswith("es") and word[:-2] in ("sphere", "cube"):  # no such plural, but harmless
        word = word[:-2]
    if word.endswith("s") and (word[:-1] in ATTRIBUTES["shape"] or word[:-1] in ANY_NOUNS or word[:-1] in ALIASES):
        word = ALIASES.get(word[:-1], word[:-1])
    return word


def _description(words: list[str], clause: str) -> ObjectPattern:
    """Attribute words and a noun (or 'something') -> a pattern; errors name the clause and the word."""
    values: dict[str, str] = {}
    noun_seen = False
    for word in words:
        if word in ANY_WORDS:
            noun_seen = True
            continue
        w = _singular(word)
        if w in ANY_NOUNS:
            noun_seen = True
            continue
        name = _VALUE_OF.get(w)
        if name is None:
            known = sorted({*_VALUE_OF, *ALIASES, *ANY_NOUNS, *ANY_WORDS})
            raise ValueError(f"request clause {clause!r}: unknown word {word!r} (known: {', '.join(known)})")
        if name in values and values[name] != w:
            raise ValueError(f"request clause {clause!r}: two {name}s given ({values[name]!r} and {w!r})")
        values[name] = w
        noun_seen = noun_seen or name == "shape"
    if not words:
        raise ValueError(f"request clause {clause!r}: describe the objects (e.g. 'red cube', 'metal object')")
    return ObjectPattern(**values)


def _strip_article(words: list[str]) -> list[str]:
    return words[1:] if words and words[0] in ARTICLES else words


def _parse_clause(clause: str) -> Constraint:
    text = " " + re.sub(r"\s+", " ", clause.strip().lower()) + " "
    text = text.replace(" to the left of ", " left of ").replace(" to the right of ", " right of ")
    for phrase, relation in RELATION_WORDS.items():
        if f" {phrase} " in text:
            left, right = text.split(f" {phrase} ", 1)
            if any(f" {p} " in f" {right} " for p in RELATION_WORDS):
                raise ValueError(f"request clause {clause!r}: one relation per clause (split it with ';')")
            subject, obj = _strip_article(left.split()), _strip_article(right.split())
            if subject and (_number(subject[0]) is not None or subject[0] in ("no", "at", "exactly")):
                raise ValueError(f"request clause {clause!r}: a relation clause says 'a ... {phrase} a ...', without a count")
            return Relation(_description(subject, clause), relation, _description(obj, clause))
    words = text.split()
    low, high = 1, None
    if words[:2] in (["at", "least"], ["at", "most"]) or words[:1] == ["exactly"]:
        lead = 2 if words[0] == "at" else 1
        n = _number(words[lead]) if len(words) > lead else None
        if n is None:
            raise ValueError(f"request clause {clause!r}: a number must follow {' '.join(words[:lead])!r}")
        low, high = {"least": (n, None), "most": (0, n)}.get(words[1], (n, n))
        words = words[lead + 1 :]
    elif words and words[0] == "no":
        low, high, words = 0, 0, words[1:]
    elif words and _number(words[0]) is not None:
        n = _number(words[0])
        low, high, words = n, n, words[1:]
    else:
        words = _strip_article(words)
    return Count(_description(words, clause), low, high)


def parse_request(text: str | Sequence[Constraint]) -> list[Constraint]:
    """A request (module docstring) -> its constraints; constraints given as such are returned as a list."""
    if not isinstance(text, str):
        return list(text)
    clauses = [c for c in re.split(r";|,|\band\b", text) if c.strip()]
    if not clauses:
        raise ValueError(f"request {text!r}: nothing asked for (e.g. '2 red cubes; something left of a metal sphere')")
    return [_parse_clause(c) for c in clauses]
