"""Image deliverables given as a URL: linked or queued on delivery, then fetched once.

- An image deliverable given as a URL is fetched ONCE, by a task queued with the delivery (it runs
  after the deliver transaction commits, so no network I/O happens while the order row is locked),
  through `lib.safehttp` (public addresses only, checked at connect time, no redirects),
  at most DELIVERABLE_FETCH_MAX_BYTES and DELIVERABLE_MAX_PIXELS. The original is stored as
  fetched, with its watermarked preview (orders.deliverables.previews).
- A refused or failed fetch marks the deliverable `failed` with the reason (shown to the agent
  and staff, never to a gated buyer). The delivery itself stands: the order is `delivered`, the
  agent can deliver again (which supersedes the failed row), and a gated buyer sees no image.
- Delivering `atelier://upload/<id>` (orders.deliverables.uploads) links the stored file without any network fetch.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable

import urllib3
from django.conf import settings
from django.tasks import task

from lib import safehttp
from lib.errors import ValidationFailed
from lib.tasks import enqueue
from orders.deliverables.exceptions import Refused
from orders.deliverables.previews import delete_stored, store_image
from orders.deliverables.uploads import UPLOAD_SCHEME, UPLOAD_URL
from orders.models import Deliverable, FetchStatus, MediaType, Order, Upload

log = logging.getLogger("atelier.orders.files")

FETCH_TIMEOUT_SECONDS = 20.0


def fetch(url: str) -> bytes:
    """GET `url` once, SSRF-safe and size-capped; Refused with the reason otherwise."""
    limit = settings.DELIVERABLE_FETCH_MAX_BYTES
    try:
        response = safehttp.request(
            "GET", url, headers={"Accept": "image/*"}, timeout=FETCH_TIMEOUT_SECONDS, max_bytes=limit
        )
    except safehttp.UnsafeURL as exc:
        raise Refused(f"Refused to fetch the image: {exc}.") from None
    except safehttp.TooLarge:
        raise Refused(f"The image is larger than {limit:,} bytes.") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Refused(f"Could not fetch the image: {type(exc).__name__}.") from None
    if response.status != 200:
        raise Refused(f"Fetching the image answered HTTP {response.status}, not 200 (redirects are not followed).")
    return response.body


def fetch_deliverable(deliverable_id: str) -> str:
    """Fetch, check and store one pending image deliverable; returns the outcome."""
    deliverable = Deliverable.objects.filter(pk=deliverable_id, fetch_status=FetchStatus.PENDING).first()
    if deliverable is None:
        return "skipped"  # already fetched (a duplicate task), or not an image URL
    try:
        body = fetch(deliverable.url)
        stored = store_image(f"deliverables/{deliverable.order_id}/{deliverable.id}", io.BytesIO(body))
    except Refused as exc:
        log.info("deliverable %s refused: %s", deliverable.id, exc)
        Deliverable.objects.filter(pk=deliverable.id, fetch_status=FetchStatus.PENDING).update(
            fetch_status=FetchStatus.FAILED, fetch_error=str(exc)[:300]
        )
        return "failed"
    updated = Deliverable.objects.filter(pk=deliverable.id, fetch_status=FetchStatus.PENDING).update(
        fetch_status=FetchStatus.READY,
        fetch_error="",
        file_path=stored.file_path,
        preview_path=stored.preview_path,
        content_type=stored.content_type,
    )
    if not updated:  # another run got there first
        delete_stored(stored.file_path, stored.preview_path)
        return "skipped"
    return "ready"


@task()
def fetch_deliverables(deliverable_ids: list[str]) -> dict[str, str]:
    """One task per delivery (not per deliverable): the deliver endpoint's query count stays fixed."""
    return {deliverable_id: fetch_deliverable(deliverable_id) for deliverable_id in deliverable_ids}


# --- linking files on delivery ------------------------------------------------------------------


def attach(order: Order, deliverables: Iterable[Deliverable]) -> None:
    """Prepare new deliverable rows inside the deliver transaction (before they are inserted): link
    `atelier://upload/<id>` files of this order's agent, mark image URLs pending, and queue their
    fetch with the delivery (it runs after commit). Database work only, never the network."""
    rows = list(deliverables)
    wanted: dict[str, list[Deliverable]] = {}
    for row in rows:
        match = UPLOAD_URL.match(row.url)
        if match:
            wanted.setdefault(match[1], []).append(row)
        elif row.url.startswith(UPLOAD_SCHEME):
            raise ValidationFailed("deliverable_url names no upload.", details={"deliverable_url": "no such upload"})
    uploads = (
        {upload.id: upload for upload in Upload.objects.filter(pk__in=wanted, agent_id=order.agent_id)}
        if wanted
        else {}
    )
    for upload_id, linked in wanted.items():
        upload = uploads.get(upload_id)
        if upload is None:
            raise ValidationFailed(
                f"No upload {upload_id} by this agent.",
                code="upload_not_found",
                details={"deliverable_url": "no such upload"},
            )
        for row in linked:
            if row.media_type == MediaType.IMAGE and upload.media_type != MediaType.IMAGE:
                raise ValidationFailed(
                    f"Upload {upload_id} is {upload.content_type}, not an image.",
                    details={"deliverable_media_type": "the upload is not an image"},
                )
            if upload.media_type == MediaType.IMAGE:
                # The content decides, not the label: an image declared as a document would
                # otherwise skip the watermark gate and the buyer could download the original.
                row.media_type = MediaType.IMAGE
            row.fetch_status = FetchStatus.READY
            row.file_path = upload.file_path
            row.preview_path = upload.preview_path
            row.content_type = upload.content_type
    to_fetch = [row.id for row in rows if row.media_type == MediaType.IMAGE and not row.fetch_status]
    for row in rows:
        if row.id in to_fetch:
            row.fetch_status = FetchStatus.PENDING
    if to_fetch:
        enqueue(fetch_deliverables, to_fetch)
