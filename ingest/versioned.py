"""Ingest into a new collection version of an alias, then move the alias to it.

``clipsearch ingest ROOT --alias videos`` opens (or resumes) ``videos__<model>__<time>``,
fills it like any store, records the model it was embedded with, and swaps the alias in one
atomic step (:mod:`clipsearch.store.aliases`). Apps reading through the alias keep answering
from the previous collection the whole time and move over on their own.

A build that stopped before its swap is resumed by the next ``--alias`` ingest with the same
model: a version gets its model recorded only when the alias moves to it, so a version of
this model without one is an unfinished build. ``--no-swap`` leaves a build unfinished on
purpose, to add another folder to it before the swap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from clipsearch.errors import StoreError
from clipsearch.store.aliases import (
    SEPARATOR,
    AliasCatalog,
    ClientCatalog,
    ModelRef,
    check_alias,
    model_slug,
    version_catalog,
    version_name,
)
from clipsearch.store.base import VectorStore
from clipsearch.store.factory import StoreSettings, open_store

if TYPE_CHECKING:
    from clipsearch.store.client import QdrantClientStore

DROP_WAIT_S = 30.0


@dataclass(frozen=True)
class VersionPlan:
    """Which collection an ``--alias`` ingest fills and what the alias names now."""

    alias: str
    version: str
    resumed: bool
    current: str | None


def plan_version(
    catalog: AliasCatalog, alias: str, model_id: str, now: datetime | None = None
) -> VersionPlan:
    """The newest unfinished build of ``model_id`` for ``alias``, else a new version."""
    check_alias(alias)
    current = catalog.target(alias)
    prefix = f"{alias}{SEPARATOR}{model_slug(model_id)}{SEPARATOR}"
    unfinished = [
        v
        for v in catalog.versions(alias)
        if v.startswith(prefix) and v != current and catalog.read_model(v) is None
    ]
    if unfinished:
        return VersionPlan(alias, unfinished[-1], True, current)
    when = now or datetime.now(UTC)
    version = version_name(alias, model_id, when)
    return VersionPlan(alias, version, False, current)


def model_reference(model: str) -> str:
    """What an app loads to query a collection: an absolute directory, or the hub id."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


class VersionBuild:
    """An open collection version of an alias: ``store`` to fill, then :meth:`finish`."""

    def __init__(
        self,
        catalog: AliasCatalog,
        plan: VersionPlan,
        store: VectorStore,
        probe: VectorStore | None = None,
    ):
        self.catalog, self.plan, self.store = catalog, plan, store
        self._probe: VectorStore | None = probe

    @classmethod
    def open(cls, settings: StoreSettings, alias: str, model_id: str) -> VersionBuild:
        """The version to fill for ``alias`` on the store ``settings`` names."""
        catalog, probe = version_catalog(settings, alias)
        if probe is not None:
            try:
                return cls.on_client(probe, alias, model_id, owns_probe=True)
            except BaseException:
                probe.close()
                raise
        plan = plan_version(catalog, alias, model_id)
        assert settings.path is not None
        Path(settings.path).mkdir(parents=True, exist_ok=True)
        return cls(catalog, plan, open_store(catalog.settings_for(settings, plan.version)))

    @classmethod
    def on_client(
        cls, probe: QdrantClientStore, alias: str, model_id: str, *, owns_probe: bool = False
    ) -> VersionBuild:
        """The version to fill for ``alias`` through the client of ``probe``."""
        catalog = ClientCatalog(probe.client)
        plan = plan_version(catalog, alias, model_id)
        return cls(
            catalog, plan, probe.with_collection(plan.version), probe if owns_probe else None
        )

    def finish(
        self,
        model: ModelRef,
        *,
        swap: bool = True,
        drop_old: bool = False,
        drop_wait_s: float = DROP_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> list[str]:
        """Close the filled store, record ``model``, move the alias (unless ``swap`` is
        False) and drop the previous collection if asked. Returns what was done, in lines."""
        self.store.close()  # an Edge version is unlocked before any app opens it
        plan = self.plan
        if not swap:
            return [
                f"built {plan.version}; alias {plan.alias!r} not moved (--no-swap): the next "
                f"--alias {plan.alias} ingest with this model adds to it and moves the alias"
            ]
        self.catalog.write_model(plan.version, model)
        previous = self.catalog.swap(plan.alias, plan.version)
        lines = [f"alias {plan.alias!r} -> {plan.version} (was {previous or 'nothing'})"]
        if previous and previous != plan.version:
            if drop_old:
                lines.append(self._drop(previous, drop_wait_s, sleep))
            else:
                lines.append(f"kept {previous} (drop it with --drop-old on the next swap)")
        return lines

    def _drop(self, previous: str, wait_s: float, sleep: Callable[[float], None]) -> str:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.catalog.drop(previous)
                return f"dropped {previous}"
            except StoreError as exc:
                if time.monotonic() >= deadline:
                    return f"kept {previous}: {exc}"
                sleep(0.5)  # an app moves to the new collection within a few seconds

    def close(self) -> None:
        self.store.close()
        if self._probe is not None:
            self._probe.close()
        self.catalog.close()
