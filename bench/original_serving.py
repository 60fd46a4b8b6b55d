"""Serving a deliverable's original from S3: a presigned redirect against streaming through the app.

    .venv/bin/python bench/original_serving.py

Against moto's S3 server on loopback: for files of 1 MB and 20 MB, the app server's time per request
(sign a URL, or read the object from S3 and hand every byte to the client) and the client's total
time (redirect then S3, or the app's stream). The app's time is what holds a gunicorn worker.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atelier.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("ATELIER_DATA_DIR", tempfile.mkdtemp(prefix="atelier-serving-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> None:
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.core.files.base import ContentFile

    from lib import privatestorage
    from tests.orders.files_support import start_s3_server, use_s3

    server, endpoint = start_s3_server()
    try:
        use_s3(settings, endpoint, "serving-bench")
        from django.core.files.storage import storages

        storages._storages = {}  # type: ignore[attr-defined]  # the settings above, not the cached ones
        storage = privatestorage.private_storage()
        print("| size | app: redirect | app: stream | client: redirect + S3 | client: stream |")
        print("|---|---|---|---|---|")
        for megabytes in (1, 20):
            name = storage.save(f"bench/{megabytes}mb", ContentFile(os.urandom(megabytes * 1024 * 1024)))
            app_redirect, app_stream, client_redirect, client_stream = [], [], [], []
            for _ in range(10):
                began = time.perf_counter()
                url = privatestorage.presigned_url(
                    name, seconds=60, content_type="application/pdf", download_name="x", inline=False
                )
                app_redirect.append(time.perf_counter() - began)
                if url is None:
                    raise RuntimeError("the storage is not S3")
                requests.get(url, timeout=60).content  # noqa: B018
                client_redirect.append(time.perf_counter() - began)

                began = time.perf_counter()
                with storage.open(name, "rb") as handle:
                    while handle.read(64 * 1024):
                        pass
                app_stream.append(time.perf_counter() - began)
                client_stream.append(time.perf_counter() - began)  # the app's read is the client's wait

            def ms(values: list[float]) -> str:
                return f"{statistics.median(values) * 1000:.1f} ms"

            print(
                f"| {megabytes} MB | {ms(app_redirect)} | {ms(app_stream)} | {ms(client_redirect)} | {ms(client_stream)} |"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
