"""``clipsearch bench-moments``: one point per video (design A) vs one point per window (B).

The question: a query should find the k videos whose *best moment* matches it best, and
name that moment. Two ways to store the moments in Qdrant:

- **design A**: one point per video, a dense ``pooled`` vector (cosine, HNSW) and a
  ``segments`` multivector (one vector per moment window, MaxSim, no graph). Search
  prefetches the top ``P`` videos by ``pooled``, reranks them by MaxSim over their
  windows, returns the window vectors and re-scores them client-side to name the winning
  window (the same re-scoring as :class:`~clipsearch.search.SearchService`). clipsearch
  searched this way until this benchmark; it is measured here with raw Qdrant calls on its
  own shard (:class:`DesignA`), independent of clipsearch's store.
- **design B**: one point per window (payload: video, window index, start_s, end_s), HNSW
  on the window vectors, grouped by video (best window per video). Qdrant Edge has no
  group-by, so on Edge the query over-fetches ``k * f`` windows and groups client-side
  (first hit of a video = its best window), or fetches adaptively (doubling the limit until
  ``k`` distinct videos came back). Fetching ``k * max_windows`` windows always
  yields ``k`` videos, and with an exact scan then the exact answer. These hand-built rows
  (:class:`DesignB`, raw Qdrant calls) map the design space.
- **product**: what clipsearch ships, chosen because of this benchmark - design B in the
  real :class:`~clipsearch.store.edge.QdrantEdgeStore` (:class:`Product`): its video shard
  (one point per video, as in A, to read the window vectors back) plus its ``moments/``
  window shard, ``search_windows`` at :class:`~clipsearch.search.SearchLimits`'
  ``prefetch`` (the first window limit, doubled until ``k`` videos came back), after
  ``optimize``. Its build time and disk size cover both shards.

All approximate the **exact ground truth**: the cosine of every window of every video with
the query, a video's score = its best window's, top-k videos by that score - computed by
brute force here (:func:`exact_moments`).

The data is synthetic but structured (:func:`synthetic_moments`): latent class directions,
short trimmed clips whose action fills most of the clip and long untrimmed videos with a
short action somewhere inside, a per-video background, a shared offset and noise; pooled =
the normalised mean of a video's windows; queries = a class direction plus noise. Every
measured figure comes from a run; nothing is hard-coded.

Optionally (``--local-videos``) both designs and the shipped
:class:`~clipsearch.store.client.QdrantClientStore` also run on qdrant-client's local mode,
where design B can use the real ``query_points_groups``; local mode is an exact pure-Python
reference, so its latencies say nothing about Qdrant itself.

The command line is :mod:`clipsearch.cli.bench_moments`. Qdrant and matplotlib are only
imported when the benchmark runs.
"""

from clipsearch.bench.common import parse_int_list
from clipsearch.bench.moments.data import (
    PRODUCT_PREFETCH,
    BenchConfig,
    Found,
    MomentData,
    MomentSpec,
    Truth,
    evaluate,
    exact_moments,
    from_videos,
    synthetic_moments,
)
from clipsearch.bench.moments.designs import DesignA, DesignB, Product, group_best, timed_queries

__all__ = [
    "PRODUCT_PREFETCH",
    "BenchConfig",
    "DesignA",
    "DesignB",
    "Found",
    "MomentData",
    "MomentSpec",
    "Product",
    "Truth",
    "evaluate",
    "exact_moments",
    "from_videos",
    "group_best",
    "parse_int_list",
    "synthetic_moments",
    "timed_queries",
]
