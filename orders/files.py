"""Deliverable files: fetched once, checked, stored privately, and previewed behind a watermark.

- An image deliverable given as a URL is fetched ONCE, by a task queued with the delivery (it runs
  after the deliver transaction commits, so no network I/O happens while the order row is locked),
  through `atelier.lib.safehttp` (public addresses only, checked at connect time, no redirects),
  at most DELIVERABLE_FETCH_MAX_BYTES and DELIVERABLE_MAX_PIXELS. The original is stored as
  fetched; a preview is made from it: at most 720 px and 60% of the original on the long edge, a
  tiled diagonal "ATELIER PREVIEW" watermark laid out differently for each picture, WebP, no metadata.
- A refused or failed fetch marks the deliverable `failed` with the reason (shown to the agent
  and staff, never to a gated buyer). The delivery itself stands: the order is `delivered`, the
  agent can deliver again (which supersedes the failed row), and a gated buyer sees no image.
- A file sent to POST /api/upload is checked by its content (`sniff_upload`) and stored the same
  way; delivering `atelier://upload/<id>` links it without any network fetch.

Files live in `STORAGES["private"]`, which has no URL; orders.files_api serves them after
orders.gate has checked the viewer.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import random
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import urllib3
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.tasks import task
from django.utils.crypto import salted_hmac
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from atelier.lib import safehttp
from atelier.lib.errors import ValidationFailed
from atelier.lib.privatestorage import private_storage
from atelier.lib.tasks import enqueue
from atelier.lib.validation import Invalid, Url
from orders.models import Deliverable, FetchStatus, MediaType, Order, Upload

log = logging.getLogger("atelier.orders.files")

UPLOAD_SCHEME = "atelier://upload/"
UPLOAD_URL = re.compile(r"^atelier://upload/(upl_[0-9]{13}_[0-9a-z]{9})$")

PREVIEW_LONG_EDGE = 720
# Even a small original is scaled down: a preview never shows every pixel of the work.
PREVIEW_MAX_SCALE = 0.6
PREVIEW_QUALITY = 80
WATERMARK_TEXT = "ATELIER PREVIEW"
WATERMARK_ANGLES = (22.0, 38.0)  # degrees either way, drawn per picture
FETCH_TIMEOUT_SECONDS = 20.0

# Images we store and preview: what browsers show. Pillow's format name -> MIME type.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


class Refused(Exception):
    """A file we will not store; the message says why, for the agent."""


class NotAnImage(Refused):
    """Not an image, or not one of the accepted image types."""


@dataclass(frozen=True)
class Stored:
    file_path: str
    preview_path: str
    content_type: str


# --- images -------------------------------------------------------------------------------------


def open_image(source: IO[bytes]) -> Image.Image:
    """Open an image of an accepted type within the pixel limit (only the header is read here)."""
    limit = settings.DELIVERABLE_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(f"The image has more than {limit:,} pixels.") from None
    except UnidentifiedImageError:
        raise NotAnImage("The file is not an image Atelier can read (PNG, JPEG, GIF or WebP).") from None
    except Exception as exc:  # Pillow raises many kinds on a damaged header
        raise Refused(f"The image could not be read: {type(exc).__name__}.") from None
    if image.format not in IMAGE_TYPES:
        image.__exit__()  # not close(): that would close the caller's file
        raise NotAnImage(f"{image.format} images are not accepted; use PNG, JPEG, GIF or WebP.")
    if image.width * image.height > limit:
        image.__exit__()  # not close(): that would close the caller's file
        raise Refused(f"The image is {image.width}x{image.height}, more than {limit:,} pixels.")
    return image


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def watermark_layer(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A transparent layer of `size` with the watermark text tiled along a diagonal.

    Angle, size, spacing, phase, tint and opacity (per word, too) are drawn from `rng`, seeded per
    picture: with one fixed overlay per image size, previews of an all-black and an all-white image
    gave away its alpha and colour per pixel, and every other preview of that size could be inverted.
    """
    width, height = size
    font_size = max(10, round(min(width, height) / 14 * rng.uniform(0.85, 1.2)))
    font = _font(font_size)
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), WATERMARK_TEXT, font=font)
    step_x = math.ceil(right - left + font_size * rng.uniform(1.4, 2.6))
    step_y = math.ceil(bottom - top + font_size * rng.uniform(1.4, 2.6))
    stagger = round(step_x * rng.uniform(0.3, 0.7))
    phase_x, phase_y = rng.randrange(step_x), rng.randrange(step_y)
    fill_alpha, stroke_alpha = rng.randint(100, 145), rng.randint(80, 115)
    tint = 255 - rng.randint(0, 40)
    # Draw on a square as wide as the diagonal, rotate it, and cut the middle out: every part of
    # the image is covered whatever the angle.
    side = math.ceil(math.hypot(width, height)) + 2
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    stroke = max(1, font_size // 14)
    for row, y in enumerate(range(-2 * step_y + phase_y, side + step_y, step_y)):
        shift = (row % 2) * stagger
        for x in range(-2 * step_x + phase_x + shift, side + step_x, step_x):
            weight = rng.uniform(0.8, 1.2)
            draw.text(
                (x, y),
                WATERMARK_TEXT,
                font=font,
                fill=(tint, tint, tint, min(255, round(fill_alpha * weight))),
                stroke_width=stroke,
                stroke_fill=(0, 0, 0, min(255, round(stroke_alpha * weight))),
            )
    angle = rng.uniform(WATERMARK_ANGLES[0], WATERMARK_ANGLES[1]) * rng.choice((1, -1))
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC)
    x0, y0 = (side - width) // 2, (side - height) // 2
    return layer.crop((x0, y0, x0 + width, y0 + height))


def preview_seed(source: IO[bytes]) -> bytes:
    """The secret seed of a picture's watermark: the same picture always gets the same overlay (so
    delivering it again gives nothing new to average over), and no one without SECRET_KEY can predict it."""
    return salted_hmac("orders.files.preview", sha256_of(source), algorithm="sha256").digest()


def preview_long_edge(width: int, height: int) -> int:
    """At most PREVIEW_LONG_EDGE px, and always smaller than the original."""
    return max(1, min(PREVIEW_LONG_EDGE, math.floor(max(width, height) * PREVIEW_MAX_SCALE)))


def _upright(image: Image.Image) -> Image.Image:
    """The orientation the EXIF asks for (the tag itself is dropped with the rest); a damaged EXIF
    block is ignored rather than refusing the picture."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        image.load()
        return image


def make_preview(image: Image.Image, *, seed: bytes) -> bytes:
    """At most PREVIEW_LONG_EDGE px and PREVIEW_MAX_SCALE of the original on the long edge,
    watermarked (the overlay drawn from `seed`), WebP, and nothing of the original's metadata
    (EXIF, XMP, ICC, comments): only pixels are copied."""
    try:
        image.seek(0)
        image.draft("RGB", (PREVIEW_LONG_EDGE, PREVIEW_LONG_EDGE))  # JPEG: decode at a reduced scale
        frame = _upright(image)
        has_alpha = frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info)
        frame = frame.convert("RGBA")
        edge = preview_long_edge(*frame.size)
        frame.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        rng = random.Random(seed)  # noqa: S311 (seeded from a secret; the draws only place the overlay)
        marked = Image.alpha_composite(frame, watermark_layer(frame.size, rng))
        if not has_alpha:
            marked = marked.convert("RGB")
        clean = Image.new(marked.mode, marked.size)
        clean.paste(marked)
    except Refused:
        raise
    except Exception as exc:  # truncated or corrupt pixel data, unsupported modes
        raise Refused(f"The image could not be decoded: {type(exc).__name__}.") from None
    buffer = io.BytesIO()
    clean.save(buffer, "WEBP", quality=PREVIEW_QUALITY, method=4)
    return buffer.getvalue()


def store_image(folder: str, source: IO[bytes]) -> Stored:
    """Check an image, store it as it came and its preview beside it; returns the storage names."""
    seed = preview_seed(source)
    source.seek(0)
    with open_image(source) as image:
        content_type = IMAGE_TYPES[str(image.format)]
        preview = make_preview(image, seed=seed)
    source.seek(0)
    storage = private_storage()
    file_path = storage.save(f"{folder}/original", File(source))
    preview_path = storage.save(f"{folder}/preview.webp", ContentFile(preview))
    return Stored(file_path, preview_path, content_type)


def delete_stored(*names: str) -> None:
    storage = private_storage()
    for name in names:
        if name:
            storage.delete(name)


# --- fetching image deliverables ----------------------------------------------------------------


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


# --- the deliver endpoint's URL field -----------------------------------------------------------


class DeliverableUrl(Url):
    """An http(s) URL, or `atelier://upload/<id>` from POST /api/upload."""

    def clean(self, value: Any) -> str:
        if isinstance(value, str) and value.strip().startswith(UPLOAD_SCHEME):
            if not UPLOAD_URL.match(value.strip()):
                raise Invalid("must be atelier://upload/<id> as returned by POST /api/upload")
            return value.strip()
        return str(super().clean(value))

    def schema(self) -> dict[str, Any]:
        return self._described(
            {
                "type": "string",
                "format": "uri",
                "maxLength": self.max_length,
                "pattern": "^(https?://|atelier://upload/)",
            }
        )


# --- uploads ------------------------------------------------------------------------------------

TEXT_TYPES: dict[str, tuple[str, str]] = {
    # extension: (stored content type, media type)
    "txt": ("text/plain", MediaType.TEXT),
    "md": ("text/markdown", MediaType.TEXT),
    "markdown": ("text/markdown", MediaType.TEXT),
    "json": ("application/json", MediaType.CODE),
    "csv": ("text/csv", MediaType.DOCUMENT),
}
CODE_EXTENSIONS = frozenset(
    [
        "py",
        "js",
        "mjs",
        "cjs",
        "ts",
        "tsx",
        "jsx",
        "java",
        "kt",
        "go",
        "rs",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "cs",
        "rb",
        "php",
        "swift",
        "sh",
        "bash",
        "sql",
        "html",
        "htm",
        "css",
        "scss",
        "yaml",
        "yml",
        "toml",
        "xml",
        "ipynb",
        "lua",
        "r",
        "dart",
        "scala",
        "ex",
        "exs",
        "vue",
        "svelte",
    ]
)
VIDEO_BRANDS_REFUSED = (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    media_type: str
    preview: bool  # an image: store a preview beside it


def sniff_upload(source: IO[bytes], filename: str) -> Sniffed:
    """What the file is, by its content: Refused unless it is on the allow-list."""
    source.seek(0)
    head = source.read(4096)
    source.seek(0)
    if head.startswith(b"%PDF-"):
        return Sniffed("application/pdf", MediaType.DOCUMENT, False)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Sniffed("application/zip", MediaType.DOCUMENT, False)
    if head[4:8] == b"ftyp":
        if head[8:12] in VIDEO_BRANDS_REFUSED:
            raise Refused("HEIC and AVIF images are not accepted; use PNG, JPEG, GIF or WebP.")
        return Sniffed("video/mp4", MediaType.VIDEO, False)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" not in head[:64]:
            raise Refused("Matroska video is not accepted; use MP4 or WebM.")
        return Sniffed("video/webm", MediaType.VIDEO, False)
    try:
        with open_image(source) as image:
            return Sniffed(IMAGE_TYPES[str(image.format)], MediaType.IMAGE, True)
    except NotAnImage:
        pass  # perhaps text (Pillow reads some text formats, such as XBM, as images)
    finally:
        source.seek(0)
    return _sniff_text(source, filename)


def _sniff_text(source: IO[bytes], filename: str) -> Sniffed:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in TEXT_TYPES:
        content_type, media_type = TEXT_TYPES[extension]
    elif extension in CODE_EXTENSIONS:
        content_type, media_type = "text/plain", MediaType.CODE
    else:
        raise Refused(
            "This type of file is not accepted. Images (PNG, JPEG, GIF, WebP), PDF, ZIP, MP4, WebM, "
            "and UTF-8 text, Markdown, JSON or code with its usual extension are."
        )
    raw = source.read()
    source.seek(0)
    if b"\x00" in raw:
        raise Refused(f"A .{extension} file must be text, and this one has binary content.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"A .{extension} file must be UTF-8 text.") from None
    if content_type == "application/json" or extension == "ipynb":
        try:
            json.loads(text)
        except ValueError:
            raise Refused("The .json file is not valid JSON.") from None
    return Sniffed(content_type, media_type, False)


def clean_filename(name: str) -> str:
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|*?:')
    return name.strip(" .")[:255] or "file"


def sha256_of(source: IO[bytes]) -> str:
    digest = hashlib.sha256()
    source.seek(0)
    for chunk in iter(lambda: source.read(1024 * 1024), b""):
        digest.update(chunk)
    source.seek(0)
    return digest.hexdigest()


def upload_store(*, agent_id: str, source: IO[bytes], filename: str, size: int) -> Upload:
    """Check an agent's file by its content and store it privately (with a preview for images)."""
    name = clean_filename(filename)
    kind = sniff_upload(source, name)
    upload = Upload(agent_id=agent_id, filename=name, content_type=kind.content_type, media_type=kind.media_type)
    folder = f"uploads/{agent_id}/{upload.id}"
    if kind.preview:
        stored = store_image(folder, source)
        upload.file_path, upload.preview_path = stored.file_path, stored.preview_path
    else:
        source.seek(0)
        upload.file_path = private_storage().save(f"{folder}/original", File(source))
    upload.size = size
    upload.sha256 = sha256_of(source)
    try:
        upload.save()
    except Exception:
        delete_stored(upload.file_path, upload.preview_path)
        raise
    return upload
