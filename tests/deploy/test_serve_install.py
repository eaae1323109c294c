"""``pip install 'clipsearch[serve]'`` in a fresh venv: no torch, and ``clipsearch serve``
(and ``clipsearch search``) on an exported model answer the eval queries with the full
install's top 10."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from conftest import free_port
from folders import get_json, ingest_argv, run, start_group, stop_group, wait_until_up

from clipsearch.data.synthucf import freeform_queries, read_meta
from clipsearch.evaluation.retrieval import class_queries
from clipsearch.store.factory import StoreSettings
from webapp import create_app
from webapp.settings import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("clipsearch", "ingest", "webapp", "training")
# What the serve extra leaves out (the list, by import name).
LEFT_OUT = ("torch", "transformers", "lightning", "tensorboard", "matplotlib", "faiss", "dvc")


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the project installed from a copy of its files, serve extra only."""
    root = tmp_path_factory.mktemp("serve-install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{src}[serve]"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return venv


def test_the_serve_extra_installs_no_torch(serve_venv: Path) -> None:
    python = str(serve_venv / "bin" / "python")
    for name in LEFT_OUT:
        done = subprocess.run([python, "-c", f"import {name}"], capture_output=True, text=True)
        assert done.returncode != 0 and "No module named" in done.stderr, name
    # what needs another extra says which, in one line
    for argv, extra in (
        (["ingest", "videos", "--model", "m", "--store", "s"], "ingest"),
        (["export", "m"], "ingest"),
        (["train", "--data", "d", "--out", "o"], "train"),
    ):
        done = subprocess.run(
            [str(serve_venv / "bin" / "clipsearch"), *argv], capture_output=True, text=True
        )
        assert done.returncode == 1, argv
        assert done.stderr.endswith(f"pip install 'clipsearch[{extra}]'\n"), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr


def test_serve_on_the_export_answers_the_full_installs_top_10(
    serve_venv: Path, tiny_model_dir: Path, tiny_synth: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    code, _, err = run(["export", str(model)])
    assert code == 0, err
    store, media = tmp_path / "store", tmp_path / "media"
    code, _, err = run(ingest_argv(tiny_synth, model, store, media))
    assert code == 0, err
    meta = read_meta(tiny_synth) or {}
    classes = sorted({p.split("/")[0] for p in meta})
    queries = class_queries(classes) + [q.text for q in freeform_queries(list(meta.values()))]
    assert len(queries) > len(classes) > 1

    def top10(get: object) -> dict[str, list[str]]:
        answers = {}
        for query in queries:
            status, body = get(f"/api/search?q={urllib.parse.quote(query)}&k=10&min_score=-1")  # type: ignore[operator]
            assert status == 200, body
            answers[query] = [r["id"] for r in body["results"]]
        return answers

    port = free_port()
    log = tmp_path / "serve.log"
    argv = [str(serve_venv / "bin" / "clipsearch"), "serve", "--model", str(model)]
    argv += ["--store", str(store), "--media-dir", str(media), "--port", str(port)]
    # away from the checkout, whose packages Gunicorn would put on the path
    server = start_group(argv, log, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/api/health", server, log, "the serve-extra server", 120)
        served = top10(lambda path: get_json(base + path))
    finally:
        stop_group(server)
    # and `clipsearch search` from the same install
    for query in queries[:3]:
        argv = [str(serve_venv / "bin" / "clipsearch"), "search", query, "--model", str(model)]
        argv += ["--store", str(store), "-k", "10", "--min-score", "-1", "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert [r["id"] for r in json.loads(done.stdout)["results"]] == served[query]
    # the full install's web app, its text tower int8 (what `auto` picks on a CPU with VNNI)
    settings = Settings(
        model=str(model),
        store=StoreSettings(path=str(store)),
        media_dir=str(media),
        text_dtype="int8",
        cache_dir=str(tmp_path / "cache"),
    )
    app = create_app(settings)
    client = app.test_client()

    def full(path: str) -> tuple[int, object]:
        answer = client.get(path)
        return answer.status_code, answer.get_json()

    try:
        expected = top10(full)
    finally:
        from webapp.services import close_app

        close_app(app)
    assert all(len(ids) == min(10, len(meta)) for ids in served.values())
    assert served == expected, json.dumps({"served": served, "full": expected})[:3000]
