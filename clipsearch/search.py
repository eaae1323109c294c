"""Search: a text, image or clip query -> videos, each with its best-matching moment.

Every query becomes one unit vector. The store ranks videos by their best window
(its per-window index, grouped by video) and returns each result's window vectors; its
candidates are ranked again here by their best three neighbouring windows
(:func:`clipsearch.windows.video_score`), and each result's moment is found: the
winning window, grown over its neighbours that score nearly as well.

A text query of several steps ("A then B") is a sequence query: each step's top videos
are candidates, scored exactly for a moment of A followed by one of B
(:mod:`clipsearch.sequence`).

Any query may collapse near-duplicate results (``collapse="group"`` or ``"near"``, see
:mod:`clipsearch.collapse`): paging then counts kept results, and each kept result names
the ones folded into it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from clipsearch import telemetry
from clipsearch.batcher import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_S, MicroBatcher
from clipsearch.collapse import (
    CollapsedPage,
    NearThreshold,
    R,
    collapse_page,
    group_key,
    near_threshold,
    validate_collapse,
    validate_near_threshold,
)
from clipsearch.errors import InvalidInput, NotFound
from clipsearch.query_cache import QueryCache
from clipsearch.sequence import (
    SequenceMatch,
    match_sequence,
    parse_steps,
    sequence_moments,
    words,
)
from clipsearch.store.base import Hit, PayloadFilter, VectorExporter, VectorStore, WindowHit
from clipsearch.store.checks import canonical_id
from clipsearch.windows import (
    MOMENT_MIN_MARGIN,
    MOMENT_SPREAD,
    Moment,
    best_moment,
    score_videos,
    window_scores,
)

log = logging.getLogger(__name__)

QUERY_KINDS = ("text", "image", "clip")


class QueryEncoder(Protocol):
    """Anything that turns text (and, for image queries, frames) into unit vectors:
    a loaded ``ClipEncoder`` in practice."""

    model_id: str

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 256
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchLimits:
    max_query_chars: int = 500
    max_k: int = 100
    max_offset: int = 1000
    # query embeddings kept per process (an LRU cache; 0 turns it off)
    query_cache: int = 4096
    # concurrent text queries encoded together: at most this many, gathered for at most
    # ``batch_wait_s`` after the first (1 turns micro-batching off)
    batch_queries: int = DEFAULT_MAX_BATCH
    batch_wait_s: float = DEFAULT_MAX_WAIT_S
    # batches encoded side by side (``batcher.encoding_threads`` picks it for a runtime)
    batch_threads: int = 1
    # windows fetched in the store's first round (doubled until enough videos)
    prefetch: int = 64
    # videos taken from the store, best window first, to be ranked by their best three
    # neighbouring windows (at least twice offset + k + 1): a video further down the
    # store's ranking is not looked at (README, "Videos ranked by three windows")
    video_candidates: int = 32
    # a moment grows over neighbouring windows scoring within ``moment_spread`` of the
    # gap between the best window and the median one (at least ``moment_min_margin``)
    moment_spread: float = MOMENT_SPREAD
    moment_min_margin: float = MOMENT_MIN_MARGIN
    # sequence queries: videos fetched per step as candidates (at least offset + k + 1),
    # and how much a better reversed order costs (see clipsearch.sequence)
    sequence_candidates: int = 50
    order_penalty: float = 1.0
    # collapsed queries: ranked candidates are looked at from ``prefetch`` (sequence
    # queries: ``sequence_candidates``) or 4 * (offset + k + 1), doubling until a page is
    # full, up to this many (at least offset + k + 1); a result's ``folded`` counts the
    # candidates looked at. ``near_threshold`` replaces the one found from the store's
    # vectors (None: from the data, see clipsearch.collapse)
    collapse_candidates: int = 1000
    near_threshold: float | None = None


@dataclass(frozen=True)
class Result:
    """One video: its score (the best mean of three neighbouring windows' cosines,
    :func:`clipsearch.windows.video_score`), its moment, every window's score.

    For a sequence query the score is the sequence's (``sequence.score``), ``moments``
    holds one moment per step (``moment`` is the first), and a window's score is its
    best over the steps.
    """

    hit: WindowHit
    moment: Moment
    window_scores: np.ndarray
    window_times: list[tuple[float, float]]
    moments: tuple[Moment, ...] = ()
    steps: tuple[str, ...] = ()
    sequence: SequenceMatch | None = None
    # a collapsed query: the ids folded into this result (best first) and its position
    # in the ranking before collapsing (None when nothing was collapsed)
    folded: tuple[str, ...] = ()
    rank: int | None = None

    @property
    def id(self) -> str:
        return self.hit.id

    @property
    def score(self) -> float:
        return self.hit.score

    @property
    def payload(self) -> dict[str, Any]:
        return self.hit.payload


@dataclass(frozen=True)
class SearchResponse:
    query: str
    took_ms: float
    results: list[Result]
    kind: str = "text"
    offset: int = 0
    next_offset: int | None = None
    min_score: float | None = None
    # hits existed but all scored below ``min_score``; ``best_score`` is the top one
    no_good_match: bool = False
    best_score: float | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    # a sequence query's steps, in order (empty for any other query)
    steps: tuple[str, ...] = ()
    # how near-duplicates were collapsed, and the ``near`` threshold used (if any)
    collapse: str = "none"
    near_threshold: float | None = None

    @property
    def hits(self) -> list[Hit]:
        return [r.hit for r in self.results]


def validate_query(query: object, limits: SearchLimits) -> str:
    """The stripped query text, or ``InvalidInput`` saying what is wrong with it."""
    if not isinstance(query, str):
        raise InvalidInput("query must be a string", code="invalid_query")
    text = words(query)
    if not text:
        raise InvalidInput("query is empty", code="empty_query")
    if len(text) > limits.max_query_chars:
        raise InvalidInput(
            f"query is {len(text)} characters; at most {limits.max_query_chars} allowed",
            code="query_too_long",
        )
    return text


_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,18}\s*")


def _int_arg(value: object, name: str, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{name} must be an integer", code=code)
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        # int() would also take "1_0" and other scripts' digits
        raise InvalidInput(f"{name} must be an integer, got {value!r}", code=code)
    return int(value)


def validate_k(k: object, limits: SearchLimits) -> int:
    """``k`` as an int in 1..max_k, or ``InvalidInput``."""
    value = _int_arg(k, "k", "invalid_k")
    if not 1 <= value <= limits.max_k:
        raise InvalidInput(f"k must be between 1 and {limits.max_k}", code="invalid_k")
    return value


def validate_offset(offset: object, limits: SearchLimits) -> int:
    """``offset`` as an int in 0..max_offset, or ``InvalidInput``."""
    value = _int_arg(offset, "offset", "invalid_offset")
    if not 0 <= value <= limits.max_offset:
        raise InvalidInput(
            f"offset must be between 0 and {limits.max_offset}", code="invalid_offset"
        )
    return value


def validate_min_score(value: object) -> float | None:
    """A score threshold in [-1, 1], or None for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput("min_score must be a number", code="invalid_min_score")
    try:
        score = float(value)
    except ValueError:
        raise InvalidInput(
            f"min_score must be a number, got {value!r}", code="invalid_min_score"
        ) from None
    if not math.isfinite(score) or not -1.0 <= score <= 1.0:
        raise InvalidInput("min_score must be between -1 and 1", code="invalid_min_score")
    return score


def stored_windows(payload: dict[str, Any], n: int) -> list[tuple[float, float]]:
    """(start_s, end_s) of a stored point's ``n`` window vectors.

    Points ingested before moments were stored per frame: their spans run from one
    frame time to the next.
    """
    spans = payload.get("segment_times")
    if isinstance(spans, list) and len(spans) == n:
        return [(float(s), float(e)) for s, e in spans]
    times = payload.get("frame_times")
    duration = float(payload.get("duration_s") or 0.0)
    if isinstance(times, list) and len(times) == n:
        starts = [float(t) for t in times]
        ends = [*starts[1:], max(duration, starts[-1])]
        return list(zip(starts, ends, strict=True))
    step = duration / n if duration > 0 else 0.0
    return [(i * step, (i + 1) * step) for i in range(n)]


class SearchService:
    """Query embedding plus two-stage vector search; shared by the CLI and the web app.

    ``min_score`` is the model's calibrated "no good match" threshold (None: none).
    """

    def __init__(
        self,
        encoder: QueryEncoder,
        store: VectorStore,
        limits: SearchLimits | None = None,
        *,
        min_score: float | None = None,
    ):
        self.encoder = encoder
        self.store = store
        self.limits = limits or SearchLimits()
        self.min_score = validate_min_score(min_score)
        validate_near_threshold(self.limits.near_threshold)
        self.cache = QueryCache(self.limits.query_cache)
        # the ``near`` threshold found from the store's vectors, per video count
        self._near: tuple[int, NearThreshold] | None = None
        self._near_lock = threading.Lock()
        self.batcher: MicroBatcher | None = None
        if self.limits.batch_queries > 1:
            self.batcher = MicroBatcher(
                lambda texts: self.encoder.encode_text(list(texts)),
                max_batch=self.limits.batch_queries,
                max_wait_s=self.limits.batch_wait_s,
                threads=self.limits.batch_threads,
            )

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def image_queries(self) -> bool:
        """Whether the encoder has a vision tower for image queries."""
        return getattr(self.encoder, "towers", "text") in ("both", "vision")

    def encode_query(self, text: str) -> np.ndarray:
        """The unit vector of one (validated) query text, batched with concurrent ones."""
        with telemetry.timed("text_encode"):
            if self.batcher is not None:
                return self.batcher(text)
            return self.encoder.encode_text([text])[0]

    def _search_windows(self, vector: np.ndarray, k: int, **kwargs: Any) -> list[WindowHit]:
        with telemetry.timed("store_search"):
            return self.store.search_windows(vector, k, **kwargs)

    def close(self) -> None:
        """Stop the query batcher and close the store."""
        if self.batcher is not None:
            self.batcher.close()
        self.store.close()

    # -- queries

    def search(
        self,
        query: object,
        k: object = 10,
        *,
        filter: PayloadFilter | None = None,
        offset: object = 0,
        min_score: object = "default",
        then: Sequence[object] = (),
        collapse: object = "none",
    ) -> SearchResponse:
        """Videos for a text query (validated; bad input raises ``InvalidInput``).

        A query with steps ("A then B", or more steps in ``then``) is a sequence query.
        ``collapse`` (``none``, ``group`` or ``near``) folds near-duplicate results.
        """
        text = validate_query(query, self.limits)
        steps = parse_steps(text, then, self.limits.max_query_chars)
        mode = validate_collapse(collapse)
        start = time.perf_counter()
        if len(steps) > 1:
            return self._run_sequence(steps, k, offset, filter, min_score, mode, start)
        vector = self.cache.get(text, self.encode_query)
        return self._run(vector, text, "text", k, offset, filter, min_score, (), mode, start)

    def search_image(
        self,
        image: np.ndarray,
        k: object = 10,
        *,
        filter: PayloadFilter | None = None,
        offset: object = 0,
        min_score: object = None,
        name: str = "image",
        collapse: object = "none",
    ) -> SearchResponse:
        """Videos for an RGB image (H, W, 3) uint8: a photo or a frame.

        No threshold by default: the calibration is for text queries.
        """
        if not self.image_queries or not hasattr(self.encoder, "encode_frames"):
            raise InvalidInput(
                "image search needs the model's vision tower, which this server did not load",
                code="image_search_unavailable",
            )
        pixels = np.asarray(image)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise InvalidInput(
                f"image must be RGB uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}",
                code="invalid_image",
            )
        mode = validate_collapse(collapse)
        start = time.perf_counter()
        vector = self.encoder.encode_frames(pixels[None])[0]
        return self._run(vector, name, "image", k, offset, filter, min_score, (), mode, start)

    def more_like(
        self,
        clip_id: str,
        k: object = 10,
        *,
        filter: PayloadFilter | None = None,
        offset: object = 0,
        min_score: object = None,
        collapse: object = "none",
    ) -> SearchResponse:
        """Videos like an indexed clip (its pooled vector as the query; itself left out).

        No threshold by default: the calibration is for text queries.
        """
        mode = validate_collapse(collapse)
        start = time.perf_counter()
        key = canonical_id(clip_id)
        point = self.store.retrieve([key], with_vectors=True).get(key)
        if point is None or point.pooled.size == 0:
            raise NotFound(f"no clip with id {clip_id!r}", code="clip_not_found")
        label = str(point.payload.get("path") or clip_id)
        return self._run(
            point.pooled, label, "clip", k, offset, filter, min_score, (point.id,), mode, start
        )

    def _run(
        self,
        vector: np.ndarray,
        description: str,
        kind: str,
        k: object,
        offset: object,
        filter: PayloadFilter | None,
        min_score: object,
        exclude: Sequence[str],
        mode: str,
        start: float,
    ) -> SearchResponse:
        top_k = validate_k(k, self.limits)
        skip = validate_offset(offset, self.limits)
        threshold = self.min_score if min_score == "default" else validate_min_score(min_score)
        prefetch = max(self.limits.prefetch, skip + top_k + 1)
        near: float | None = None
        if mode == "none":
            # one more says whether there is a next page
            ranked, _ = self._videos(vector, skip + top_k + 1, prefetch, filter, exclude, threshold)
            hits = ranked[skip:]
            with telemetry.timed("moment_naming"):
                results = [self._result(hit, vector) for hit in hits[:top_k]]
            found, has_next = bool(hits), len(hits) > top_k
        else:

            def fetch(n: int) -> tuple[list[WindowHit], bool]:
                return self._videos(vector, n, max(prefetch, n), filter, exclude, threshold)

            page, near = self._collapse(fetch, mode, skip, top_k, first=self.limits.prefetch)
            with telemetry.timed("moment_naming"):
                results = [
                    replace(self._result(c.item, vector), folded=c.folded, rank=c.rank)
                    for c in page.results
                ]
            found, has_next = page.candidates > 0, page.has_next
        no_good_match, best = False, None
        if not found and threshold is not None and skip == 0:
            probe, _ = self._videos(vector, 1, prefetch, filter, exclude, None)
            if probe:
                no_good_match, best = True, probe[0].score
        took_ms = (time.perf_counter() - start) * 1000
        # no query text in logs: queries can be personal (the web app logs them only if asked)
        log.debug("%s query: %d results in %.1f ms", kind, len(results), took_ms)
        return SearchResponse(
            query=description,
            took_ms=took_ms,
            results=results,
            kind=kind,
            offset=skip,
            next_offset=skip + top_k if has_next else None,
            min_score=threshold,
            no_good_match=no_good_match,
            best_score=best,
            filters=dict(filter or {}),
            collapse=mode,
            near_threshold=near,
        )

    def _videos(
        self,
        vector: np.ndarray,
        n: int,
        prefetch: int,
        filter: PayloadFilter | None,
        exclude: Sequence[str],
        threshold: float | None,
    ) -> tuple[list[WindowHit], bool]:
        """The best ``n`` videos for a query vector by :func:`video_score` (each hit's score
        replaced by it), at or above ``threshold``, and whether the store ran out.

        The store ranks by the best window; its first ``max(2 * n, video_candidates)``
        videos are ranked again. A video's score is at most its best window's, so the
        store's threshold only leaves out videos that could not reach it.
        """
        depth = max(2 * n, self.limits.video_candidates)
        hits = self._search_windows(
            vector,
            depth,
            prefetch=max(prefetch, depth),
            filter=filter,
            exclude=exclude,
            score_threshold=threshold,
        )
        scores = np.asarray([h.score for h in hits], dtype=np.float64)
        windowed = [i for i, h in enumerate(hits) if len(h.windows)]  # all but odd points
        if windowed:
            scores[windowed] = score_videos([hits[i].windows for i in windowed], vector)
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].id))
        kept = [i for i in order if threshold is None or scores[i] >= threshold][:n]
        return [replace(hits[i], score=float(scores[i])) for i in kept], len(hits) < depth

    def _run_sequence(
        self,
        steps: Sequence[str],
        k: object,
        offset: object,
        filter: PayloadFilter | None,
        min_score: object,
        mode: str,
        start: float,
    ) -> SearchResponse:
        top_k = validate_k(k, self.limits)
        skip = validate_offset(offset, self.limits)
        threshold = self.min_score if min_score == "default" else validate_min_score(min_score)
        vectors = np.stack([self.cache.get(step, self.encode_query) for step in steps])
        scored: list[Result] = []  # every candidate of the last round, best first
        passing: list[Result] = []  # those at or above the threshold

        def fetch(depth: int) -> tuple[list[Result], bool]:
            nonlocal scored, passing
            scored, exhausted = self._sequence_ranked(steps, vectors, depth, filter)
            passing = [r for r in scored if threshold is None or r.score >= threshold]
            return passing, exhausted

        near: float | None = None
        if mode == "none":
            fetch(max(self.limits.sequence_candidates, skip + top_k + 1))
            results = passing[skip : skip + top_k]
            has_next = len(passing) > skip + top_k
        else:
            page, near = self._collapse(
                fetch, mode, skip, top_k, first=self.limits.sequence_candidates
            )
            results = [replace(c.item, folded=c.folded, rank=c.rank) for c in page.results]
            has_next = page.has_next
        no_good_match = not passing and bool(scored) and threshold is not None and skip == 0
        took_ms = (time.perf_counter() - start) * 1000
        description = " then ".join(steps)
        log.debug("sequence query: %d candidates in %.1f ms", len(scored), took_ms)
        return SearchResponse(
            query=description,
            took_ms=took_ms,
            results=results,
            kind="text",
            offset=skip,
            next_offset=skip + top_k if has_next else None,
            min_score=threshold,
            no_good_match=no_good_match,
            best_score=scored[0].score if no_good_match else None,
            filters=dict(filter or {}),
            steps=tuple(steps),
            collapse=mode,
            near_threshold=near,
        )

    def _sequence_ranked(
        self,
        steps: Sequence[str],
        vectors: np.ndarray,
        depth: int,
        filter: PayloadFilter | None,
    ) -> tuple[list[Result], bool]:
        """Each step's top ``depth`` videos scored as a sequence, best first, and whether
        every step ran out of videos before ``depth``."""
        prefetch = max(self.limits.prefetch, depth)
        candidates: dict[str, WindowHit] = {}
        exhausted = True
        for vector in dict(zip(steps, vectors, strict=True)).values():  # repeated steps once
            hits = self._search_windows(vector, depth, prefetch=prefetch, filter=filter)
            exhausted = exhausted and len(hits) < depth
            for hit in hits:
                candidates.setdefault(hit.id, hit)
        with telemetry.timed("moment_naming"):
            scored = [
                r
                for hit in candidates.values()
                if (r := self._sequence_result(hit, vectors, steps)) is not None
            ]
        scored.sort(key=lambda r: (-r.score, r.id))
        return scored, exhausted

    # -- collapsing near-duplicates

    def _collapse(
        self,
        fetch: Callable[[int], tuple[list[R], bool]],
        mode: str,
        skip: int,
        top_k: int,
        *,
        first: int = 0,
    ) -> tuple[CollapsedPage[R], float | None]:
        """One page of a ranking collapsed by ``mode``, and the ``near`` threshold used."""
        near = self.near_threshold().value if mode == "near" else None
        page = collapse_page(
            fetch,
            mode,
            offset=skip,
            k=top_k,
            max_candidates=self.limits.collapse_candidates,
            first=first,
            vectors=self._pooled,
            threshold=near,
        )
        return page, near

    def _pooled(self, ids: Sequence[str]) -> Mapping[str, np.ndarray]:
        """The stored pooled vectors of these videos (those without one left out)."""
        points = self.store.retrieve(list(ids), with_vectors=True)
        return {pid: p.pooled for pid, p in points.items() if p.pooled.size}

    def near_threshold(self) -> NearThreshold:
        """The ``near`` collapse threshold: the limits' override, else found from the
        store's pooled vectors and groups (:func:`clipsearch.collapse.near_threshold`),
        kept until the store's video count changes."""
        if self.limits.near_threshold is not None:
            return NearThreshold(self.limits.near_threshold, "override")
        count = self.store.count()
        with self._near_lock:
            if self._near is not None and self._near[0] == count:
                return self._near[1]
            found = NearThreshold(None, "none")
            if isinstance(self.store, VectorExporter):
                ids, vectors = self.store.export_vectors()
                keys = {
                    pid: group_key(p) for pid, p in self.store.payloads(keys=["class", "group"])
                }
                found = near_threshold(vectors, [keys.get(pid) for pid in ids])
            self._near = (count, found)
        log.info(
            "near-duplicate threshold %s (%s rule, %d videos sampled, %d in the store)",
            found.value,
            found.rule,
            found.samples,
            count,
        )
        return found

    def _sequence_result(
        self, hit: WindowHit, vectors: np.ndarray, steps: Sequence[str]
    ) -> Result | None:
        found = self.sequence(hit.windows, hit.payload, vectors)
        if found is None:
            return None
        match, moments, scores, times = found
        return Result(
            replace(hit, score=match.score),
            moments[0],
            scores.max(axis=0),
            times,
            moments=tuple(moments),
            steps=tuple(steps),
            sequence=match,
        )

    def sequence(
        self, windows: np.ndarray, payload: dict[str, Any], vectors: np.ndarray
    ) -> tuple[SequenceMatch, list[Moment], np.ndarray, list[tuple[float, float]]] | None:
        """How a stored video matches the step vectors (steps, D) in order: the match, one
        moment per step, each step's window scores (steps, S) and the windows'
        (start_s, end_s); None when the video cannot hold the steps in order."""
        if len(windows) == 0:
            return None
        scores = np.stack([window_scores(windows, v) for v in vectors])
        times = stored_windows(payload, scores.shape[1])
        match = match_sequence(scores, times, order_penalty=self.limits.order_penalty)
        if match is None:
            return None
        moments = sequence_moments(
            scores,
            times,
            match,
            spread=self.limits.moment_spread,
            min_margin=self.limits.moment_min_margin,
        )
        return match, moments, scores, times

    def _result(self, hit: WindowHit, vector: np.ndarray) -> Result:
        moment, scores, times = self.moment(hit.windows, hit.payload, vector)
        return Result(hit, moment, scores, times)

    def moment(
        self, windows: np.ndarray, payload: dict[str, Any], vector: np.ndarray
    ) -> tuple[Moment, np.ndarray, list[tuple[float, float]]]:
        """A stored video's best moment for a query vector, every window's score and the
        windows' (start_s, end_s)."""
        scores = window_scores(windows, vector)
        times = stored_windows(payload, len(scores))
        moment = best_moment(
            scores,
            times,
            spread=self.limits.moment_spread,
            min_margin=self.limits.moment_min_margin,
        )
        return moment, scores, times

    # -- clips and health

    def clip(self, clip_id: str) -> Hit | None:
        """One indexed clip's payload by id, or None."""
        key = canonical_id(clip_id)
        point = self.store.retrieve([key]).get(key)
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
            "min_score": self.min_score,
            "image_queries": self.image_queries,
            "query_cache": self.cache.stats(),
            "query_batches": self.batcher.stats() if self.batcher is not None else None,
            "text_dtype": getattr(self.encoder, "text_dtype", None),
            "store_cache": cache.stats()
            if (cache := getattr(self.store, "video_cache", None))
            else None,
        }
        warning = self._mismatch_warning(stored)
        if warning:
            info["warning"] = warning
        return info
