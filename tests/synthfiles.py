"""Reading a generated SynthUCF root back in tests: file digests, list lines, meta rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by POSIX path relative to it."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_lines(path: Path) -> list[str]:
    """A text file's lines as written (UTF-8, any line ending)."""
    return path.read_bytes().decode("utf-8").splitlines()


def meta_rows(root: Path) -> list[dict[str, Any]]:
    """The rows of ``<root>/synth_meta.jsonl``, in file order."""
    return [json.loads(line) for line in (root / "synth_meta.jsonl").read_text().splitlines()]
