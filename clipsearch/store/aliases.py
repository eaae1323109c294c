"""Versioned collections read through an alias: re-embedding with no downtime.

``clipsearch ingest --alias videos`` fills a new collection ``videos__<model>__<UTC time>``
while the app keeps answering from the one the alias names, then points the alias at the
new collection in one atomic step. The app pins the concrete collection it opened and
follows the alias when it moves (:mod:`clipsearch.live`), loading the new collection's model
from the reference recorded with it.

- **Qdrant server / local mode**: a real Qdrant alias. The window collection has its own
  alias, ``<alias>_moments``; both move in one ``update_collection_aliases`` call, which
  Qdrant applies atomically. The model reference is collection metadata.
- **Qdrant Edge**: collections are directories under the store folder and the alias is a
  symbolic link beside them (``<folder>/videos -> videos__demo-1f2e__20261202T101500``),
  replaced with ``rename(2)``, which is atomic. The model reference is a JSON file in the
  collection's directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from clipsearch.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from clipsearch.store.client import QdrantClientStore
    from clipsearch.store.factory import StoreSettings

if sys.platform != "win32":
    import fcntl

SEPARATOR = "__"
EDGE_MODEL_FILE = "clipsearch_collection.json"
MODEL_REF_KEY = "clipsearch_model"
MODEL_ID_KEY = "clipsearch_model_id"
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_TIME = re.compile(r"__(\d{8}T\d{6})$")


def check_alias(name: str) -> str:
    """``name`` if it can be an alias (letters, digits, ``-``, ``_``; no ``__``)."""
    if not _ALIAS.match(name) or SEPARATOR in name or name.endswith("_moments"):
        raise InvalidInput(
            f"alias {name!r} must be 1-63 letters, digits, '-' or '_', start with a letter or "
            "digit, and contain no '__' and no '_moments' suffix"
        )
    return name


def model_slug(model_id: str) -> str:
    """A model id as it may appear in a collection name."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", model_id).strip("-")[:48] or "model"


def version_name(alias: str, model_id: str, when: datetime) -> str:
    """``<alias>__<model>__<YYYYmmddTHHMMSS>`` (UTC)."""
    return f"{check_alias(alias)}{SEPARATOR}{model_slug(model_id)}{SEPARATOR}{when:%Y%m%dT%H%M%S}"


def version_time(name: str) -> str:
    """The time stamp of a version name ("" for a name without one)."""
    match = _TIME.search(name)
    return match.group(1) if match else ""


@dataclass(frozen=True)
class ModelRef:
    """The checkpoint a collection was embedded with: what to load (a hub id or an
    absolute directory) and the model id it reports."""

    ref: str
    model_id: str


class AliasCatalog(Protocol):
    """The versions of an alias, where it points, and the atomic swap."""

    def target(self, alias: str) -> str | None:
        """The collection ``alias`` points at, None if there is no such alias."""
        ...

    def versions(self, alias: str) -> list[str]:
        """Every collection built for ``alias``, oldest first."""
        ...

    def settings_for(self, base: StoreSettings, version: str) -> StoreSettings:
        """``base`` pointed at collection ``version``."""
        ...

    def write_model(self, version: str, model: ModelRef) -> None: ...

    def read_model(self, version: str) -> ModelRef | None: ...

    def swap(self, alias: str, version: str) -> str | None:
        """Point ``alias`` at ``version`` in one atomic step; the previous target."""
        ...

    def drop(self, version: str) -> None:
        """Delete collection ``version`` (StoreError if it is in use)."""
        ...

    def close(self) -> None: ...


def _is_version_of(alias: str, name: str) -> bool:
    return name.startswith(alias + SEPARATOR) and bool(version_time(name))


def _oldest_first(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (version_time(n), n))


class EdgeCatalog:
    """Versions as directories under ``root``; the alias a symbolic link beside them."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if (self.root / "edge_config.json").exists():
            raise InvalidInput(
                f"{self.root} is a store, not a folder of collections: with --alias, give "
                "--store a folder for the versions (e.g. var/stores) and serve "
                "--store <folder>/<alias>"
            )

    def target(self, alias: str) -> str | None:
        link = self.root / alias
        if link.is_symlink():
            return Path(os.readlink(link)).name
        if link.exists():
            raise InvalidInput(
                f"{link} exists and is not an alias link: pick another alias or move it away"
            )
        return None

    def versions(self, alias: str) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.is_symlink() and _is_version_of(alias, p.name)
        ]
        return _oldest_first(names)

    def settings_for(self, base: StoreSettings, version: str) -> StoreSettings:
        return replace(base, path=str(self.root / version), url=None)

    def write_model(self, version: str, model: ModelRef) -> None:
        path = self.root / version / EDGE_MODEL_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"model": model.ref, "model_id": model.model_id}) + "\n")
        os.replace(tmp, path)

    def read_model(self, version: str) -> ModelRef | None:
        try:
            data = json.loads((self.root / version / EDGE_MODEL_FILE).read_text())
            return ModelRef(str(data["model"]), str(data["model_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def swap(self, alias: str, version: str) -> str | None:
        if not (self.root / version).is_dir():
            raise StoreError(f"cannot point alias {alias!r} at {version!r}: no such collection")
        previous = self.target(alias)
        tmp = self.root / f".{alias}.swap-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(version, tmp)  # relative: the folder can move
        os.replace(tmp, self.root / alias)
        _fsync_dir(self.root)
        return previous

    def close(self) -> None:
        """Nothing to release."""

    def drop(self, version: str) -> None:
        from clipsearch.store.edge import LOCK_FILE

        path = self.root / version
        if not path.is_dir():
            return
        with open(path / LOCK_FILE, "a+", encoding="utf-8") as handle:
            if sys.platform != "win32":
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StoreError(
                        f"collection {version} is still open in another process (a server "
                        "that has not moved to the new one yet)"
                    ) from None
            # renamed first, so a half-finished delete never looks like a collection
            doomed = self.root / f".dropped-{version}-{os.getpid()}"
            os.replace(path, doomed)
        shutil.rmtree(doomed)


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _moments(name: str) -> str:
    from clipsearch.store.client import MOMENTS_SUFFIX

    return f"{name}{MOMENTS_SUFFIX}"


class ClientCatalog:
    """Qdrant aliases (``alias`` and ``alias_moments``) through a ``QdrantClient``."""

    def __init__(self, client: QdrantClient, *, owns_client: bool = False):
        self.client = client
        self.owns_client = owns_client

    def close(self) -> None:
        if self.owns_client:
            self.client.close()

    def _aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def target(self, alias: str) -> str | None:
        found = self._aliases().get(alias)
        if found is None and self.client.collection_exists(alias):
            raise InvalidInput(f"{alias!r} is a collection, not an alias: pick another alias name")
        return found

    def versions(self, alias: str) -> list[str]:
        names = [c.name for c in self.client.get_collections().collections]
        return _oldest_first([n for n in names if _is_version_of(alias, n)])

    def settings_for(self, base: StoreSettings, version: str) -> StoreSettings:
        return replace(base, collection=version)

    def write_model(self, version: str, model: ModelRef) -> None:
        self.client.update_collection(
            version, metadata={MODEL_REF_KEY: model.ref, MODEL_ID_KEY: model.model_id}
        )

    def read_model(self, version: str) -> ModelRef | None:
        metadata = self.client.get_collection(version).config.metadata or {}
        if MODEL_REF_KEY not in metadata or MODEL_ID_KEY not in metadata:
            return None
        return ModelRef(str(metadata[MODEL_REF_KEY]), str(metadata[MODEL_ID_KEY]))

    def swap(self, alias: str, version: str) -> str | None:
        from qdrant_client import models as qm

        for name in (version, _moments(version)):
            if not self.client.collection_exists(name):
                raise StoreError(f"cannot point alias {alias!r} at {version!r}: no {name!r}")
        previous = self.target(alias)
        current = self._aliases()
        ops: list[qm.DeleteAliasOperation | qm.CreateAliasOperation] = []
        for name, target in ((alias, version), (_moments(alias), _moments(version))):
            if name in current:
                ops.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=name)))
            ops.append(
                qm.CreateAliasOperation(
                    create_alias=qm.CreateAlias(collection_name=target, alias_name=name)
                )
            )
        self.client.update_collection_aliases(change_aliases_operations=ops)
        return previous

    def drop(self, version: str) -> None:
        for name in (version, _moments(version)):
            self.client.delete_collection(name)


def alias_catalog(settings: StoreSettings) -> tuple[AliasCatalog, str] | None:
    """(catalog, alias) when ``settings`` names an alias, else None: an Edge path that is an
    alias link, or a server collection name that is an alias or not taken yet (so an app
    started before the first ``--alias`` ingest follows it once it exists)."""
    if not settings.embedded:
        assert settings.url is not None
        from clipsearch.store.factory import MEMORY_URL

        if settings.url == MEMORY_URL or not _could_be_alias(settings.collection):
            return None
        from clipsearch.store.client import QdrantClientStore

        probe = QdrantClientStore.from_url(
            settings.url, settings.collection, api_key=settings.api_key
        )
        catalog = ClientCatalog(probe.client, owns_client=True)
        try:
            catalog.target(settings.collection)
        except InvalidInput:  # a plain collection: nothing to follow
            catalog.close()
            return None
        except Exception:  # not reachable yet: follow it, the app looks again later
            pass
        return catalog, settings.collection
    if settings.path and Path(settings.path).is_symlink():
        path = Path(settings.path)
        return EdgeCatalog(path.parent), path.name
    return None


def _could_be_alias(name: str) -> bool:
    try:
        check_alias(name)
    except InvalidInput:
        return False
    return True


def version_catalog(
    settings: StoreSettings, alias: str
) -> tuple[AliasCatalog, QdrantClientStore | None]:
    """The catalog in which versions of ``alias`` are built on the store ``settings``
    names: a server's aliases, through a store opened on ``alias`` (returned too, so the
    version can share its connection; the caller closes it), or Edge's folder of
    versions (``settings.path``)."""
    check_alias(alias)
    if not settings.embedded:
        from clipsearch.store.client import QdrantClientStore
        from clipsearch.store.factory import open_store

        probe = open_store(replace(settings, collection=alias))
        assert isinstance(probe, QdrantClientStore)
        return ClientCatalog(probe.client), probe
    if not settings.path:
        raise StoreError("no vector store configured: give a store path or a Qdrant URL")
    return EdgeCatalog(settings.path), None
