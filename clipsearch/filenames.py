"""File names as they come: any byte string is a valid name.

Linux file names are bytes; Python hands them over as text, with the bytes that are not
UTF-8 kept as lone surrogates (PEP 383). Such text cannot be stored in a JSON payload or
printed, so a path has two forms here: its **bytes** (what the operating system needs,
what clip ids are derived from) and its **display** form (the same text with each
undecodable byte shown as U+FFFD), which is what payloads, reports and pages show. A
payload whose source path is not plain text also keeps the bytes (``source_bytes``,
base64), so the file can be found again.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SOURCE_BYTES", "display", "payload_source", "source_fields"]

SOURCE_BYTES = "source_bytes"


def display(path: str | os.PathLike[str]) -> str:
    """``path`` as text that can be shown and stored: bytes that are not UTF-8 become
    U+FFFD; a name that is valid UTF-8 is returned unchanged."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "replace")
    return text


def source_fields(source: Path) -> dict[str, str]:
    """The payload fields naming a video file: ``source`` (display form) and, when that
    loses bytes, ``source_bytes`` (the exact name, base64)."""
    shown = display(source)
    if shown == str(source):
        return {"source": shown}
    return {"source": shown, SOURCE_BYTES: base64.b64encode(os.fsencode(source)).decode("ascii")}


def payload_source(payload: Mapping[str, Any]) -> Path | None:
    """The video file a payload names (exact bytes when it kept them), else None."""
    raw = payload.get(SOURCE_BYTES)
    if isinstance(raw, str):
        try:
            return Path(os.fsdecode(base64.b64decode(raw, validate=True)))
        except (binascii.Error, ValueError):
            return None
    source = payload.get("source")
    return Path(source) if isinstance(source, str) and source else None
