"""requirements.txt is what production installs: no devchain, test or bench tool in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_ONLY = {"eth-tester", "py-evm", "moto", "pytest", "ruff", "mypy", "playwright", "schemathesis", "import-linter"}


def _names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[=<>~ ;]", line, maxsplit=1)[0].lower())
    return names


def test_production_requirements_hold_no_dev_tool() -> None:
    production = (ROOT / "requirements.txt").read_text()
    assert not _names(ROOT / "requirements.txt") & DEV_ONLY
    assert "[tester]" not in production


def test_every_requirement_is_pinned() -> None:
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                assert "==" in line, f"{name}: {line} is not pinned"


def test_dev_requirements_install_production_first() -> None:
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
