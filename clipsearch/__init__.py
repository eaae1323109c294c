"""clipsearch: natural-language search over video collections (core package).

The core never imports Flask or Lightning: the web app lives in ``webapp``,
training in ``training`` and the ingest pipeline in ``ingest``.
"""

__version__ = "0.1.0"
