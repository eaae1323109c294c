"""One ``clipsearch ingest`` run as a job: into the store the settings name, or, with an
alias, into a new version of it (filled, then the alias moved over), around the pipeline
(:func:`clipsearch.pipeline.runner.ingest`). The command line parses flags and prints;
this decides what is opened, filled and swapped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from clipsearch.data.collection import Collection
from clipsearch.model import ClipEncoder
from clipsearch.pipeline.runner import IngestOptions, IngestReport, ingest
from clipsearch.store.factory import StoreSettings, open_store


@dataclass(frozen=True)
class JobResult:
    report: IngestReport
    # what moving the alias did, a line each (empty without an alias, or with no swap)
    swapped: list[str] = field(default_factory=list)


def run(
    collection: Collection,
    encoder: ClipEncoder,
    settings: StoreSettings,
    options: IngestOptions,
    *,
    model: str,
    alias: str | None = None,
    swap: bool = True,
    drop_old: bool = False,
    progress: Callable[[int], None] | None = None,
    announce: Callable[[str], None] = lambda line: None,
) -> JobResult:
    """Ingest ``collection`` with ``encoder`` (loaded from ``model``, a path or hub id)."""
    if alias is None:
        store = open_store(settings)
        try:
            return JobResult(
                ingest(collection, encoder, store, options, progress=progress, announce=announce)
            )
        finally:
            store.close()

    from clipsearch.store.aliases import ModelRef
    from ingest.versioned import VersionBuild, model_reference

    build = VersionBuild.open(settings, alias, encoder.model_id)
    try:
        verb = "resuming" if build.plan.resumed else "building"
        announce(f"{verb} {build.plan.version} for alias {alias!r}")
        report = ingest(
            collection, encoder, build.store, options, progress=progress, announce=announce
        )
        swapped: list[str] = []
        if report.ok:
            swapped = build.finish(
                ModelRef(model_reference(model), encoder.model_id), swap=swap, drop_old=drop_old
            )
        return JobResult(report, swapped)
    finally:
        build.close()
