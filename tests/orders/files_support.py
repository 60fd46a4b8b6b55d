"""What the watermark gate and upload tests share: private storage in a temporary folder, tasks
that run at once, a loopback image server, and real images made with Pillow."""

from __future__ import annotations

import io
import logging
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from PIL import Image, ImageDraw

CAMERA = "Atelier Test Camera"


def use_private_tmp(settings: Any, tmp_path: Path) -> Path:
    """Private files under the test's folder; fetch tasks run at once (after commit)."""
    root = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "lib.privatestorage.PrivateStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    return root


def picture(width: int = 2000, height: int = 1500, *, exif: bool = True, fmt: str = "PNG") -> bytes:
    """A busy picture (stripes and a disc), with a camera name in its EXIF."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 20):
        draw.rectangle([x, 0, x + 20, height], fill=(x % 255, (x * 3) % 255, 120))
    draw.ellipse([width // 4, height // 5, width * 3 // 4, height * 4 // 5], fill=(250, 200, 40))
    buffer = io.BytesIO()
    options: dict[str, Any] = {}
    if exif:
        tags = Image.Exif()
        tags[0x010F] = CAMERA  # Make
        tags[0x0110] = "Model X"  # Model
        options["exif"] = tags
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels (a decompression bomb's header), tiny on the wire."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


@dataclass
class ImageServer:
    """A loopback HTTP server: path -> (status, content type, body, extra headers); counts hits."""

    port: int = 0
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def serve(self, path: str, body: bytes, content_type: str = "image/png", status: int = 200, **headers: str) -> str:
        self.routes[path] = (status, content_type, body, headers)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def image_server() -> Iterator[ImageServer]:
    state = ImageServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            status, content_type, body, headers = state.routes.get(self.path, (404, "text/plain", b"no", {}))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- a local S3 endpoint (moto's server mode on loopback) ---------------------------------------

S3_KEY, S3_SECRET = "testing-key-id", "testing-secret-access-key"


def start_s3_server() -> tuple[Any, str]:
    """moto's S3 as a real HTTP server on a free loopback port: the app talks to it as to AWS."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def use_s3(settings: Any, endpoint: str, bucket: str) -> Any:
    """Private files in a fresh bucket on the local S3 endpoint; fetch tasks run at once. Returns a
    boto3 client to look at the bucket as an outsider would."""
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket=bucket)
    settings.STORAGE_BACKEND = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "lib.privatestorage.PrivateS3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "location": "private",
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": S3_KEY,
                "secret_key": S3_SECRET,
                "addressing_style": "path",
            },
        },
    }
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    return client
