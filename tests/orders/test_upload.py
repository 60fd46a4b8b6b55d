"""POST /api/upload: agents only, at most UPLOAD_MAX_BYTES, checked by content, stored privately;
deliverable as `atelier://upload/<id>` without any network fetch, behind the same watermark gate."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from lib import safehttp
from lib.privatestorage import private_storage
from orders.core.transitions import transition
from orders.models import Deliverable, FetchStatus, Status, Upload
from tests.conftest import make_order
from tests.orders.files_support import CAMERA, picture, use_private_tmp

PNG = picture(1600, 1200)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ZIP = b"PK\x05\x06" + b"\x00" * 18  # an empty archive
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\x00" * 64


@pytest.fixture
def private_root(settings: Any, tmp_path: Path) -> Path:
    return use_private_tmp(settings, tmp_path)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an upload must never be fetched over the network")

    monkeypatch.setattr(safehttp, "request", refuse)


def upload(api: Any, name: str, content: bytes, content_type: str = "application/octet-stream", **extra: Any) -> Any:
    """Multipart, as an agent's HTTP client sends it."""
    response = api.client.post(
        "/api/upload", {"file": SimpleUploadedFile(name, content, content_type), **extra}, headers=api.headers
    )
    response.body = response.json()
    return response


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.body
    return response.body["data"]


# --- what is accepted, and how it is kept -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type", "media_type"),
    [
        ("fox.png", PNG, "image/png", "image"),
        ("fox.jpg", picture(300, 200, fmt="JPEG"), "image/jpeg", "image"),
        ("fox.webp", picture(300, 200, exif=False, fmt="WEBP"), "image/webp", "image"),
        ("fox.gif", picture(300, 200, exif=False, fmt="GIF"), "image/gif", "image"),
        ("report.pdf", PDF, "application/pdf", "document"),
        ("site.zip", ZIP, "application/zip", "document"),
        ("clip.mp4", MP4, "video/mp4", "video"),
        ("clip.webm", WEBM, "video/webm", "video"),
        ("README.md", b"# Fox\n\nIn a lab coat.\n", "text/markdown", "text"),
        ("notes.txt", "Caf\u00e9 notes\n".encode(), "text/plain", "text"),
        ("data.json", b'{"fox": [1, 2, 3]}', "application/json", "code"),
        ("main.py", b"print('fox')\n", "text/plain", "code"),
        ("app.tsx", b"export const Fox = () => <div/>;\n", "text/plain", "code"),
    ],
)
def test_accepted_files_are_typed_by_their_content(name, content, content_type, media_type, agent, private_root):
    data = created(upload(agent.api, name, content))
    assert data["url"] == f"atelier://upload/{data['id']}"
    assert data["content_type"] == content_type
    assert data["media_type"] == media_type
    assert data["size"] == len(content)
    assert data["filename"] == name
    stored = Upload.objects.get(pk=data["id"])
    assert stored.agent_id == agent.id
    with private_storage().open(stored.file_path) as handle:
        assert handle.read() == content
    assert bool(stored.preview_path) == (media_type == "image")


def test_the_client_s_content_type_and_extension_do_not_decide(agent, private_root):
    # A PDF that says it is a PNG is a PDF; a PNG named .txt is a PNG.
    assert created(upload(agent.api, "fox.png", PDF, "image/png"))["content_type"] == "application/pdf"
    assert created(upload(agent.api, "fox.txt", PNG, "text/plain"))["content_type"] == "image/png"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("setup.exe", b"MZ\x90\x00\x03" + b"\x00" * 100),
        ("fox.png", b"MZ\x90\x00\x03" + b"\x00" * 100),  # an executable named as an image
        ("fox.png", b"<html><script>alert(1)</script></html>"),  # HTML named as an image
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("page.bin", b"just some bytes"),
        ("noextension", b"plain text without a name"),
        ("notes.txt", b"text with a NUL \x00 inside"),
        ("notes.txt", b"\xff\xfe not utf-8 \xc3\x28"),
        ("data.json", b"{not json"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000),  # was a RecursionError, a 500
        ("scan.tif", b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64),
        ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64),
        ("movie.mkv", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska" + b"\x00" * 64),
        ("broken.png", PNG[:300]),  # a truncated image
    ],
)
def test_other_files_are_refused(name, content, agent, private_root):
    response = upload(agent.api, name, content)
    assert response.status_code == 400, response.body
    assert response.body["code"] == "unsupported_file_type"
    assert not Upload.objects.exists()
    assert not list(private_root.rglob("*")) or all(path.is_dir() for path in private_root.rglob("*"))


def test_too_many_pixels_are_refused(agent, private_root):
    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, "PNG")  # 48 MP in a few kilobytes
    response = upload(agent.api, "wide.png", buffer.getvalue())
    assert response.status_code == 400
    assert "pixels" in response.body["error"]


def test_the_size_limit(agent, private_root, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    assert created(upload(agent.api, "a.txt", b"a" * 1000))["size"] == 1000

    # Over the limit but within the multipart allowance: stopped while reading the file.
    response = upload(agent.api, "b.txt", b"b" * 1001)
    assert response.status_code == 413
    assert response.body["code"] == "payload_too_large"

    # Far over: refused from Content-Length, before the body is read.
    response = upload(agent.api, "c.txt", b"c" * 200_000)
    assert response.status_code == 413
    assert Upload.objects.count() == 1


def test_only_agents_upload(buyer, anonymous, agent, private_root, django_user_model):
    assert upload(buyer.api, "a.txt", b"hello").status_code == 401
    assert upload(anonymous, "a.txt", b"hello").status_code == 401
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("st", password="correct horse battery", is_staff=True))
    assert staff.post("/api/upload", {"file": SimpleUploadedFile("a.txt", b"hello")}).status_code == 401
    assert not Upload.objects.exists()


def test_the_form_itself_is_checked(agent, private_root):
    json_body = agent.api.post("/api/upload", {"file": "aGVsbG8="})
    assert json_body.status_code == 400
    assert json_body.body["code"] == "multipart_required"

    no_file = agent.api.client.post("/api/upload", {"note": "x"}, headers=agent.api.headers)
    assert no_file.status_code == 400

    extra = upload(agent.api, "a.txt", b"hello", note="hi")
    assert extra.status_code == 400
    assert extra.body["code"] == "unknown_field"

    two = agent.api.client.post(
        "/api/upload",
        {"file": [SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"b")]},
        headers=agent.api.headers,
    )
    assert two.status_code == 400
    assert upload(agent.api, "empty.txt", b"").status_code == 400
    assert not Upload.objects.exists()


def test_uploads_are_rate_limited_to_30_an_hour(agent, private_root):
    for n in range(30):
        assert upload(agent.api, f"{n}.txt", b"x").status_code == 201
    response = upload(agent.api, "31.txt", b"x")
    assert response.status_code == 429
    assert response["Retry-After"]


def test_stored_privately_not_under_media_or_static(agent, private_root, settings):
    data = created(upload(agent.api, "fox.png", PNG))
    stored = Upload.objects.get(pk=data["id"])
    path = Path(private_storage().path(stored.file_path)).resolve()
    assert path.is_relative_to(private_root.resolve())
    for public in (settings.MEDIA_ROOT, settings.STATIC_ROOT):
        assert not path.is_relative_to(Path(public).resolve())
    assert path.stat().st_mode & 0o077 == 0  # readable by the app only
    with pytest.raises(ValueError, match="no URL"):
        private_storage().url(stored.file_path)
    assert "/media/" not in json.dumps(data)
    assert "/static/" not in json.dumps(data)
    for guess in (f"/media/{stored.file_path}", f"/static/{stored.file_path}", f"/{stored.file_path}"):
        assert Client().get(guess).status_code == 404


# --- delivering an upload -----------------------------------------------------------------------


def deliver(agent: Any, order: Any, items: list[dict[str, str]], capture: Any) -> Any:
    with capture(execute=True):
        return agent.api.post(f"/api/orders/{order.id}/deliver", {"deliverables": items})


def test_a_delivered_upload_is_linked_without_a_fetch_and_gated_for_a_human_buyer(
    buyer, agent, private_root, no_network, django_capture_on_commit_callbacks
):
    image = created(upload(agent.api, "fox.png", PNG))
    report = created(upload(agent.api, "report.pdf", PDF))
    order = make_order(buyer, agent, Status.IN_PROGRESS)

    response = deliver(
        agent,
        order,
        [
            {"deliverable_url": image["url"], "deliverable_media_type": "image"},
            {"deliverable_url": report["url"], "deliverable_media_type": "document"},
        ],
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200, response.body
    pic, doc = Deliverable.objects.filter(order=order).order_by("id")
    assert pic.fetch_status == doc.fetch_status == FetchStatus.READY
    assert pic.preview_path
    assert not doc.preview_path

    # The human buyer: the image's preview only; the document (not an image) as it is.
    as_buyer = buyer.api.get(f"/api/orders/{order.id}").body["data"]["deliverables"]
    assert as_buyer[0]["gated"] is True
    assert as_buyer[0]["original_url"] is None
    assert as_buyer[0]["deliverable_url"] == as_buyer[0]["preview_url"]
    assert image["url"] not in json.dumps(as_buyer)
    assert as_buyer[1]["gated"] is False
    assert as_buyer[1]["deliverable_url"] == as_buyer[1]["original_url"]
    assert buyer.api.get(f"/api/deliverables/{pic.id}/original").status_code == 403
    preview = buyer.api.get(f"/api/deliverables/{pic.id}/preview")
    preview_bytes = b"".join(preview.streaming_content)
    assert Image.open(io.BytesIO(preview_bytes)).size == (720, 540)
    assert CAMERA.encode() not in preview_bytes
    pdf = buyer.api.get(f"/api/deliverables/{doc.id}/original")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("attachment")
    assert "sandbox" in pdf["Content-Security-Policy"]
    assert b"".join(pdf.streaming_content) == PDF

    # The agent sees its upload's URL and the original; after approval, so does the buyer.
    as_agent = agent.api.get(f"/api/orders/{order.id}").body["data"]["deliverables"][0]
    assert as_agent["deliverable_url"] == as_agent["original_url"]
    assert b"".join(agent.api.get(f"/api/deliverables/{pic.id}/original").streaming_content) == PNG
    transition(order.id, "approve", buyer.principal)
    released = buyer.api.get(f"/api/deliverables/{pic.id}/original")
    assert released["Content-Type"] == "image/png"
    assert b"".join(released.streaming_content) == PNG


def test_only_the_agent_s_own_upload_can_be_delivered(
    buyer, agent, other_agent, private_root, no_network, django_capture_on_commit_callbacks
):
    theirs = created(upload(other_agent.api, "fox.png", PNG))
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    for url in (theirs["url"], "atelier://upload/upl_1780000000000_000aaaaaa"):
        response = deliver(
            agent,
            order,
            [{"deliverable_url": url, "deliverable_media_type": "image"}],
            django_capture_on_commit_callbacks,
        )
        assert response.status_code == 400, response.body
        assert response.body["code"] == "upload_not_found"
    malformed = deliver(
        agent,
        order,
        [{"deliverable_url": "atelier://upload/../../etc/passwd", "deliverable_media_type": "image"}],
        django_capture_on_commit_callbacks,
    )
    assert malformed.status_code == 400
    order.refresh_from_db()
    assert order.status == Status.IN_PROGRESS
    assert not Deliverable.objects.filter(order=order).exists()


def test_a_non_image_upload_cannot_be_delivered_as_an_image(
    buyer, agent, private_root, django_capture_on_commit_callbacks
):
    report = created(upload(agent.api, "report.pdf", PDF))
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    response = deliver(
        agent,
        order,
        [{"deliverable_url": report["url"], "deliverable_media_type": "image"}],
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 400
    assert "not an image" in response.body["error"]


def test_the_upload_matches_the_openapi_document(agent, private_root, anonymous, settings):
    from tests.test_openapi import Contract

    doc = anonymous.get("/api/openapi.json").body
    contract = Contract(doc)
    operation = doc["paths"]["/api/upload"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert doc["paths"]["/api/deliverables/{deliverable_id}/preview"]["get"]["responses"]["200"]["content"] == {
        "image/webp": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
    }

    contract.check(upload(agent.api, "fox.png", PNG), "POST", "/api/upload")
    contract.assert_error(upload(agent.api, "x.exe", b"MZ\x90\x00"), "POST", "/api/upload", 400)
    settings.UPLOAD_MAX_BYTES = 10
    contract.assert_error(upload(agent.api, "big.txt", b"x" * 100), "POST", "/api/upload", 413)
    for kind in ("original", "preview"):
        refused = anonymous.get(f"/api/deliverables/del_1780000000000_000aaaaaa/{kind}")
        contract.assert_error(refused, "GET", f"/api/deliverables/del_1780000000000_000aaaaaa/{kind}", 401)
        missing = agent.api.get(f"/api/deliverables/del_1780000000000_000aaaaaa/{kind}")
        contract.assert_error(missing, "GET", f"/api/deliverables/del_1780000000000_000aaaaaa/{kind}", 404)


def test_an_image_upload_declared_as_a_document_is_delivered_as_an_image_and_gated(
    buyer, agent, private_root, no_network, django_capture_on_commit_callbacks
):
    """The content decides: the upload knew it was a PNG, so the watermark gate applies whatever
    the agent declared (`Delivery.file(png, "x.png")` sends document by default)."""
    image = created(upload(agent.api, "x.png", PNG))
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    response = deliver(
        agent,
        order,
        [{"deliverable_url": image["url"], "deliverable_media_type": "document"}],
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200, response.body
    assert response.body["data"]["deliverables"][0]["deliverable_media_type"] == "image"
    shown = buyer.api.get(f"/api/orders/{order.id}").body["data"]["deliverables"][0]
    assert (shown["deliverable_media_type"], shown["gated"], shown["original_url"]) == ("image", True, None)
    refused = buyer.api.get(f"/api/deliverables/{shown['id']}/original")
    assert refused.status_code == 403
    assert refused.json()["code"] == "original_gated"
