"""The command line and the API read filters through one grammar (clipsearch.filters) and
answer in one shape (clipsearch.responses): the same search gives the same store filter
and the same JSON, but for what only one of them can show (the API's media URLs, the
command line's file paths)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from clipsearch.cli import build_parser, main
from clipsearch.cli.search import search_filter
from clipsearch.errors import InvalidInput
from clipsearch.store.factory import StoreSettings
from webapp import create_app
from webapp.query import from_args
from webapp.settings import Settings

QUERY = "a ball bouncing"
FILTERS = [
    ("class", "BallBouncing"),
    ("class", "BoxSpinning"),
    ("split", "1:test"),
    ("min_duration", "1"),
    ("max_duration", "30"),
]
FLAGS = {"class": "--class", "split": "--split"}
URL_KEYS = ("video_url", "thumbnail_url", "play_url")


def _cli_argv(model: Path, store: Path) -> list[str]:
    argv = ["search", QUERY, "--model", str(model), "--store", str(store)]
    for key, value in FILTERS:
        argv += [FLAGS.get(key, "--" + key.replace("_", "-")), value]
    return [*argv, "-k", "5", "--min-score", "-1", "--text-dtype", "fp32", "--json"]


def _without_urls(answer: dict[str, Any]) -> dict[str, Any]:
    out = dict(answer, took_ms=0)
    out["results"] = [
        {
            **{k: v for k, v in r.items() if k not in URL_KEYS},
            "segments": [
                {k: v for k, v in s.items() if k != "thumbnail_url"} for s in r["segments"]
            ],
        }
        for r in answer["results"]
    ]
    return out


def test_the_same_filters_make_the_same_store_filter(tmp_path: Path) -> None:
    args = build_parser().parse_args(_cli_argv(tmp_path, tmp_path))
    cli_filter, cli_given = search_filter(args)
    api = from_args(MultiDict(FILTERS), default_k=12)
    assert cli_filter == api.filter and cli_given == api.given
    assert cli_filter["class"] == ["BallBouncing", "BoxSpinning"]


def test_a_bad_filter_is_named_as_each_caller_names_it(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [*_cli_argv(tmp_path, tmp_path), "--min-duration", "9", "--max-duration", "3"]
    )
    with pytest.raises(InvalidInput, match=r"--min-duration \(9\.0\) is above --max-duration"):
        search_filter(args)
    with pytest.raises(InvalidInput, match=r"^min_duration \(9\.0\) is above max_duration"):
        from_args(MultiDict([("min_duration", "9"), ("max_duration", "3")]), default_k=12)


def test_the_same_search_gives_the_same_json(
    tiny_model_dir: Path, tiny_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    ingest = ["ingest", str(tiny_synth), "--model", str(tiny_model_dir), "--store", str(store)]
    assert main([*ingest, "--media-dir", str(tmp_path / "media"), "-q"]) == 0
    capsys.readouterr()
    assert main(_cli_argv(tiny_model_dir, store)) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["results"], "the filters left nothing to compare"
    assert all(Path(r.pop("source")).is_file() for r in cli["results"])

    settings = Settings(
        model=str(tiny_model_dir),
        store=StoreSettings(path=str(store)),
        media_dir=str(tmp_path / "media"),
        text_dtype="fp32",
        image_search=False,
    )
    client = create_app(settings).test_client()
    response = client.get(
        "/api/search",
        query_string=MultiDict([("q", QUERY), ("k", "5"), ("min_score", "-1"), *FILTERS]),
    )
    assert response.status_code == 200
    api = response.get_json()
    assert all(r["video_url"] and r["play_url"] for r in api["results"])
    assert _without_urls(api) == dict(cli, took_ms=0)
