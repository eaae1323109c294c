"""The ``clipsearch`` command line: argument parsing and exit codes only.

Each subcommand builds settings from its flags (and ``CLIPSEARCH_*`` variables
for the store), calls into the library, and turns a ``ClipSearchError`` into a
one-line message and a non-zero exit code. Heavy packages (torch, Flask,
Lightning) are imported only by the subcommand that needs them.

One module per area (``data``, ``train``, ``ingest``, ``search``, ``serve``,
``evaluate``, ``bench``; ``bench_index`` and ``bench_moments`` for the two big
benchmarks), each with its commands' handlers (``cmd_*``) next to the functions that
register them (``add_<command>(sub, common)``: the parser, its flags, its handler);
``main`` registers them in the order ``clipsearch --help`` lists them.
"""

from clipsearch.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
