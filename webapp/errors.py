"""One error handler: JSON ``{"error": {"code", "message"}}`` under ``/api``, HTML elsewhere."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from clipsearch.errors import ClipSearchError, StoreError
from webapp import metrics

log = logging.getLogger(__name__)

API_PREFIX = "/api"
INTERNAL_MESSAGE = "internal server error"
RETRY_AFTER_S = 5


@dataclass(frozen=True)
class ErrorInfo:
    """What the client is told about a failure."""

    status: int
    code: str
    message: str

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def describe(exc: Exception) -> ErrorInfo:
    """Status, code and a message safe to show (never a traceback or an internal detail)."""
    if isinstance(exc, ClipSearchError):
        if exc.status < 500 or isinstance(exc, StoreError):
            return ErrorInfo(exc.status, exc.code, exc.message)
        return ErrorInfo(exc.status, exc.code, INTERNAL_MESSAGE)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        code = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        return ErrorInfo(status, code, exc.description or exc.name or "error")
    return ErrorInfo(500, "internal_error", INTERNAL_MESSAGE)


def is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def handle_error(exc: Exception) -> ResponseReturnValue:
    """Turn any exception into the API's JSON error or the HTML error page."""
    info = describe(exc)
    if isinstance(exc, StoreError):
        metrics.store_failed(exc)
    if info.status >= 500:
        if isinstance(exc, StoreError):
            log.warning("%s %s: %s", request.method, request.path, exc)
        else:
            log.error("%s %s failed", request.method, request.path, exc_info=exc)
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    if isinstance(exc, StoreError):  # the store is down or slow: come back shortly
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if info.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="clipsearch"'

    if is_api_request():
        return jsonify(info.to_dict()), info.status, headers
    return render_template("error.html", error=info), info.status, headers


def init_app(app: Flask) -> None:
    """Register :func:`handle_error` for every exception (HTTP errors included)."""
    app.register_error_handler(Exception, handle_error)
