"""Private files on S3 (STORAGE_BACKEND=s3), against moto's S3 server on loopback: uploads and
previews are stored in the bucket, nothing in it is public, and the original of a deliverable is
reached only through the gate, by a redirect to a URL signed for that object and valid for seconds."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from lib.privatestorage import PrivateS3Storage, private_storage
from orders.core.transitions import transition
from orders.models import Deliverable, FetchStatus, Status
from tests.conftest import make_order
from tests.orders.files_support import picture, start_s3_server, use_s3
from tests.orders.test_upload import created, upload

PNG = picture(1200, 900)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server, endpoint = start_s3_server()
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(settings: Any, s3_endpoint: str, request: pytest.FixtureRequest) -> Any:
    name = f"atelier-{abs(hash(request.node.nodeid)) % 10**9}-{time.monotonic_ns() % 10**6}"
    client = use_s3(settings, s3_endpoint, name)
    client.bucket = name
    return client


def keys(bucket: Any) -> list[str]:
    return sorted(item["Key"] for item in bucket.list_objects_v2(Bucket=bucket.bucket).get("Contents", []))


def test_the_private_storage_is_s3_and_has_no_url(bucket):
    storage = private_storage()
    assert isinstance(storage, PrivateS3Storage)
    name = storage.save("probe/original", ContentFile(b"fox"))
    assert keys(bucket) == [f"private/{name}"]
    with pytest.raises(ValueError, match="no URL"):
        storage.url(name)
    with storage.open(name, "rb") as handle:
        assert handle.read() == b"fox"
    with pytest.raises(FileNotFoundError):
        storage.open("probe/missing", "rb")


def test_an_original_is_a_short_lived_signed_redirect_after_the_gate(
    buyer, other_buyer, agent, other_agent, bucket, django_capture_on_commit_callbacks
):
    image = created(upload(agent.api, "fox.png", PNG))
    report = created(upload(agent.api, "report.pdf", PDF))
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.api.post(
            f"/api/orders/{order.id}/deliver",
            {
                "deliverables": [
                    {"deliverable_url": image["url"], "deliverable_media_type": "image"},
                    {"deliverable_url": report["url"], "deliverable_media_type": "document"},
                ]
            },
        )
    assert response.status_code == 200, response.body
    pic, doc = Deliverable.objects.filter(order=order).order_by("id")
    assert pic.fetch_status == FetchStatus.READY
    stored = keys(bucket)
    assert f"private/{pic.file_path}" in stored
    assert f"private/{pic.preview_path}" in stored

    # Nothing in the bucket is readable without a signature.
    for key in stored:
        assert requests.get(f"{bucket.meta.endpoint_url}/{bucket.bucket}/{key}", timeout=10).status_code == 403

    # The agent: a redirect to a URL signed for 60 seconds that returns the bytes with their type.
    redirect = agent.api.get(f"/api/deliverables/{pic.id}/original")
    assert redirect.status_code == 302
    assert redirect["Cache-Control"] == "private, no-store"
    url = redirect["Location"]
    assert url.startswith(bucket.meta.endpoint_url)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["60"]
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["Content-Type"] == "image/png"
    assert query["X-Amz-SignedHeaders"] == ["host"]  # signed for this host and path (moto does not check it)

    # The human buyer: the preview streams through the app; the image original is held back (403, no
    # redirect) until approval; the PDF is not gated and downloads as an attachment.
    assert buyer.api.get(f"/api/deliverables/{pic.id}/original").status_code == 403
    preview = buyer.api.get(f"/api/deliverables/{pic.id}/preview")
    assert preview.status_code == 200
    assert Image.open(io.BytesIO(b"".join(preview.streaming_content))).size == (720, 540)
    pdf = buyer.api.get(f"/api/deliverables/{doc.id}/original")
    assert pdf.status_code == 302
    download = requests.get(pdf["Location"], timeout=10)
    assert download.content == PDF
    assert download.headers["Content-Disposition"].startswith("attachment")

    # Strangers: 404 whoever they are, and never a URL.
    for stranger in (other_buyer.api, other_agent.api):
        refused = stranger.get(f"/api/deliverables/{pic.id}/original")
        assert refused.status_code == 404
        assert "Location" not in refused
    assert Client().get(f"/api/deliverables/{pic.id}/original").status_code == 401

    transition(order.id, "approve", buyer.principal)
    released = buyer.api.get(f"/api/deliverables/{pic.id}/original")
    assert released.status_code == 302
    assert requests.get(released["Location"], timeout=10).content == PNG


def test_a_signed_url_lives_as_long_as_the_setting_says(
    bucket, settings, agent, buyer, django_capture_on_commit_callbacks
):
    # moto does not enforce expiry (nor the signature's scope); S3 does. What the app controls is
    # what it asks for: the lifetime from PRIVATE_FILE_URL_SECONDS, signed now.
    settings.PRIVATE_FILE_URL_SECONDS = 15
    report = created(upload(agent.api, "report.pdf", PDF))
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        agent.api.post(
            f"/api/orders/{order.id}/deliver",
            {"deliverable_url": report["url"], "deliverable_media_type": "document"},
        )
    doc = Deliverable.objects.get(order=order)
    query = parse_qs(urlsplit(buyer.api.get(f"/api/deliverables/{doc.id}/original")["Location"]).query)
    assert query["X-Amz-Expires"] == ["15"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60


def test_streamed_when_signed_urls_are_off(agent, buyer, bucket, settings, django_capture_on_commit_callbacks):
    settings.PRIVATE_FILE_URL_SECONDS = 0
    report = created(upload(agent.api, "report.pdf", PDF))
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        agent.api.post(
            f"/api/orders/{order.id}/deliver",
            {"deliverable_url": report["url"], "deliverable_media_type": "document"},
        )
    doc = Deliverable.objects.get(order=order)
    streamed = buyer.api.get(f"/api/deliverables/{doc.id}/original")
    assert streamed.status_code == 200
    assert b"".join(streamed.streaming_content) == PDF
