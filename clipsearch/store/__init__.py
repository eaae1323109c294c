"""Vector stores: the protocol and its Qdrant adapters."""

from clipsearch.store.base import (
    POOLED,
    SEGMENTS,
    ClipPoint,
    Hit,
    PayloadFilter,
    Range,
    SegmentHit,
    VectorExporter,
    VectorStore,
    clip_id,
)
from clipsearch.store.factory import StoreSettings, open_store

# The adapters (clipsearch.store.edge / .client) are imported on demand by open_store.
__all__ = [
    "POOLED",
    "SEGMENTS",
    "ClipPoint",
    "Hit",
    "PayloadFilter",
    "Range",
    "SegmentHit",
    "StoreSettings",
    "VectorExporter",
    "VectorStore",
    "clip_id",
    "open_store",
]
