"""Load test of the clipsearch web app (or any server with its API), users with no wait.

Mix (``LOCUST_MIX``):
- ``unique`` (default): every request a query never asked before in this run
  (``/api/search``), so no cache helps;
- ``zipf``: queries from a 500-query popular subset with Zipf frequencies;
- ``mixed``: 60 % unique API searches, 20 % Zipf, 10 % search pages (HTML), 10 %
  more-like-this on clips seen in earlier results.

Run it with ``locust/run.sh``, which starts the system under test and writes the CSV,
the HTML report and a summary JSON.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
import sys
import threading
from pathlib import Path

from locust.contrib.fasthttp import FastHttpUser

from locust import constant, task

_QUERIES = Path(__file__).with_name("queries.py")
_spec = importlib.util.spec_from_file_location("load_queries", _QUERIES)
assert _spec is not None and _spec.loader is not None
queries = importlib.util.module_from_spec(_spec)
sys.modules["load_queries"] = queries
_spec.loader.exec_module(queries)

MIX = os.environ.get("LOCUST_MIX", "unique")
K = int(os.environ.get("LOCUST_K", "10"))
POOL = queries.query_pool(int(os.environ.get("LOCUST_POOL", "20000")))
_next_unique = itertools.count()
_lock = threading.Lock()
popular = queries.zipf_picker(POOL[::-1])  # popular queries are not among the first unique ones
seen_ids: list[str] = []


def unique_query() -> str:
    with _lock:
        i = next(_next_unique)
    return POOL[i % len(POOL)]


class SearchUser(FastHttpUser):
    wait_time = constant(0)

    def _api_search(self, q: str, name: str) -> None:
        with self.client.get(
            "/api/search", params={"q": q, "k": K}, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            results = response.json().get("results", [])
            if results and len(seen_ids) < 1000:
                seen_ids.append(results[0]["id"])

    @task
    def search(self) -> None:
        if MIX == "unique":
            self._api_search(unique_query(), "/api/search [unique]")
        elif MIX == "zipf":
            self._api_search(popular(), "/api/search [zipf]")
        else:
            roll = random.random()
            if roll < 0.6:
                self._api_search(unique_query(), "/api/search [unique]")
            elif roll < 0.8:
                self._api_search(popular(), "/api/search [zipf]")
            elif roll < 0.9:
                self.client.get("/", params={"q": unique_query()}, name="/ [page]")
            elif seen_ids:
                clip = random.choice(seen_ids)
                self.client.get(
                    f"/api/clips/{clip}/similar", params={"k": K}, name="/api/clips/[id]/similar"
                )
            else:
                self._api_search(unique_query(), "/api/search [unique]")
