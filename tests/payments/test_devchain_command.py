"""`manage.py devchain` on a port that is taken exits non-zero at once, saying which port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def devchain(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST_"))}
    env.update({"ATELIER_DATA_DIR": str(tmp_path), "DEVCHAIN_STATE": str(tmp_path / "devchain.json")})
    return subprocess.run(  # noqa: S603 (manage.py with fixed arguments)
        [sys.executable, "manage.py", "devchain", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("chain", ["solana", "evm"])
def test_a_taken_port_exits_non_zero_naming_it(tmp_path, taken, chain):
    ports = {"solana": str(free_port()), "evm": str(free_port())}
    ports[chain] = str(taken)

    result = devchain(tmp_path, "--solana-port", ports["solana"], "--evm-port", ports["evm"])

    assert result.returncode != 0
    assert f"port {taken} on 127.0.0.1 is taken" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "devchain.json").exists()  # nothing claims the chains are up
