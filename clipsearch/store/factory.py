"""Open the configured vector store: a Qdrant server URL, in-memory, or a Qdrant Edge path."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from clipsearch.errors import InvalidInput
from clipsearch.store.base import VectorStore
from clipsearch.store.read_cache import DEFAULT_VIDEO_CACHE_MB

logger = logging.getLogger(__name__)

MEMORY_URL = ":memory:"


@dataclass(frozen=True)
class StoreSettings:
    """Where the vectors live.

    ``url`` (a Qdrant server, or ``":memory:"``) takes precedence over ``path`` (a Qdrant
    Edge directory). ``collection`` and ``api_key`` only apply to a URL; ``cache_mb``
    (the result videos an Edge store keeps decoded in memory) only to a path.
    """

    path: str | None = "var/store"
    url: str | None = None
    collection: str = "clips"
    api_key: str | None = field(default=None, repr=False)
    cache_mb: float = DEFAULT_VIDEO_CACHE_MB
    # a Qdrant cluster: how collections created through a URL are sharded and replicated
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    # seconds a Qdrant server call may take before it fails (the app then answers 503)
    timeout_s: int = 10

    @property
    def embedded(self) -> bool:
        """Whether this is a Qdrant Edge directory (one process holds it), not a server."""
        return not self.url


def open_store(settings: StoreSettings) -> VectorStore:
    """Open the store described by ``settings`` (the collection may not exist yet). This,
    :func:`clipsearch.store.aliases.alias_catalog` and
    :func:`clipsearch.store.aliases.version_catalog` are where Edge or server is decided."""
    if not settings.embedded:
        assert settings.url is not None
        from clipsearch.store.client import QdrantClientStore

        if settings.url == MEMORY_URL:
            logger.info("using an in-memory Qdrant store (collection %r)", settings.collection)
            return QdrantClientStore.in_memory(settings.collection)
        logger.info("using Qdrant server %s (collection %r)", settings.url, settings.collection)
        from clipsearch.store.client import Distribution

        return QdrantClientStore.from_url(
            settings.url,
            settings.collection,
            api_key=settings.api_key,
            timeout=settings.timeout_s,
            distribution=Distribution(
                settings.shard_number,
                settings.replication_factor,
                settings.write_consistency_factor,
            ),
        )
    if settings.path:
        from clipsearch.store.edge import QdrantEdgeStore

        path = Path(settings.path)
        if path.is_symlink():  # an alias: pin the collection it names now
            path = path.resolve()
        logger.info("using Qdrant Edge store %s", path)
        return QdrantEdgeStore(path, video_cache_mb=settings.cache_mb)
    raise InvalidInput("no vector store configured: give a store path or a Qdrant URL")
