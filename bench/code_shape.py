"""The code's shape, for issue notes: module sizes, function sizes and complexity, duplicated pairs.

    .venv/bin/python bench/code_shape.py [TREE]      # TREE: a checkout (default: this one)

Compare two commits by running it on a worktree of each (`git worktree add /tmp/before REV`).
Function sizes come from the AST (the def line to the last line of its body), complexity from
ruff's mccabe rule (C901), duplicated pairs from the workplace's `duplicates` command (when on
PATH), counted only where both sides are app code (not tests, bench or migrations).
"""

from __future__ import annotations

import ast
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

APPS = ("atelier", "api", "identity", "orders", "payments", "agents", "webhooks", "idempotency", "lib", "devchain")
SDK = "clients/python/atelier_client"
LIMIT = 450


def modules(tree: Path) -> list[Path]:
    found = []
    for root in (*APPS, SDK):
        base = tree / root
        if base.is_dir():
            found += [p for p in base.rglob("*.py") if "migrations" not in p.parts]
    return sorted(found)


def functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((node.name, (node.end_lineno or node.lineno) - node.lineno + 1))
    return out


def complexity(tree: Path, paths: list[Path]) -> list[tuple[str, int]]:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(  # noqa: S603
        [
            str(ruff),
            "check",
            "--isolated",
            "--select",
            "C901",
            "--config",
            "lint.mccabe.max-complexity=0",
            "--output-format",
            "json",
            *[str(p) for p in paths],
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
    )
    rows = []
    for item in json.loads(result.stdout or "[]"):
        # "`name` is too complex (N > 0)"
        message = item["message"]
        name = message.split("`")[1]
        score = int(message.split("(")[1].split(" ")[0])
        rows.append((f"{Path(item['filename']).relative_to(tree)}:{name}", score))
    return rows


def _app_code(side: str) -> bool:
    return (side.split("/")[0] in APPS or side.startswith(SDK)) and "/migrations/" not in side


def duplicated_pairs(tree: Path) -> list[str]:
    if shutil.which("duplicates") is None:
        return ["(duplicates not on PATH)"]
    result = subprocess.run(  # noqa: S603
        ["duplicates", "--most", "200", "--seconds", "120", "--repo", str(tree)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    pairs = []
    for line in result.stdout.splitlines():
        if not line.startswith("D"):
            continue
        sides = [part for part in line.split() if ":" in part and part.endswith(tuple("0123456789"))]
        if len(sides) >= 2 and all(_app_code(side) for side in sides[:2]):
            pairs.append(line)
    return pairs


def main() -> None:
    tree = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    paths = modules(tree)
    sizes = sorted(((len(p.read_text().splitlines()), str(p.relative_to(tree))) for p in paths), reverse=True)
    lengths = sorted((n, f"{p.relative_to(tree)}:{name}") for p in paths for name, n in functions(p))
    counts = [n for n, _ in lengths]
    scores = sorted(complexity(tree, paths), key=lambda row: -row[1])
    pairs = duplicated_pairs(tree)
    print(
        json.dumps(
            {
                "modules": len(paths),
                "lines": sum(n for n, _ in sizes),
                "modules_over_450": [f"{p} ({n})" for n, p in sizes if n > LIMIT],
                "largest_modules": [f"{p} ({n})" for n, p in sizes[:10]],
                "functions": len(counts),
                "function_lines": {
                    "median": statistics.median(counts),
                    "p90": counts[int(len(counts) * 0.9)],
                    "p99": counts[int(len(counts) * 0.99)],
                    "max": counts[-1],
                    "over_40": sum(n > 40 for n in counts),
                    "over_60": sum(n > 60 for n in counts),
                },
                "longest_functions": [f"{name} ({n})" for n, name in lengths[-8:][::-1]],
                "complexity_over_10": sum(score > 10 for _, score in scores),
                "most_complex": [f"{name} ({score})" for name, score in scores[:8]],
                "duplicated_pairs_between_app_modules": len(pairs),
                "pairs": pairs[:20],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
