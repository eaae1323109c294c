"""An optional API key for the JSON API (``CLIPSEARCH_API_KEY``).

When set, every ``/api`` request must carry it as ``X-API-Key: <key>`` or
``Authorization: Bearer <key>``; ``/api/health`` and ``/api/openapi.json`` stay open for
load balancers and clients. A missing or wrong key is 401 in the one error shape. The
HTML pages are not covered: put them behind the proxy that authenticates your users.
"""

from __future__ import annotations

import hmac

from flask import Flask, request

from clipsearch.errors import ClipSearchError
from webapp.errors import is_api_request

OPEN_PATHS = frozenset({"/api/health", "/api/openapi.json"})


class Unauthorized(ClipSearchError):
    status = 401
    code = "unauthorized"


def presented_key() -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def init_app(app: Flask, api_key: str | None) -> None:
    if not api_key:
        return
    expected = api_key.encode()

    @app.before_request
    def require_api_key() -> None:
        if not is_api_request() or request.path in OPEN_PATHS:
            return
        given = presented_key()
        if given is None:
            raise Unauthorized("this API needs a key: send X-API-Key or Authorization: Bearer")
        if not hmac.compare_digest(given.encode(), expected):
            raise Unauthorized("wrong API key")
