"""Collections on a Qdrant cluster: created sharded and replicated as configured."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import QdrantClient

from clipsearch.errors import InvalidInput
from clipsearch.store.client import Distribution, QdrantClientStore
from webapp.settings import store_settings_from_env


def test_both_collections_are_created_with_the_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = QdrantClient(":memory:")
    created: list[tuple[str, dict[str, Any]]] = []
    original = client.create_collection

    def record(name: str, **kwargs: Any) -> bool:
        created.append((name, kwargs))
        return original(name, **kwargs)

    monkeypatch.setattr(client, "create_collection", record)
    store = QdrantClientStore(client, "videos", distribution=Distribution(6, 2, 1))
    store.ensure_collection(8)
    assert sorted(name for name, _ in created) == ["videos", "videos_moments"]
    for _, kwargs in created:
        assert (
            kwargs["shard_number"],
            kwargs["replication_factor"],
            kwargs["write_consistency_factor"],
        ) == (6, 2, 1)
    store.close()


def test_default_distribution_leaves_it_to_the_server() -> None:
    assert Distribution() == Distribution(None, None, None)


@pytest.mark.parametrize("args", [(0, None, None), (None, -1, None), (2, 1, 2), (True, None, None)])
def test_bad_distributions_are_refused(args: tuple[Any, Any, Any]) -> None:
    with pytest.raises(InvalidInput):
        Distribution(*args)


def test_distribution_from_the_environment() -> None:
    settings = store_settings_from_env(
        {
            "CLIPSEARCH_QDRANT_URL": "http://qdrant-node1:6333",
            "CLIPSEARCH_SHARD_NUMBER": "6",
            "CLIPSEARCH_REPLICATION_FACTOR": "2",
            "CLIPSEARCH_WRITE_CONSISTENCY_FACTOR": "1",
        }
    )
    assert (settings.shard_number, settings.replication_factor) == (6, 2)
    assert settings.write_consistency_factor == 1
