"""Which extra of ``pip install 'clipsearch[...]'`` brings each optional package: a
command whose package is missing says so in one line (``clipsearch.cli.main``).

The base install searches (the ONNX export, the stores, media); ``serve`` adds the web
app; ``ingest`` torch and ``transformers`` (embedding videos, ``clipsearch export``);
``train`` Lightning and its logging; ``bench`` FAISS and the plots.
"""

from __future__ import annotations

import importlib.util

EXTRA_OF = {
    "torch": "ingest",
    "transformers": "ingest",
    "safetensors": "ingest",
    "huggingface_hub": "ingest",
    "onnx": "ingest",
    "flask": "serve",
    "werkzeug": "serve",
    "gunicorn": "serve",
    "lightning": "train",
    "tensorboard": "train",
    "faiss": "bench",
    "matplotlib": "bench",
}


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one-line message for a missing package an extra brings (None for others)."""
    package = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(package)
    if extra is None or installed(package):
        return None  # not ours, or installed with a part missing: a real error
    return f"this command needs {package}, not installed here: pip install 'clipsearch[{extra}]'"
