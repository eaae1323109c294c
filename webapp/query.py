"""Search parameters from a request: paging, filters, the score threshold, sequence steps
and how near-duplicates collapse.

The same names work in a query string (``?class=A&class=B&split=1:test&then=B``), a form
and a JSON body (``{"class": ["A"], "split": "1:test", "then": ["B"], ...}``); anything
malformed is an ``InvalidInput`` (HTTP 400) naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from clipsearch.errors import InvalidInput
from clipsearch.filters import build_filter


@dataclass(frozen=True)
class SearchParams:
    """What a search request asks for, besides the query itself."""

    k: object
    offset: object = 0
    filter: dict[str, Any] = field(default_factory=dict)
    # "default": the model's calibrated threshold; None: no threshold
    min_score: object = "default"
    # the filters as the client gave them (echoed back, used for page links)
    given: dict[str, Any] = field(default_factory=dict)
    # later steps of a text query ("A" then each of these); checked by the search
    then: tuple[object, ...] = ()
    # "none", "group" or "near" as given (checked by the search); None: the caller's default
    collapse: object = None


def _min_score(values: Mapping[str, Any]) -> object:
    if "min_score" not in values:
        return "default"
    raw = values["min_score"]
    if raw in (None, "", "none", "off"):
        return None
    return raw


def _then(values: Mapping[str, Any]) -> tuple[object, ...]:
    raw = values.get("then")
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list):
        return tuple(raw)
    raise InvalidInput("then must be a string or a list of strings", code="invalid_query")


REPEATABLE = ("class", "model", "then")


def from_args(args: MultiDict[str, str], default_k: int) -> SearchParams:
    """Parameters from a query string or a form (repeated ``class``, ``model`` and
    ``then`` keys allowed)."""
    values: dict[str, Any] = {k: args.get(k) for k in args if k not in REPEATABLE}
    for key in REPEATABLE:
        if key in args:
            values[key] = args.getlist(key)
    return from_mapping(values, default_k)


def from_mapping(values: Mapping[str, Any], default_k: int) -> SearchParams:
    """Parameters from a JSON object (filters flat or under ``"filters"``)."""
    filters = values.get("filters", {})
    if not isinstance(filters, dict):
        raise InvalidInput("filters must be a JSON object", code="invalid_filter")
    flt, given = build_filter({**values, **filters})
    return SearchParams(
        k=values.get("limit", values.get("k", default_k)),
        offset=0 if values.get("offset") in (None, "") else values["offset"],
        filter=flt,
        min_score=_min_score(values),
        given=given,
        then=_then(values),
        collapse=values.get("collapse"),
    )
