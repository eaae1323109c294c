"""Text-to-video search: embed the query with the text tower, ask the vector store."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from clipsearch.errors import InvalidInput
from clipsearch.store.base import Hit, PayloadFilter, VectorStore

log = logging.getLogger(__name__)


class QueryEncoder(Protocol):
    """Anything that turns text into unit vectors: a loaded ``ClipEncoder`` in practice."""

    model_id: str

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 256
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchLimits:
    max_query_chars: int = 500
    max_k: int = 100


@dataclass(frozen=True)
class SearchResponse:
    query: str
    took_ms: float
    hits: list[Hit]


def validate_query(query: object, limits: SearchLimits) -> str:
    """The stripped query text, or ``InvalidInput`` saying what is wrong with it."""
    if not isinstance(query, str):
        raise InvalidInput("query must be a string", code="invalid_query")
    text = " ".join(query.split())
    if not text:
        raise InvalidInput("query is empty", code="empty_query")
    if len(text) > limits.max_query_chars:
        raise InvalidInput(
            f"query is {len(text)} characters; at most {limits.max_query_chars} allowed",
            code="query_too_long",
        )
    return text


def validate_k(k: object, limits: SearchLimits) -> int:
    """``k`` as an int in 1..max_k, or ``InvalidInput``."""
    if isinstance(k, bool) or not isinstance(k, int | str):
        raise InvalidInput("k must be an integer", code="invalid_k")
    try:
        value = int(k)
    except ValueError:
        raise InvalidInput(f"k must be an integer, got {k!r}", code="invalid_k") from None
    if not 1 <= value <= limits.max_k:
        raise InvalidInput(f"k must be between 1 and {limits.max_k}", code="invalid_k")
    return value


class SearchService:
    """Query embedding plus vector search; built once and shared by CLI and web app."""

    def __init__(
        self, encoder: QueryEncoder, store: VectorStore, limits: SearchLimits | None = None
    ):
        self.encoder = encoder
        self.store = store
        self.limits = limits or SearchLimits()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def search(
        self, query: object, k: object = 10, *, filter: PayloadFilter | None = None
    ) -> SearchResponse:
        """Top-k clips for a text query (validated; bad input raises ``InvalidInput``)."""
        text = validate_query(query, self.limits)
        top_k = validate_k(k, self.limits)
        start = time.perf_counter()
        vector = self.encoder.encode_text([text])[0]
        hits = self.store.search(vector, top_k, filter=filter)
        took_ms = (time.perf_counter() - start) * 1000
        log.debug("query %r: %d hits in %.1f ms", text, len(hits), took_ms)
        return SearchResponse(text, took_ms, hits)

    def clip(self, clip_id: str) -> Hit | None:
        """One indexed clip's payload by id, or None."""
        found = self.store.retrieve([clip_id])
        point = found.get(clip_id)
        return Hit(point.id, 1.0, point.payload) if point else None

    def store_model(self) -> str | None:
        """The model id recorded with a stored clip (None for an empty store)."""
        dim = self.store.dim()
        if not dim:
            return None
        probe = np.zeros(dim, dtype=np.float32)
        probe[0] = 1.0
        hits = self.store.search(probe, 1)
        return hits[0].payload.get("model") if hits else None

    def model_mismatch(self) -> str | None:
        """A warning when the store was filled by another model than the one querying it."""
        return self._mismatch_warning(self.store_model())

    def _mismatch_warning(self, stored: str | None) -> str | None:
        if stored is None or stored == self.model_id:
            return None
        return (
            f"the store holds clips embedded with model {stored!r}, but queries use "
            f"{self.model_id!r}: scores are meaningless; re-ingest or pass the matching --model"
        )

    def health(self) -> dict[str, Any]:
        stored = self.store_model()
        info: dict[str, Any] = {
            "model": self.model_id,
            "store": self.store.kind,
            "clips": self.store.count(),
            "store_model": stored,
        }
        warning = self._mismatch_warning(stored)
        if warning:
            info["warning"] = warning
        return info
