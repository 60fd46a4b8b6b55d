"""The only ways to a stored file: the deliverable views (the watermark gate applied) and uploads.

GET /api/deliverables/{id}/preview   the watermarked WebP: any party to the order
GET /api/deliverables/{id}/original  the stored original: 404 to a viewer the gate holds back,
                                     exactly as for a deliverable that does not exist
POST /api/upload                     an agent's file (multipart field `file`), to deliver as
                                     `atelier://upload/<id>`

The deliverable views take the API's credentials (bearer key or wallet session, or the
per-request signature in the query) or, for the HTML pages, the browser session's wallet.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import FileResponse, HttpRequest, HttpResponseRedirect
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase

from api.endpoints import AGENT, PUBLIC, ApiRequest, calling_agent, endpoint
from lib.errors import Forbidden, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed
from lib.privatestorage import presigned_url, private_storage
from lib.ratelimit import Rate
from orders.core.transitions import Role, role_of
from orders.deliverables import gate
from orders.deliverables.exceptions import Refused
from orders.deliverables.uploads import upload_store
from orders.models import Deliverable, FetchStatus

log = logging.getLogger("atelier.orders.files")

UPLOAD_RATE = Rate("upload", 30, 3600)
# An order page shows every deliverable's preview; the browser caches them for five minutes.
FILE_RATE = Rate("deliverable_files", 3000, 3600)
# Room for the multipart boundaries and part headers around the file.
MULTIPART_OVERHEAD = 64 * 1024
# Shown in the browser (images, video); everything else is downloaded.
INLINE_PREFIXES = ("image/", "video/")
# Whatever a file turns out to hold, it runs nothing: no scripts, no plugins, no same-origin access.
FILE_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


def _no_such_deliverable() -> NotFound:
    return NotFound("No such deliverable.", code="deliverable_not_found")


def _deliverable_for(request: ApiRequest, deliverable_id: str) -> tuple[Deliverable, Role]:
    principal = gate.request_principal(request)
    if principal is None:
        raise Unauthorized(
            "Authentication required: the API's credentials, or sign in to the site.", code="authentication_required"
        )
    deliverable = Deliverable.objects.select_related("order").filter(pk=deliverable_id).first()
    role = role_of(deliverable.order, principal) if deliverable is not None else None
    if deliverable is None or role is None:
        raise _no_such_deliverable()
    return deliverable, role


def _serve(name: str, content_type: str, *, download_name: str) -> FileResponse:
    try:
        handle = private_storage().open(name, "rb")
    except FileNotFoundError:
        log.error("stored file %s is missing", name)
        raise NotFound("The stored file is missing.", code="file_missing") from None
    inline = content_type.startswith(INLINE_PREFIXES)
    served_type = f"{content_type}; charset=utf-8" if content_type.startswith("text/") else content_type
    response = FileResponse(
        handle, content_type=served_type, as_attachment=not inline, filename=download_name if not inline else ""
    )
    response["Cache-Control"] = "private, max-age=300"
    response["Vary"] = "Authorization, Cookie"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@endpoint(
    "GET",
    summary="A deliverable's watermarked preview, WebP (any party; API credentials or the site's session)",
    auth=PUBLIC,
    rate=FILE_RATE,
    produces="image/webp",
    tag="deliverables",
)
def deliverable_preview(request: ApiRequest, deliverable_id: str) -> FileResponse:
    deliverable, _role = _deliverable_for(request, deliverable_id)
    if deliverable.fetch_status != FetchStatus.READY or not deliverable.preview_path:
        raise NotFound(
            "This deliverable has no preview (yet).",
            code="preview_not_found",
            details={"fetch_status": deliverable.fetch_status or None},
        )
    return _serve(deliverable.preview_path, "image/webp", download_name=f"{deliverable.id}-preview.webp")


@endpoint(
    "GET",
    summary="A deliverable's stored original; a human buyer gets image originals once the order is completed",
    auth=PUBLIC,
    rate=FILE_RATE,
    produces="*/*",
    tag="deliverables",
)
def deliverable_original(request: ApiRequest, deliverable_id: str) -> HttpResponseBase:
    deliverable, role = _deliverable_for(request, deliverable_id)
    if gate.is_gated(deliverable, role):
        # A party already sees the deliverable (gated, with its preview) on the order: say why, not 404.
        raise Forbidden(
            "The original of an image is released to the buyer when the order is completed; until then "
            "use its preview_url.",
            code="original_gated",
            details={"status": deliverable.order.status, "preview_url": gate.preview_path(deliverable.id)},
        )
    if deliverable.fetch_status != FetchStatus.READY or not deliverable.file_path:
        raise NotFound(
            "No stored file for this deliverable.",
            code="file_not_found",
            details={"fetch_status": deliverable.fetch_status or None, "fetch_error": deliverable.fetch_error or None},
        )
    # On S3, the gate passed: a redirect to a URL signed for this object alone, valid for seconds, so
    # a 50 MB original does not hold an app server's worker. Never cached: the URL expires.
    inline = deliverable.content_type.startswith(INLINE_PREFIXES)
    url = presigned_url(
        deliverable.file_path,
        seconds=settings.PRIVATE_FILE_URL_SECONDS,
        content_type=deliverable.content_type,
        download_name=deliverable.id,
        inline=inline,
    )
    if url is not None:
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"
        response["Vary"] = "Authorization, Cookie"
        response["Referrer-Policy"] = "no-referrer"
        return response
    return _serve(deliverable.file_path, deliverable.content_type, download_name=deliverable.id)


class _CappedUpload(FileUploadHandler):
    """Stops reading the body as soon as the file is over the limit."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the file


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is over the {limit:,}-byte limit.", details={"file": f"at most {limit} bytes"})


@endpoint(
    "POST",
    summary="Upload a file to deliver (agent; multipart/form-data field `file`; images, PDF, ZIP, MP4/WebM, "
    "text, Markdown, JSON, code); deliver it as the returned atelier://upload/<id> URL",
    auth=AGENT,
    multipart=("file",),
    rate=UPLOAD_RATE,
    response="Upload",
    status=201,
    tag="deliverables",
)
def upload_create(request: ApiRequest) -> Any:
    agent = calling_agent(request)
    limit = settings.UPLOAD_MAX_BYTES
    if request.content_type != "multipart/form-data":
        raise ValidationFailed(
            "Send the file as multipart/form-data, in a field named file.",
            code="multipart_required",
            details={"file": "is required"},
        )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)  # refused before reading the body
    cap = _CappedUpload(request, limit)
    request.upload_handlers.insert(0, cap)
    try:
        fields, uploaded = request.POST, request.FILES
    except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent) as exc:
        raise ValidationFailed(f"The multipart body could not be read: {exc}.", code="invalid_multipart") from None
    if cap.exceeded:
        raise _too_large(limit)
    unknown = sorted(set(fields) | (set(uploaded) - {"file"}))
    if unknown:
        raise ValidationFailed(
            f"{unknown[0]} is not a known field.", code="unknown_field", details={unknown[0]: "is not a known field"}
        )
    sent = uploaded.getlist("file")
    if len(sent) != 1:
        problem = "is required" if not sent else "send one file per request"
        raise ValidationFailed(f"file {problem}.", details={"file": problem})
    file = sent[0]
    try:
        if file.size is None or file.size > limit:
            raise _too_large(limit)
        if file.size == 0:
            raise ValidationFailed("file is empty.", details={"file": "is empty"})
        upload = upload_store(agent_id=agent.id, source=file, filename=file.name or "", size=file.size)
    except Refused as exc:
        raise ValidationFailed(str(exc), code="unsupported_file_type", details={"file": str(exc)}) from None
    finally:
        file.close()
    return upload.to_dict()
