"""One log line per request, and a request id on every line a request logs.

The id is the client's ``X-Request-ID`` when it is a plain token (letters, digits and
``._:-``, up to 128), else a new one; the response echoes it. ``CLIPSEARCH_LOG_FORMAT=json``
writes JSON lines. The query text is logged only with ``CLIPSEARCH_LOG_QUERIES=1``.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from webapp.log_writer import BackgroundStreamHandler

HEADER = "X-Request-ID"
VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
NO_REQUEST = "-"
TEXT_FORMAT = "[%(asctime)s] [%(process)d] %(levelname)s %(name)s [%(request_id)s]: %(message)s"

access = logging.getLogger("clipsearch.access")


def _new_id() -> str:
    # 128 random bits from the random module, not uuid4: os.urandom's system call hands the
    # GIL around on every request, which starved an ingest thread of the same process (a
    # watching server) under load. Ids need to be unique, not secret; each forked worker
    # reseeds the generator.
    return f"{random.getrandbits(128):032x}"


def searched_for(query: object) -> None:
    """A search handler's query text, for the request line (logged only if asked)."""
    g.query = query


def request_id() -> str:
    """This request's id (``-`` outside a request)."""
    if not has_request_context():
        return NO_REQUEST
    rid = g.get("request_id")
    if rid is None:
        given = request.headers.get(HEADER, "")
        rid = given if VALID_ID.fullmatch(given) else _new_id()
        g.request_id = rid
    return str(rid)


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` (for the formats to print)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id and, for the
    request line, its fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST),
            "pid": record.process,
        }
        out.update(getattr(record, "http", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(level: str, log_format: str) -> None:
    """Root logging for a server process: the format asked for, request ids on every line."""
    handler = BackgroundStreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access.setLevel(logging.INFO)


def _begin() -> None:
    g.log_start = time.perf_counter()
    request_id()


def _shown(path: str) -> str:
    """``path`` for a line of text: a character that does not print (a newline that would
    forge a second line, a NUL) as its escape."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def init_app(app: Flask, log_queries: bool) -> None:
    app.before_request(_begin)

    @app.after_request
    def log_request(response: Response) -> Response:
        rid = request_id()
        response.headers[HEADER] = rid
        start = g.get("log_start")
        ms = (time.perf_counter() - start) * 1000 if start is not None else 0.0
        rule = request.url_rule
        fields: dict[str, Any] = {
            "method": request.method,
            "route": rule.rule if rule is not None else None,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(ms, 1),
            "results": g.get("result_count"),
        }
        if log_queries:
            fields["query"] = g.get("query")  # what a search handler read, never re-parsed
        text = f"{fields['method']} {_shown(request.path)} {fields['status']} {ms:.1f}ms"
        if fields["results"] is not None:
            text += f" results={fields['results']}"
        if log_queries and fields.get("query") is not None:
            text += f" q={json.dumps(fields['query'], ensure_ascii=False)}"
        access.info(text, extra={"http": fields, "request_id": rid})
        return response
