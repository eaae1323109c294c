"""Flask's JSON through orjson: a search response lists dozens of windows, and the
standard library's encoder was a tenth of a request's time."""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class OrjsonProvider(DefaultJSONProvider):
    """``jsonify`` and ``request.get_json`` with orjson; anything orjson cannot encode goes
    through Flask's own ``default`` (dates, UUIDs, dataclasses as Flask handles them)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # ``jsonify`` asks for compact separators (what orjson writes) or, in debug mode
        # or with ``compact = False``, an indent of 2 (orjson's OPT_INDENT_2)
        if kwargs == {"separators": (",", ":")} or not kwargs:
            option = _OPTIONS
        elif kwargs == {"indent": 2}:
            option = _OPTIONS | orjson.OPT_INDENT_2
        else:  # sort_keys, other separators, ...: options orjson does not take
            return super().dumps(obj, **kwargs)
        return orjson.dumps(obj, default=self.default, option=option).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return super().loads(s, **kwargs)
        return orjson.loads(s)
