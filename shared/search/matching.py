"""Whether a changed image could be in a query's matching set: the over-approximation the result cache
keeps a page by (functions/search_api/cache.py), for the local index's query semantics (postgres.py).

A query's result page, total and facets are a function of its matching set: the images that pass its
filters and match its keyword leg (the tsvector against the normalised tsquery) or its vector leg (cosine
distance within the relevance floor), or, without either leg, every image that passes the filters. An image
that is in that set neither before nor after a change cannot move the page (see MatchRule for the legs'
limits). `may_match` answers "could it be in the set?" and only says no when it is certain:
- filters are evaluated exactly as SQL does (real comparisons in float32); exclusions are ignored (only
  similar images use them, and ignoring one only says yes more often);
- the keyword leg: Postgres's own normalisation of the query (websearch_to_tsquery, as text) parsed into a
  tree whose every node answers over-approximately: a lexeme is present in the image's lexemes (a prefix
  matches any lexeme it begins; weights are ignored), AND and phrase need both sides, OR either, NOT
  always "may" (a negation is never trusted to exclude). An empty query (only stop words) also "may".
- the vector leg: the distance pgvector would compute (both vectors at half precision) against the floor,
  with a margin far above the float rounding between numpy and pgvector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np

from shared.search.port import SearchFilters, SearchQuery

# Cosine distances are computed in float64 here and in float32 by pgvector: they differ by ~1e-6.
DISTANCE_MARGIN: Final = 1e-3


@dataclass(frozen=True)
class ImageState:
    """One side (before or after) of a changed serving-index row: what decides whether it matches."""

    lexemes: frozenset[str]
    embedding: np.ndarray | None  # float32, the stored half-precision values; None: not in the vector leg
    category: str | None
    orientation: str
    colors: tuple[str, ...]
    contributor_id: str
    usage: str
    safety_score: float
    width: int
    height: int
    added_at: datetime


# --- the keyword leg: a parsed tsquery ------------------------------------------------------------


@dataclass(frozen=True)
class Lexeme:
    text: str
    prefix: bool = False


@dataclass(frozen=True)
class Op:
    kind: str  # "&", "|" or "<->" (any phrase distance)
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Anything:
    """A query this parser cannot read, or an empty one: may match any image."""


Node = Lexeme | Op | Not | Anything

_TOKEN = re.compile(r"\s*(?:(?P<lex>'(?:[^']|'')*')(?::(?P<flags>[*A-Da-d]+))?|(?P<op><(?:-|\d+)>|[&|!()]))")


class _Parser:
    """Recursive descent over tsquery's output form. Precedence, loosest first: |, &, <N>, !."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"unreadable tsquery at {pos}: {text!r}")
            if m.group("lex") is not None:
                self.tokens.append(("lex", m.group("lex")[1:-1].replace("''", "'"), m.group("flags") or ""))
            else:
                self.tokens.append(("op", m.group("op"), ""))
            pos = m.end()
        self.at = 0

    def peek(self) -> tuple[str, str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str, str]:
        token = self.peek()
        if token is None:
            raise ValueError("tsquery ends early")
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek() is not None:
            raise ValueError("tsquery has trailing tokens")
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.peek() == ("op", "|", ""):
            self.take()
            node = Op("|", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.phrase()
        while self.peek() == ("op", "&", ""):
            self.take()
            node = Op("&", node, self.phrase())
        return node

    def phrase(self) -> Node:
        node = self.unary()
        while (token := self.peek()) is not None and token[0] == "op" and token[1].startswith("<"):
            self.take()
            node = Op("<->", node, self.unary())
        return node

    def unary(self) -> Node:
        kind, value, flags = self.take()
        if kind == "lex":
            return Lexeme(value, prefix="*" in flags)
        if value == "!":
            return Not(self.unary())
        if value == "(":
            node = self.disjunction()
            if self.take() != ("op", ")", ""):
                raise ValueError("unbalanced parentheses")
            return node
        raise ValueError(f"unexpected {value!r}")


def parse_tsquery(text: str) -> Node:
    """Postgres's text form of a tsquery (`websearch_to_tsquery(...)::text`) as a tree; Anything when empty
    or unreadable (never an error: an unreadable query only costs its cached pages on every change)."""
    if not text.strip():
        return Anything()
    try:
        return _Parser(text).parse()
    except ValueError:
        return Anything()


def text_may_match(node: Node, lexemes: frozenset[str]) -> bool:
    match node:
        case Lexeme(text=text, prefix=False):
            return text in lexemes
        case Lexeme(text=text, prefix=True):
            return any(lexeme.startswith(text) for lexeme in lexemes)
        case Op(kind="|", left=left, right=right):
            return text_may_match(left, lexemes) or text_may_match(right, lexemes)
        case Op(left=left, right=right):  # & and phrases need both sides
            return text_may_match(left, lexemes) and text_may_match(right, lexemes)
    return True  # Not, Anything


def anchors(node: Node) -> frozenset[str] | None:
    """Lexemes of which an image the node may match holds at least one (None: no such set is known), so
    the cache finds the pages a changed image may touch by its lexemes instead of testing every page."""
    match node:
        case Lexeme(text=text, prefix=False):
            return frozenset({text})
        case Op(kind="|", left=left, right=right):
            a, b = anchors(left), anchors(right)
            return None if a is None or b is None else a | b
        case Op(left=left, right=right):
            a, b = anchors(left), anchors(right)
            if a is None or b is None:
                return a if b is None else b
            return a if len(a) <= len(b) else b
    return None


# --- a query's rule ---------------------------------------------------------------------------


def half(vector: Iterable[float]) -> np.ndarray:
    """A vector as pgvector's halfvec holds it, in float32 (the serving table and its queries are halfvec)."""
    return np.asarray(list(vector), dtype=np.float32).astype(np.float16).astype(np.float32)


@dataclass(frozen=True)
class MatchRule:
    """What decides whether an image is in one query's matching set (see the module docstring).

    The legs' own limits never add an image to the set: the keyword leg ranks at most its newest
    SEARCH_KEYWORD_MATCH_CAP matches and the vector leg looks at most at `candidates` neighbours; an image
    outside the tsquery's matches, or beyond the floor, moves neither (farther than every image within the
    floor, it never displaces one of them among the nearest).
    """

    filters: SearchFilters
    text: Node | None = None  # None: no keyword leg
    vector: np.ndarray | None = field(default=None, compare=False)  # half precision; None: no vector leg
    max_distance: float = 0.0

    @property
    def browse(self) -> bool:
        return self.text is None and self.vector is None

    def may_match(self, image: ImageState) -> bool:
        if not passes(self.filters, image):
            return False
        if self.browse:
            return True
        if self.text is not None and text_may_match(self.text, image.lexemes):
            return True
        return self.vector is not None and image.embedding is not None and self.within_floor(image.embedding)

    def within_floor(self, embedding: np.ndarray) -> bool:
        assert self.vector is not None
        if embedding.shape != self.vector.shape:
            return True  # another model's vector: not comparable, so not trusted to be far
        distance = cosine_distance(self.vector, embedding[None, :])[0]
        return not distance > self.max_distance + DISTANCE_MARGIN  # NaN (a zero vector): may match


def cosine_distance(vector: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of `vector` with each row of `matrix`, in float64 (NaN for a zero vector)."""
    v, m = vector.astype(np.float64), matrix.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (m @ v) / (np.linalg.norm(m, axis=1) * np.linalg.norm(v))


def rule_legs(query: SearchQuery) -> tuple[bool, bool]:
    """Which legs the query runs (the port's contract: hybrid uses whichever is given)."""
    use_text = bool(query.text and query.text.strip()) and query.mode != "semantic"
    use_vector = query.vector is not None and query.mode != "keyword"
    return use_text, use_vector


def passes(f: SearchFilters, image: ImageState) -> bool:
    """The filters as postgres.py's `_where` applies them (exclusions ignored: a yes is always safe)."""
    return (
        (f.category is None or image.category == f.category)
        and (f.orientation is None or image.orientation == f.orientation)
        and (f.color is None or f.color in image.colors)
        and (f.contributor_id is None or image.contributor_id == f.contributor_id)
        and (f.usage is None or image.usage == f.usage)
        and (f.max_safety_score is None or np.float32(image.safety_score) < np.float32(f.max_safety_score))
        and (f.min_width is None or image.width >= f.min_width)
        and (f.min_height is None or image.height >= f.min_height)
        and (f.added_after is None or image.added_at > f.added_after)
    )
