"""The rooms stay apart: handlers/ and storage/ import no chat, network or scheduler library; the layers of
ARCHITECTURE.md hold (import-linter contracts in pyproject.toml), and no import hides a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"telegram", "discord", "httpx", "aiohttp", "requests", "apscheduler", "matplotlib", "bot"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_handlers_and_storage_import_no_chat_network_or_scheduler_library() -> None:
    offenders = {}
    for room in ("handlers", "storage"):
        for path in sorted((ROOT / room).rglob("*.py")):
            bad = imported_roots(path) & FORBIDDEN
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_storage_does_not_import_handlers() -> None:
    for path in (ROOT / "storage").rglob("*.py"):
        assert "handlers" not in imported_roots(path), path


def test_the_check_itself_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom telegram.ext import Application\n")
    assert imported_roots(sample) & FORBIDDEN == {"telegram"}


def test_the_import_linter_contracts_hold() -> None:
    """bot -> handlers -> storage; inside handlers dispatch -> posts -> engagement -> workspace -> core; no chat,
    network, web or scheduler library below bot (the contracts in pyproject.toml)."""
    # in its own process: lint_imports configures logging with dictConfig, which disables every logger that
    # exists (herald.*), so later tests reading caplog would see nothing
    run = ("import sys; from importlinter.cli import lint_imports; "
           "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    result = subprocess.run([sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True, timeout=300)
    code = result.returncode
    assert code == 0, result.stdout + result.stderr


def hidden_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Imports of handlers modules made inside a function or under TYPE_CHECKING: each would hide a cycle."""
    tree = ast.parse(path.read_text(), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        inner = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or (
            isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
        if not inner:
            continue
        for sub in ast.walk(node):
            names = [sub.module or ""] if isinstance(sub, ast.ImportFrom) else (
                [a.name for a in sub.names] if isinstance(sub, ast.Import) else [])
            if any(name.startswith("handlers") for name in names):
                hits.append(f"{path.relative_to(root)}:{sub.lineno}")
    return hits


def test_no_import_inside_a_function_or_under_type_checking_hides_a_cycle_in_handlers() -> None:
    hits = [hit for path in sorted((ROOT / "handlers").rglob("*.py")) for hit in hidden_imports(path)]
    assert hits == []


def test_the_hidden_import_check_itself_finds_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from handlers.core.chat import Reply\n"
        "def f():\n    import handlers.core.words\n"
    )
    assert hidden_imports(sample, tmp_path) == ["sample.py:3", "sample.py:5"]
