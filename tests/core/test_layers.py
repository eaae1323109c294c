"""The floors of the house, pinned: what each part of ``clipsearch`` may import.

- the library (``clipsearch/*.py``, ``store/``) at the bottom; above it ``data/``, then
  ``pipeline/`` (decoding and embedding, which evaluation shares), then ``evaluation/``
  and ``bench/`` side by side (neither imports the other), then ``cli/`` on top: no
  floor imports a higher one;
- nothing in ``clipsearch/`` outside ``cli/`` imports the tool packages (``ingest``,
  ``webapp``, ``training``) or Flask or Lightning, not even inside a function;
- ``cli/`` imports the tool packages only inside handlers, so ``clipsearch --help`` loads
  neither them nor torch.

Checked twice: every import statement in the source (those inside functions too), and
what importing the modules really loads, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clipsearch"
TOOLS = ("ingest", "webapp", "training", "flask", "lightning")
FLOORS = {"library": 0, "data": 1, "pipeline": 2, "evaluation": 3, "bench": 3, "cli": 4}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def floor(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in FLOORS:
        return parts[1]
    return "library"  # the root modules and store/


def imports(source: str) -> list[tuple[str, int, bool]]:
    """(module imported, line, at module level) for every import statement of ``source``."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            found.append((name, node.lineno, id(node) in top))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def violations(path: Path, source: str | None = None) -> list[str]:
    """What ``path`` (or ``source`` standing in its place) imports that its floor may not."""
    mine = floor(module_name(path))
    problems = []
    for name, line, at_top in imports(path.read_text() if source is None else source):
        where = f"{path.relative_to(ROOT)}:{line} imports {name}"
        top = name.split(".")[0]
        if top in TOOLS and (mine != "cli" or at_top):
            rule = "at module level" if mine == "cli" else "at all"
            problems.append(f"{where}: {mine} may not import {top} {rule}")
        if top != "clipsearch" or name.count(".") < 1:
            continue
        theirs = floor(name)
        if theirs not in FLOORS or not (PACKAGE / name.split(".")[1]).exists():
            continue
        if FLOORS[theirs] > FLOORS[mine] or (theirs != mine and FLOORS[theirs] == FLOORS[mine]):
            problems.append(f"{where}: the {mine} floor may not import the {theirs} floor")
    return problems


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_above_its_floor(path: Path) -> None:
    assert violations(path) == []


def test_the_rule_catches_a_library_module_importing_the_web_app() -> None:
    path = PACKAGE / "search.py"
    planted = path.read_text().replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport webapp\n",
        1,
    )
    assert violations(path) == []
    assert any("library may not import webapp" in v for v in violations(path, planted))
    lazy = path.read_text() + "\n\ndef later() -> None:\n    from clipsearch.cli import main\n"
    assert any("may not import the cli floor" in v for v in violations(path, lazy))


def _loaded(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_importing_every_library_and_wing_module_loads_no_tool_package() -> None:
    names = [module_name(p) for p in MODULES if floor(module_name(p)) != "cli"]
    loaded = _loaded("\n".join(f"import {name}" for name in names))
    assert [m for m in loaded if m.split(".")[0] in TOOLS] == []


def test_the_command_line_loads_no_tool_package_nor_torch_until_a_handler_runs() -> None:
    loaded = _loaded("import clipsearch.cli\nclipsearch.cli.build_parser()")
    assert [m for m in loaded if m.split(".")[0] in (*TOOLS, "torch")] == []


def test_no_test_folder_shadows_a_package() -> None:
    # pytest puts tests/ on sys.path: a tests/webapp/ folder would be found as `webapp`
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}
    assert packages & folders == set()
