"""The watermark gate: who sees an image deliverable's original, and which URLs each viewer gets.

A human buyer (buyer_kind "human") sees only the watermarked preview of an image deliverable
until the order is completed; the agent, staff, and agent or x402 buyers see the original. Other
media types are not gated. The API (orders.reads.queries.order_to_dict), the file views
(orders.web.files_api) and the HTML pages all ask the functions here, so they cannot disagree.

For the pages:
    role = role_of(order, principal)            # orders.core.transitions
    viewer_can_see_original(order, role)        # -> bool
    deliverable_urls(deliverable, role)         # -> DeliverableUrls(url, original_url, preview_url, gated)
    request_principal(request)                  # API credentials, else the browser session (identity.sessions)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from identity.sessions import session_principal
from lib.principal import Principal
from orders.deliverables.uploads import UPLOAD_SCHEME
from orders.models import BuyerKind, Deliverable, FetchStatus, MediaType, Order, Role, Status

if TYPE_CHECKING:  # the reads sit above the files
    from orders.reads import shapes


def viewer_can_see_original(order: Order, role: Role | None) -> bool:
    """True when `role` may have the original of this order's image deliverables now."""
    if role is None:
        return False
    if role != Role.BUYER:
        return True  # the agent, staff, background work
    return order.buyer_kind != BuyerKind.HUMAN or order.status == Status.COMPLETED


def is_gated(deliverable: Deliverable, role: Role | None) -> bool:
    """True when this viewer gets the preview only (an image, and the gate is closed for them)."""
    return deliverable.media_type == MediaType.IMAGE and not viewer_can_see_original(deliverable.order, role)


@dataclass(frozen=True)
class DeliverableUrls:
    url: str | None  # what to show or link: the preview when gated, else the original (or the agent's link)
    original_url: str | None  # the checked view of the stored original; None when gated or nothing is stored
    preview_url: str | None  # the checked view of the watermarked preview; None until it exists
    gated: bool


def original_path(deliverable_id: str) -> str:
    return reverse("deliverable_original", kwargs={"deliverable_id": deliverable_id})


def preview_path(deliverable_id: str) -> str:
    return reverse("deliverable_preview", kwargs={"deliverable_id": deliverable_id})


def deliverable_urls(deliverable: Deliverable, role: Role | None, *, absolute: bool = False) -> DeliverableUrls:
    """The URLs `role` may have for `deliverable` (relative paths, or PUBLIC_URL-absolute).

    A gated viewer never gets the agent's URL nor the original's: only the preview (or nothing
    while the preview is being made, or when the fetch failed)."""
    if role is None:
        return DeliverableUrls(None, None, None, True)
    base = settings.PUBLIC_URL.rstrip("/") if absolute else ""
    gated = is_gated(deliverable, role)
    ready = deliverable.fetch_status == FetchStatus.READY
    preview = base + preview_path(deliverable.id) if ready and deliverable.preview_path else None
    original = base + original_path(deliverable.id) if ready and deliverable.file_path and not gated else None
    if gated:
        url = preview
    elif deliverable.url.startswith(UPLOAD_SCHEME):
        url = original
    else:
        url = deliverable.url or None  # blank: a workspace prompt not answered yet
    return DeliverableUrls(url, original, preview, gated)


def deliverable_to_dict(deliverable: Deliverable, role: Role | None) -> shapes.Deliverable:
    """A deliverable as the API shows it to `role` (the gate applied)."""
    urls = deliverable_urls(deliverable, role, absolute=True)
    return {
        "id": deliverable.id,
        "deliverable_url": urls.url,
        "deliverable_media_type": deliverable.media_type,
        "prompt": deliverable.prompt or None,
        "superseded": deliverable.superseded,
        "created_at": deliverable.created_at.isoformat(),
        "gated": urls.gated,
        "original_url": urls.original_url,
        "preview_url": urls.preview_url,
        "fetch_status": deliverable.fetch_status or None,
        # The reason can name the agent's host; only those who may see the original read it.
        "fetch_error": None if urls.gated else deliverable.fetch_error or None,
    }


def request_principal(request: HttpRequest) -> Principal | None:
    """Who is looking: the API's credentials (already read by `endpoint`), else the browser
    session of the pages (a signed-in wallet, an agent's owner, or staff; identity.sessions)."""
    principal = getattr(request, "principal", None)
    if isinstance(principal, Principal):
        return principal
    if getattr(request, "session", None) is None:
        return None
    return session_principal(request)
