"""Search parameters from a request: paging, filters, the score threshold, sequence steps
and how near-duplicates collapse.

The same names work in a query string (``?class=A&class=B&split=1:test&then=B``), a form
and a JSON body (``{"class": ["A"], "split": "1:test", "then": ["B"], ...}``); anything
malformed is an ``InvalidInput`` (HTTP 400) naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from clipsearch.errors import InvalidInput
from clipsearch.store.base import Range

FILTER_KEYS = ("class", "split", "min_duration", "max_duration", "model")
SPLIT_SIDES = ("train", "test")


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


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{name} must be a number", code="invalid_filter")
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a number, got {value!r}", code="invalid_filter"
        ) from None
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"{name} must be a non-negative number", code="invalid_filter")
    return number


def _strings(value: object, name: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(
                f"{name} must be a string or a list of strings", code="invalid_filter"
            )
        out += [part.strip() for part in item.split(",") if part.strip()]
    return out


def _split(value: object) -> tuple[str, str]:
    if not isinstance(value, str):
        raise InvalidInput("split must be a string like 1:test", code="invalid_filter")
    number, _, side = value.strip().partition(":")
    if number not in ("1", "2", "3") or side not in SPLIT_SIDES:
        raise InvalidInput(
            f"split must look like 1:test or 2:train (split 1-3), got {value!r}",
            code="invalid_filter",
        )
    return f"split_{number}", side


def build_filter(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(store filter, the filters as given) from request values; blanks are ignored."""
    flt: dict[str, Any] = {}
    given: dict[str, Any] = {}
    present = {k: v for k, v in values.items() if k in FILTER_KEYS and v not in (None, "", [])}
    if "class" in present:
        classes = _strings(present["class"], "class")
        if classes:
            flt["class"] = classes if len(classes) > 1 else classes[0]
            given["class"] = classes
    if "model" in present:
        models = _strings(present["model"], "model")
        if models:
            flt["model"] = models if len(models) > 1 else models[0]
            given["model"] = models
    if "split" in present:
        key, side = _split(present["split"])
        flt[key] = side
        given["split"] = f"{key[-1]}:{side}"
    low = _number(present["min_duration"], "min_duration") if "min_duration" in present else None
    high = _number(present["max_duration"], "max_duration") if "max_duration" in present else None
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            f"min_duration ({low}) is above max_duration ({high})", code="invalid_filter"
        )
    if low is not None or high is not None:
        flt["duration_s"] = Range(gte=low, lte=high)
        given.update(
            {k: v for k, v in (("min_duration", low), ("max_duration", high)) if v is not None}
        )
    return flt, given


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
        offset=values.get("offset") or 0,
        filter=flt,
        min_score=_min_score(values),
        given=given,
        then=_then(values),
        collapse=values.get("collapse"),
    )
