"""`manage.py runlocal` (`make run`): a part that does not start stops everything, exit non-zero."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.payments.test_devchain_command import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def runlocal(tmp_path: Path, **ports: int) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST_"))}
    env.update(
        {
            "DEBUG": "true",
            "ATELIER_DATA_DIR": str(tmp_path),
            "DEVCHAIN_STATE": str(tmp_path / "devchain.json"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **{name.upper(): str(port) for name, port in ports.items()},
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "runlocal"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_taken_chain_port_fails_before_anything_starts(tmp_path, taken):
    result = runlocal(tmp_path, port=free_port(), solana_port=taken, base_port=free_port())

    assert result.returncode == 1
    assert f"Cannot start the devchains: port {taken} on 127.0.0.1 is taken" in result.stderr
    assert "Atelier is running" not in result.stdout


def test_a_taken_server_port_stops_the_devchains_already_started(tmp_path, taken):
    solana, base = free_port(), free_port()

    result = runlocal(tmp_path, port=taken, solana_port=solana, base_port=base)

    assert result.returncode == 1
    assert f"Cannot start the server: port {taken} on 127.0.0.1 is taken" in result.stderr
    assert "Atelier is running" not in result.stdout
    assert not answers(solana)
    assert not answers(base)
