"""Static files in production: `collectstatic` writes hashed, compressed copies and the app server
serves them itself (whitenoise), cached for a year, without DEBUG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_collectstatic_makes_hashed_compressed_files_served_by_the_app(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "false",
        "STATIC_MANIFEST": "true",
        "STATIC_ROOT": str(tmp_path / "static"),
        "ATELIER_DATA_DIR": str(tmp_path),
    }
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert '"paths"' in manifest
    hashed = [p for p in (tmp_path / "static").rglob("*.css") if p.name.count(".") >= 2]
    assert hashed
    assert Path(f"{hashed[0]}.gz").exists()
    # Served by the WSGI app with whitenoise, as gunicorn would.
    script = (
        "import django; django.setup(); from django.test import Client;"
        f"r = Client().get('/static/{hashed[0].relative_to(tmp_path / 'static').as_posix()}');"
        "print(r.status_code, r.headers.get('Cache-Control'))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "atelier.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    status, cache = out.split(maxsplit=1)
    assert status == "200"
    assert "max-age=315360000" in cache
    assert "immutable" in cache
