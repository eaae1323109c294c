"""A search service that follows an alias: the app keeps answering while the alias moves.

The app opens the collection an alias names now (pinned: a moving alias never changes what
an open store reads). A background thread looks at the alias every few seconds; when it
names another collection, a new :class:`~clipsearch.search.SearchService` is built on it
(loading the model recorded with that collection when it is another one) while the current
service keeps answering. Then new requests get the new service in one step, and the old one
is closed once the last request that holds it has finished. A failed switch is logged and
retried; the current service keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from clipsearch.errors import InvalidInput
from clipsearch.search import SearchService
from clipsearch.store.aliases import AliasCatalog, ModelRef, alias_catalog

if TYPE_CHECKING:
    from clipsearch.store.factory import StoreSettings

log = logging.getLogger(__name__)

DEFAULT_CHECK_S = 2.0

# (collection to open, the model recorded with it, the service now serving) -> new service
Rebuild = Callable[[str, ModelRef | None, SearchService], SearchService]


class Build(Protocol):
    """A search service on ``store``, with the configured model, another one (``model``,
    a path or hub id) or an encoder already loaded (``encoder``)."""

    def __call__(
        self, store: StoreSettings, *, model: str | None = None, encoder: Any = None
    ) -> SearchService: ...


class LiveSearch:
    """The current search service; with ``follow`` = (catalog, alias), it moves with it."""

    def __init__(
        self,
        service: SearchService,
        *,
        follow: tuple[AliasCatalog, str] | None = None,
        collection: str | None = None,
        rebuild: Rebuild | None = None,
        check_s: float = DEFAULT_CHECK_S,
    ):
        if follow is not None and rebuild is None:
            raise ValueError("following an alias needs a rebuild function")
        self._current = service
        self._collection = collection
        self._follow = follow
        self._rebuild = rebuild
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._in_flight: dict[SearchService, int] = {}
        self._retired: list[SearchService] = []
        self.switches = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if follow is not None and check_s > 0:
            self._thread = threading.Thread(
                target=self._watch, args=(check_s,), name="clipsearch-alias", daemon=True
            )
            self._thread.start()

    @property
    def current(self) -> SearchService:
        return self._current

    @property
    def collection(self) -> str | None:
        return self._collection

    def acquire(self) -> SearchService:
        """The service for one request; give it back with :meth:`release`."""
        with self._lock:
            service = self._current
            self._in_flight[service] = self._in_flight.get(service, 0) + 1
            return service

    def release(self, service: SearchService) -> None:
        with self._lock:
            left = self._in_flight.get(service, 0) - 1
            if left > 0:
                self._in_flight[service] = left
                return
            self._in_flight.pop(service, None)
            if service not in self._retired:
                return
            self._retired.remove(service)
        _close(service)

    def check(self) -> bool:
        """Move to the alias's collection if it changed; True when it moved."""
        if self._follow is None or self._rebuild is None:
            return False
        catalog, alias = self._follow
        with self._check_lock:
            try:
                target = catalog.target(alias)
            except InvalidInput:  # the name is a plain collection: nothing to follow
                return False
            if target is None or target == self._collection:
                return False
            started = time.perf_counter()
            fresh = self._rebuild(target, catalog.read_model(target), self._current)
            with self._lock:
                old, self._current = self._current, fresh
                previous, self._collection = self._collection, target
                self.switches += 1
                self.last_error = None
                busy = self._in_flight.get(old, 0) > 0
                if busy:
                    self._retired.append(old)
            log.info(
                "alias %r moved: now serving %s with model %s (was %s; switched in %.1f s)",
                alias,
                target,
                fresh.model_id,
                previous,
                time.perf_counter() - started,
            )
            if not busy:
                _close(old)
            return True

    def _watch(self, check_s: float) -> None:
        while not self._stop.wait(check_s):
            try:
                self.check()
            except Exception as exc:  # keep serving the current collection, try again later
                message = f"{type(exc).__name__}: {exc}"
                if message != self.last_error:
                    log.warning(
                        "cannot follow alias: %s (still serving %s)", message, self._collection
                    )
                self.last_error = message

    def stats(self) -> dict[str, Any] | None:
        """What /api/health reports: the alias, the collection served, switches so far."""
        if self._follow is None:
            return None
        return {
            "alias": self._follow[1],
            "collection": self._collection,
            "switches": self.switches,
            "error": self.last_error,
        }

    def close(self) -> None:
        """Stop following and close every service (the current one and retired ones)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            services = [self._current, *self._retired]
            self._retired.clear()
        for service in services:
            _close(service)
        if self._follow is not None:
            self._follow[0].close()


def _close(service: SearchService) -> None:
    try:
        service.close()
    except Exception as exc:  # closing an old collection must never fail a request
        log.warning("closing the previous search service failed: %s", exc)


def follow_store(store: StoreSettings, build: Build, *, check_s: float) -> LiveSearch:
    """The search service on ``store``; when that names an alias, on the collection it
    names now (with the model recorded there), following it as it moves."""
    follow = alias_catalog(store)
    if follow is None:
        return LiveSearch(build(store))
    catalog, alias = follow
    try:
        target = catalog.target(alias)
    except Exception as exc:  # the server is down: serve the name as it is, look again later
        log.warning("cannot resolve alias %r yet: %s", alias, exc)
        target = None

    def rebuild(collection: str, model: ModelRef | None, now: SearchService) -> SearchService:
        pinned = catalog.settings_for(store, collection)
        if model is None or model.model_id == now.model_id:
            if model is None:
                log.warning("collection %s records no model: keeping %s", collection, now.model_id)
            return build(pinned, encoder=now.encoder)
        return build(pinned, model=model.ref)

    if target is None:  # a server alias not made yet: the name as it is, until it is
        first = build(store)
    else:
        recorded = catalog.read_model(target)
        first = build(catalog.settings_for(store, target), model=recorded.ref if recorded else None)
    return LiveSearch(first, follow=follow, collection=target, rebuild=rebuild, check_s=check_s)
