"""The DVC pipeline (dvc.yaml) end to end, on a tiny SynthUCF: `dvc repro`, `dvc metrics
show`, `dvc exp run -S`, and `dvc push`/`pull` through a local remote.

The repository's own dvc.yaml and .dvc/config run in a scratch git repository with the
repository's params.yaml made small (same keys; a smaller dataset, one epoch, no synthetic
benchmark sizes), so the default suite stays fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CODE = ("clipsearch", "training", "ingest")
TINY = {
    "data": {
        "options": {
            "classes": 4,
            "groups": 10,  # split 1 trains on groups 8-10, and validates on 9-10
            "clips": 1,
            "moments-per-class": 0,
            "long-videos": 0,
            "workers": 2,
        }
    },
    "train": {"max_epochs": 1},
    "bench": {"sizes": "none", "queries": 50},
}


def _dvc(repo: Path, *args: str, timeout: float = 600) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        assert key in base, f"params.yaml has no {key!r}"
        out[key] = _merge(base[key], value) if isinstance(value, dict) and base[key] else value
    return out


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("pipeline") / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    for name in CODE:
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(_merge(params, TINY), sort_keys=False))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "pipeline")
    _dvc(repo, "repro")
    return repo


def _metrics(repo: Path) -> dict[str, Any]:
    shown = json.loads(_dvc(repo, "metrics", "show", "--json"))
    (workspace,) = shown.values()  # {"": {"data": {path: {"data": {...}}}}}
    return {path: entry["data"] for path, entry in workspace["data"].items()}


def test_the_shipped_remote_is_a_folder_outside_the_checkout() -> None:
    config = (ROOT / ".dvc" / "config").read_text()
    assert "remote = local" in config and "analytics = false" in config
    url = next(line.split("=", 1)[1].strip() for line in config.splitlines() if "url" in line)
    remote = (ROOT / ".dvc" / url).resolve()
    assert ROOT not in remote.parents and remote != ROOT


@pytest.mark.slow
def test_repro_runs_every_stage_and_metrics_show_lists_the_figures(pipeline: Path) -> None:
    metrics = _metrics(pipeline)
    evaluation = metrics["metrics/eval.json"]
    assert 0.0 < evaluation["mAP"] <= 1.0 and evaluation["n_clips"] == 28
    bench = metrics["metrics/bench/metrics.json"]["demo"]
    assert bench["n"] == 40 and bench["faiss_exact_p50_ms"] > 0
    assert bench["qdrant_float32_recall"] >= 0.99  # Qdrant against FAISS exact search
    assert metrics["metrics/ingest.json"]["ingested"] == 40
    train = metrics["metrics/train.json"]
    # eval scored the model the train stage wrote (its int8 text tower, so the figure is
    # close to, not equal to, the training run's own fp32 one)
    assert train["epochs"] == 1 and train["model_id"] == evaluation["model"]
    # training validates on groups of its training list; the test list is eval's alone
    assert 0.0 < train["val_mAP"] <= 1.0 and "split1_test" not in train
    plots = pipeline / "var" / "dvc" / "model" / "logs"
    assert (plots / "train_loss.csv").read_text().startswith("step,train_loss\n")
    assert (pipeline / "metrics" / "bench" / "recall_latency.csv").exists()
    assert "up to date" in _dvc(pipeline, "status")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edited", "reruns"),
    [
        ("clipsearch/bench/index.py", {"bench"}),
        ("clipsearch/cli/main.py", set()),
        ("clipsearch/evaluation/retrieval.py", {"train", "eval"}),
        ("clipsearch/windows.py", {"train", "ingest", "eval", "bench"}),
    ],
)
def test_an_edit_reruns_only_the_stages_that_run_it(
    pipeline: Path, edited: str, reruns: set[str]
) -> None:
    path = pipeline / edited
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    try:
        changed = json.loads(_dvc(pipeline, "status", "--json"))
    finally:
        path.write_text(original)
    assert set(changed) == reruns
    assert "up to date" in _dvc(pipeline, "status")


@pytest.mark.slow
def test_exp_run_with_a_changed_parameter(pipeline: Path) -> None:
    before = _metrics(pipeline)["metrics/train.json"]
    _dvc(pipeline, "exp", "run", "-S", "train.max_epochs=2")
    after = _metrics(pipeline)["metrics/train.json"]
    assert after["epochs"] == 2 and after["steps"] == 2 * before["steps"]
    assert "train.max_epochs" in _dvc(pipeline, "params", "diff")


@pytest.mark.slow
def test_push_and_pull_through_a_local_remote(pipeline: Path, tmp_path: Path) -> None:
    _dvc(pipeline, "remote", "add", "--local", "-f", "-d", "scratch", str(tmp_path / "remote"))
    _dvc(pipeline, "push")
    model = pipeline / "var" / "dvc" / "model"
    weights = (model / "model.safetensors").read_bytes()
    shutil.rmtree(model)
    shutil.rmtree(pipeline / ".dvc" / "cache")
    _dvc(pipeline, "pull")
    assert (model / "model.safetensors").read_bytes() == weights


# What each stage's command runs, beyond the command line itself: the modules it starts from.
STAGE_ROOTS = {
    "train": ["training", "clipsearch.evaluation.calibrate"],
    "ingest": ["clipsearch.pipeline.runner", "ingest.job", "ingest.versioned", "ingest.watch"],
    "eval": ["clipsearch.evaluation.retrieval"],
    "bench": ["clipsearch.cli.bench_index"],
}


def _module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _reachable(roots: list[str]) -> set[Path]:
    """The project's files that ``roots`` (modules or packages) import, directly or not,
    counting imports inside functions."""
    import ast

    todo = []
    for root in roots:
        file = _module_file(root)
        assert file is not None, root
        todo += sorted(file.parent.rglob("*.py")) if file.name == "__init__.py" else [file]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] in CODE and (found := _module_file(name)) is not None:
                    todo.append(found)
    return seen


@pytest.mark.parametrize("stage", sorted(STAGE_ROOTS))
def test_each_stage_depends_on_the_code_it_runs_and_not_on_the_rest(stage: str) -> None:
    deps = [
        ROOT / d
        for d in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"]
        if not d.startswith("$")
    ]
    covered = {
        f for f in _reachable(STAGE_ROOTS[stage]) if f.name != "__init__.py" or f.stat().st_size
    }
    missing = [
        str(f.relative_to(ROOT))
        for f in sorted(covered)
        if not any(f == d or d in f.parents for d in deps)
    ]
    assert missing == [], f"{stage} runs these files but does not depend on them"
    for floor in ("clipsearch/cli", "clipsearch/bench", "clipsearch/evaluation", "ingest"):
        if not any((ROOT / floor) in f.parents for f in covered):
            assert ROOT / floor not in deps, f"{stage} depends on {floor}, which it never runs"
    assert ROOT / "clipsearch" not in deps  # the whole package: any edit would rerun it
