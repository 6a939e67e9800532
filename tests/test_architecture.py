"""The rooms stay apart: handlers/ and storage/ import no chat, network or scheduler library."""

from __future__ import annotations

import ast
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
