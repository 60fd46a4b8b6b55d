"""The watermark gate: image deliverables are fetched once (SSRF-safe, capped), stored privately,
previewed (720 px, tiled watermark, WebP, no EXIF); a human buyer gets only the preview until the
order is completed, through every door: the API's order view, the file views, a guessed URL."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.http import StreamingHttpResponse
from django.test import Client
from PIL import Image, ImageChops

from lib.privatestorage import private_storage
from orders.core.transitions import Role, transition
from orders.deliverables import fetching, gate, previews
from orders.models import BuyerKind, Deliverable, FetchStatus, Order, Status
from tests.conftest import make_order
from tests.lib.ssrf_cases import EMBEDDED_NON_PUBLIC, PUBLIC_IPV6
from tests.orders.files_support import CAMERA, image_server, picture, png_header_only, use_private_tmp

ORIGINAL = picture(2000, 1500)


@pytest.fixture
def private_root(settings: Any, tmp_path: Any) -> Any:
    settings.SAFEHTTP_ALLOW_LOOPBACK = True
    return use_private_tmp(settings, tmp_path)


@pytest.fixture
def server() -> Any:
    with image_server() as state:
        yield state


def deliver(agent: Any, order: Order, url: str, capture: Any, media_type: str = "image") -> Any:
    """The agent delivers through the API; the fetch task runs once the delivery has committed."""
    with capture(execute=True):
        response = agent.api.post(
            f"/api/orders/{order.id}/deliver", {"deliverable_url": url, "deliverable_media_type": media_type}
        )
    assert response.status_code == 200, response.body
    return Deliverable.objects.get(order=order, superseded=False)


def only_deliverable(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.body
    (item,) = response.body["data"]["deliverables"]
    return item


def staff_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("gatekeeper", password="correct horse battery", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def browser_of(buyer: Any) -> Client:
    """The pages' browser session for this wallet (as identity.sessions signs it in)."""
    client = Client()
    session = client.session
    session["buyer_wallet"] = buyer.wallet
    session["buyer_chain"] = buyer.chain
    session.save()
    return client


def assert_no_original(body: bytes, *secrets: str) -> None:
    assert ORIGINAL[:4096] not in body
    for secret in secrets:
        assert secret.encode() not in body


# --- the fetch and the preview ------------------------------------------------------------------


def test_the_image_is_fetched_once_and_previewed_720px_webp_watermarked_without_exif(
    buyer, agent, private_root, server, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    url = server.serve("/work/fox.png", ORIGINAL)

    deliverable = deliver(agent, order, url, django_capture_on_commit_callbacks)

    assert deliverable.fetch_status == FetchStatus.READY, deliverable.fetch_error
    assert deliverable.content_type == "image/png"
    assert server.hits == ["/work/fox.png"]
    storage = private_storage()
    with storage.open(deliverable.file_path) as stored:
        assert stored.read() == ORIGINAL  # the original as delivered, EXIF and all
    with storage.open(deliverable.preview_path) as stored:
        preview_bytes = stored.read()

    preview = Image.open(io.BytesIO(preview_bytes))
    assert preview.format == "WEBP"
    assert preview.size == (720, 540)
    assert not dict(preview.getexif())
    assert not {"exif", "xmp", "icc_profile"} & set(preview.info)
    assert b"EXIF" not in preview_bytes
    assert b"Exif" not in preview_bytes
    assert CAMERA.encode() not in preview_bytes

    # The watermark: against the same picture scaled the same way, many pixels differ, all over.
    plain = Image.open(io.BytesIO(ORIGINAL)).convert("RGB").resize((720, 540), Image.Resampling.LANCZOS)
    diff = ImageChops.difference(preview.convert("RGB"), plain).convert("L").point(lambda v: 255 if v > 40 else 0)
    marked = diff.histogram()[255] / (720 * 540)
    assert marked > 0.03, f"only {marked:.1%} of the pixels carry the watermark"
    for box in ((0, 0, 360, 270), (360, 0, 720, 270), (0, 270, 360, 540), (360, 270, 720, 540)):
        assert diff.crop(box).histogram()[255] > 500, f"no watermark in {box}: it is not tiled"

    # Looking does not fetch again: the views serve the stored copy.
    agent.api.get(f"/api/deliverables/{deliverable.id}/original")
    buyer.api.get(f"/api/deliverables/{deliverable.id}/preview")
    assert server.hits == ["/work/fox.png"]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1500, 2000), (540, 720)),
        ((3000, 600), (720, 144)),
        ((1000, 800), (600, 480)),  # 60% of the long edge is under 720 px
        ((400, 300), (240, 180)),
        ((5, 3), (3, 2)),
        ((1, 1), (1, 1)),
    ],
    ids=["portrait", "panorama", "under-1200", "small", "tiny", "one-pixel"],
)
def test_the_preview_keeps_the_aspect_and_is_always_smaller(size, expected, private_root):
    """At most 720 px and 60% of the original on the long edge: never every pixel of the work."""
    with previews.open_image(io.BytesIO(picture(*size, exif=False))) as image:
        preview = Image.open(io.BytesIO(previews.make_preview(image, seed=b"test")))
    assert preview.size == expected


def test_a_flat_picture_still_shows_the_watermark(private_root):
    flat = io.BytesIO()
    Image.new("RGB", (1200, 900), (128, 128, 128)).save(flat, "JPEG")
    with previews.open_image(flat) as image:
        preview = Image.open(io.BytesIO(previews.make_preview(image, seed=b"test"))).convert("L")
    low, high = preview.getextrema()  # one band ("L"): two numbers
    assert isinstance(low, (int, float))
    assert isinstance(high, (int, float))
    assert high - low > 60


def test_a_jpeg_with_exif_orientation_is_turned_then_stripped(private_root):
    source = Image.new("RGB", (800, 400), (10, 120, 200))
    tags = Image.Exif()
    tags[0x0112] = 6  # rotate 90 degrees clockwise to display
    tags[0x010F] = CAMERA
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", exif=tags)
    with previews.open_image(buffer) as image:
        data = previews.make_preview(image, seed=b"test")
    preview = Image.open(io.BytesIO(data))
    assert preview.size == (240, 480)
    assert not dict(preview.getexif())
    assert CAMERA.encode() not in data


# --- the gate -----------------------------------------------------------------------------------


def test_a_human_buyer_never_gets_the_original_before_completion_and_does_after(
    buyer, agent, private_root, server, django_capture_on_commit_callbacks, django_user_model
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    url = server.serve("/secret/original-fox.png", ORIGINAL)
    deliverable = deliver(agent, order, url, django_capture_on_commit_callbacks)
    original_path = f"/api/deliverables/{deliverable.id}/original"
    preview_path = f"/api/deliverables/{deliverable.id}/preview"

    # The API's order view, the order list, and the browser session: the preview only.
    for response in (buyer.api.get(f"/api/orders/{order.id}"),):
        item = only_deliverable(response)
        assert item["gated"] is True
        assert item["original_url"] is None
        assert item["deliverable_url"] == item["preview_url"]
        assert item["preview_url"].endswith(preview_path)
        assert item["fetch_status"] == "ready"
    listed = buyer.api.get("/api/orders")
    for raw in (buyer.api.get(f"/api/orders/{order.id}").content, listed.content):
        assert_no_original(raw, url, "original-fox", "/original", str(server.port))

    # The file views: the preview, watermarked; the original a 403 that says why (the buyer sees the
    # deliverable on the order already), naming the preview and nothing of the original.
    preview = buyer.api.get(preview_path)
    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/webp"
    preview_bytes = b"".join(preview.streaming_content)
    assert Image.open(io.BytesIO(preview_bytes)).size == (720, 540)
    assert_no_original(preview_bytes)

    nowhere = buyer.api.get("/api/deliverables/del_1780000000000_000aaaaaa/original")
    refused = buyer.api.get(original_path)
    assert (refused.status_code, nowhere.status_code) == (403, 404)
    assert refused.body["code"] == "original_gated"
    assert refused.body["details"]["preview_url"] == preview_path
    assert_no_original(refused.content, url)

    browser = browser_of(buyer)
    assert browser.get(preview_path).status_code == 200
    from_browser = browser.get(original_path)
    assert from_browser.status_code == 403
    assert_no_original(from_browser.content)

    # Guessed URLs: a trailing slash, the storage's own names under media or static.
    guesses = [
        original_path + "/",
        f"/api/deliverables/{deliverable.id}/file",
        f"/media/{deliverable.file_path}",
        f"/static/{deliverable.file_path}",
        f"/private/{deliverable.file_path}",
        f"/{deliverable.file_path}",
    ]
    for guess in guesses:
        for client in (buyer.api.client, browser):
            response = client.get(guess, headers=buyer.api.headers if client is buyer.api.client else {})
            assert response.status_code == 404, guess
            assert_no_original(response.content)

    # While gated, a revision or a dispute changes nothing; after approval the original is released.
    transition(order.id, "approve", buyer.principal)
    item = only_deliverable(buyer.api.get(f"/api/orders/{order.id}"))
    assert item["gated"] is False
    assert item["original_url"].endswith(original_path)
    assert item["deliverable_url"] == url
    released = buyer.api.get(original_path)
    assert released.status_code == 200
    assert released["Content-Type"] == "image/png"
    assert b"".join(released.streaming_content) == ORIGINAL
    streamed = browser.get(original_path)
    assert isinstance(streamed, StreamingHttpResponse)
    assert b"".join(streamed.streaming_content) == ORIGINAL
    assert server.hits == ["/secret/original-fox.png"]


@pytest.mark.parametrize("status", [Status.DELIVERED, Status.REVISION_REQUESTED, Status.DISPUTED])
def test_the_gate_holds_in_every_status_before_completion(
    status, buyer, agent, private_root, server, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    if status == Status.REVISION_REQUESTED:
        transition(order.id, "revision", buyer.principal, feedback="Darker, please.")
    elif status == Status.DISPUTED:
        transition(order.id, "dispute", buyer.principal, reason="Not what I asked for.")
    item = only_deliverable(buyer.api.get(f"/api/orders/{order.id}"))
    assert item["gated"] is True
    assert item["original_url"] is None
    assert buyer.api.get(f"/api/deliverables/{deliverable.id}/original").status_code == 403


def test_a_refunded_order_never_releases_the_original(
    buyer, agent, staff, private_root, server, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    transition(order.id, "dispute", buyer.principal, reason="Not what I asked for.")
    transition(order.id, "refund", staff, note="Refunded.")
    assert buyer.api.get(f"/api/deliverables/{deliverable.id}/original").status_code == 403


def test_the_agent_and_staff_always_get_the_original(
    buyer, agent, private_root, server, django_capture_on_commit_callbacks, django_user_model
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    url = server.serve("/a.png", ORIGINAL)
    deliverable = deliver(agent, order, url, django_capture_on_commit_callbacks)
    original_path = f"/api/deliverables/{deliverable.id}/original"

    item = only_deliverable(agent.api.get(f"/api/orders/{order.id}"))
    assert item["gated"] is False
    assert item["deliverable_url"] == url
    assert item["original_url"] == django_settings.PUBLIC_URL.rstrip("/") + original_path
    assert b"".join(agent.api.get(original_path).streaming_content) == ORIGINAL

    staff = staff_client(django_user_model)
    staff_view = staff.get(f"/api/orders/{order.id}").json()["data"]["deliverables"][0]
    assert staff_view["gated"] is False
    assert staff_view["original_url"]
    response = staff.get(original_path)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert b"".join(response.streaming_content) == ORIGINAL
    assert staff.get(f"/api/deliverables/{deliverable.id}/preview").status_code == 200


def test_an_agent_buyer_is_never_gated(other_agent, agent, private_root, server, django_capture_on_commit_callbacks):
    order = make_order(other_agent, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    item = only_deliverable(other_agent.api.get(f"/api/orders/{order.id}"))
    assert item["gated"] is False
    assert item["original_url"]
    response = other_agent.api.get(f"/api/deliverables/{deliverable.id}/original")
    assert b"".join(response.streaming_content) == ORIGINAL


def test_an_x402_buyer_is_never_gated(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    Order.objects.filter(pk=order.id).update(buyer_kind=BuyerKind.X402)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    assert only_deliverable(buyer.api.get(f"/api/orders/{order.id}"))["gated"] is False
    assert buyer.api.get(f"/api/deliverables/{deliverable.id}/original").status_code == 200


def test_strangers_and_anonymous_callers_get_nothing(
    buyer, other_buyer, agent, other_agent, private_root, server, django_capture_on_commit_callbacks, anonymous
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    for kind in ("original", "preview"):
        path = f"/api/deliverables/{deliverable.id}/{kind}"
        assert other_buyer.api.get(path).status_code == 404
        assert other_agent.api.get(path).status_code == 404
        assert anonymous.get(path).status_code == 401
        assert Client().get(path).status_code == 401


def test_only_images_are_gated(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    url = "https://docs.example.com/report.pdf"
    deliver(agent, order, url, django_capture_on_commit_callbacks, media_type="document")
    item = only_deliverable(buyer.api.get(f"/api/orders/{order.id}"))
    assert item == item | {"gated": False, "deliverable_url": url, "original_url": None, "fetch_status": None}
    assert server.hits == []  # links are not fetched


def test_the_helpers_the_pages_call(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    deliverable = Deliverable.objects.select_related("order").get(pk=deliverable.id)

    assert gate.viewer_can_see_original(order, Role.BUYER) is False
    assert gate.viewer_can_see_original(order, Role.AGENT) is True
    assert gate.viewer_can_see_original(order, Role.STAFF) is True
    assert gate.viewer_can_see_original(order, None) is False
    urls = gate.deliverable_urls(deliverable, Role.BUYER)
    assert urls == gate.DeliverableUrls(
        url=f"/api/deliverables/{deliverable.id}/preview",
        original_url=None,
        preview_url=f"/api/deliverables/{deliverable.id}/preview",
        gated=True,
    )
    assert gate.deliverable_urls(deliverable, Role.AGENT).original_url == f"/api/deliverables/{deliverable.id}/original"
    assert gate.deliverable_urls(deliverable, None) == gate.DeliverableUrls(None, None, None, True)


# --- refusals: the deliverable is marked failed, the delivery stands ------------------------------


def refused(buyer: Any, agent: Any, url: str, capture: Any) -> tuple[Deliverable, dict[str, Any], dict[str, Any]]:
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, url, capture)
    order.refresh_from_db()
    assert order.status == Status.DELIVERED  # the delivery itself stands
    assert deliverable.fetch_status == FetchStatus.FAILED
    assert not deliverable.file_path
    assert not deliverable.preview_path
    as_buyer = only_deliverable(buyer.api.get(f"/api/orders/{order.id}"))
    as_agent = only_deliverable(agent.api.get(f"/api/orders/{order.id}"))
    # The buyer sees a failed image with no URL at all, and not the reason (it can name the host).
    assert as_buyer | {"id": None, "created_at": None} == {
        "id": None,
        "created_at": None,
        "deliverable_url": None,
        "deliverable_media_type": "image",
        "prompt": None,
        "superseded": False,
        "gated": True,
        "original_url": None,
        "preview_url": None,
        "fetch_status": "failed",
        "fetch_error": None,
    }
    assert as_agent["fetch_error"] == deliverable.fetch_error
    assert buyer.api.get(f"/api/deliverables/{deliverable.id}/preview").status_code == 404
    assert agent.api.get(f"/api/deliverables/{deliverable.id}/original").status_code == 404
    return deliverable, as_buyer, as_agent


def test_a_loopback_url_is_refused_without_the_test_setting(
    buyer, agent, private_root, server, settings, django_capture_on_commit_callbacks
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    deliverable, _, _ = refused(buyer, agent, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    assert "not a public address" in deliverable.fetch_error
    assert server.hits == []  # refused before connecting


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.7/a.png",
        "http://[::1]/a.png",
        "http://0.0.0.0/a.png",
        "http://[fd00::1]/a.png",
    ],
)
def test_private_and_link_local_addresses_are_refused(
    url, buyer, agent, private_root, settings, django_capture_on_commit_callbacks
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    deliverable, _, _ = refused(buyer, agent, url, django_capture_on_commit_callbacks)
    assert deliverable.fetch_error.startswith(("Refused to fetch the image", "Could not fetch the image"))


@pytest.mark.parametrize("address", EMBEDDED_NON_PUBLIC)
def test_an_ipv6_url_embedding_a_non_public_ipv4_address_is_refused_before_connecting(
    address, buyer, agent, private_root, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    connects = record_connects(monkeypatch)
    deliverable, _, _ = refused(buyer, agent, f"http://[{address}]/a.png", django_capture_on_commit_callbacks)
    assert deliverable.fetch_error.startswith("Refused to fetch the image")
    assert "not a public address" in deliverable.fetch_error
    assert connects == []


@pytest.mark.parametrize("address", PUBLIC_IPV6)
def test_a_public_ipv6_url_passes_the_check(
    address, buyer, agent, private_root, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    connects = record_connects(monkeypatch)
    deliverable, _, _ = refused(buyer, agent, f"http://[{address}]/a.png", django_capture_on_commit_callbacks)
    assert deliverable.fetch_error.startswith("Could not fetch the image")  # the connect, not the check
    assert [call[0] for call in connects] == [address]


def record_connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every outgoing connect() and fails it, as an unreachable host would (no network in tests)."""
    calls: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        calls.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return calls


def test_a_redirect_is_not_followed(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    server.serve("/inner.png", ORIGINAL)
    url = server.serve("/moved.png", b"", status=302, Location="http://169.254.169.254/")
    deliverable, _, _ = refused(buyer, agent, url, django_capture_on_commit_callbacks)
    assert "HTTP 302" in deliverable.fetch_error
    assert server.hits == ["/moved.png"]


def test_a_too_large_image_is_refused(buyer, agent, private_root, server, settings, django_capture_on_commit_callbacks):
    settings.DELIVERABLE_FETCH_MAX_BYTES = len(ORIGINAL) - 1
    deliverable, _, _ = refused(buyer, agent, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    assert "larger than" in deliverable.fetch_error


def test_too_many_pixels_are_refused(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    # 8000 x 6000 = 48 MP, over the 40 MP limit, in a few kilobytes of real PNG.
    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, "PNG")
    deliverable, _, _ = refused(
        buyer, agent, server.serve("/wide.png", buffer.getvalue()), django_capture_on_commit_callbacks
    )
    assert "more than 40,000,000 pixels" in deliverable.fetch_error


def test_a_decompression_bomb_header_is_refused(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    url = server.serve("/bomb.png", png_header_only(60_000, 60_000))
    deliverable, _, _ = refused(buyer, agent, url, django_capture_on_commit_callbacks)
    assert "pixels" in deliverable.fetch_error


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"<html><script>alert(1)</script></html>", "image/png", 200),
        (b"GIF89a-not-really", "image/gif", 200),
        (ORIGINAL, "image/png", 404),
    ],
    ids=["html-as-png", "truncated", "http-404"],
)
def test_what_is_not_a_readable_image_is_refused(
    body, content_type, status, buyer, agent, private_root, server, django_capture_on_commit_callbacks
):
    url = server.serve("/x.png", body, content_type, status)
    refused(buyer, agent, url, django_capture_on_commit_callbacks)


def test_a_new_delivery_replaces_a_failed_one(
    buyer, agent, private_root, server, settings, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    first = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    assert first.fetch_status == FetchStatus.FAILED
    settings.SAFEHTTP_ALLOW_LOOPBACK = True
    second = deliver(agent, order, server.serve("/b.png", ORIGINAL), django_capture_on_commit_callbacks)
    assert second.fetch_status == FetchStatus.READY
    item = only_deliverable(buyer.api.get(f"/api/orders/{order.id}"))
    assert item["id"] == second.id
    assert item["preview_url"]


def test_the_fetch_runs_outside_the_deliver_transaction(
    buyer, agent, private_root, server, django_capture_on_commit_callbacks
):
    """Nothing is fetched while the order row is locked: the task is queued, and runs after commit."""
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    url = server.serve("/a.png", ORIGINAL)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = agent.api.post(
            f"/api/orders/{order.id}/deliver", {"deliverable_url": url, "deliverable_media_type": "image"}
        )
    assert response.status_code == 200
    assert only_deliverable(response)["fetch_status"] == "pending"
    assert server.hits == []
    for callback in callbacks:
        callback()
    assert server.hits == ["/a.png"]
    assert Deliverable.objects.get(order=order).fetch_status == FetchStatus.READY


def test_a_duplicate_task_does_not_fetch_twice(buyer, agent, private_root, server, django_capture_on_commit_callbacks):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    deliverable = deliver(agent, order, server.serve("/a.png", ORIGINAL), django_capture_on_commit_callbacks)
    assert fetching.fetch_deliverables.call([deliverable.id]) == {deliverable.id: "skipped"}
    assert server.hits == ["/a.png"]


def test_private_files_have_no_url_and_live_outside_media_and_static(private_root, settings):
    storage = private_storage()
    with pytest.raises(ValueError, match="no URL"):
        storage.url("deliverables/x/original")
    # The real configuration: DATA_DIR/private, beside (not under) the public folders.
    from atelier import settings as project

    private = project.STORAGES["private"]
    assert isinstance(private, dict)
    location = Path(private["OPTIONS"]["location"])
    assert location == project.DATA_DIR / "private"
    for public in (project.MEDIA_ROOT, project.STATIC_ROOT):
        assert not location.is_relative_to(public)
        assert not Path(public).is_relative_to(location)
    assert private["BACKEND"] == "lib.privatestorage.PrivateStorage"
