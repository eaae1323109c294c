"""Vector stores: the protocol and its Qdrant adapters."""

from clipsearch.store.base import (
    POOLED,
    WINDOWS_VECTOR,
    ClipPoint,
    Hit,
    PayloadFilter,
    Range,
    VectorExporter,
    VectorStore,
    WindowHit,
    clip_id,
)
from clipsearch.store.factory import StoreSettings, open_store

# The adapters (clipsearch.store.edge / .client) are imported on demand by open_store.
__all__ = [
    "POOLED",
    "WINDOWS_VECTOR",
    "ClipPoint",
    "Hit",
    "PayloadFilter",
    "Range",
    "StoreSettings",
    "VectorExporter",
    "VectorStore",
    "WindowHit",
    "clip_id",
    "open_store",
]
