"""Image deliverables: checked, stored privately as they came, and previewed behind a watermark.

The preview of an image is at most 720 px and 60% of the original on the long edge, carries a tiled
diagonal "ATELIER PREVIEW" watermark laid out differently for each picture, and is WebP with no
metadata. Both files live in `STORAGES["private"]`, which has no URL; orders.web.files_api serves them
after orders.deliverables.gate has checked the viewer. Fetched deliverables (orders.deliverables.fetching) and uploads
(orders.deliverables.uploads) are stored here.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import warnings
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.utils.crypto import salted_hmac
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from lib.privatestorage import private_storage
from orders.deliverables.exceptions import NotAnImage, Refused

PREVIEW_LONG_EDGE = 720
# Even a small original is scaled down: a preview never shows every pixel of the work.
PREVIEW_MAX_SCALE = 0.6
PREVIEW_QUALITY = 80
WATERMARK_TEXT = "ATELIER PREVIEW"
WATERMARK_ANGLES = (22.0, 38.0)  # degrees either way, drawn per picture

# Images we store and preview: what browsers show. Pillow's format name -> MIME type.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Stored:
    file_path: str
    preview_path: str
    content_type: str


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


def sha256_of(source: IO[bytes]) -> str:
    digest = hashlib.sha256()
    source.seek(0)
    for chunk in iter(lambda: source.read(1024 * 1024), b""):
        digest.update(chunk)
    source.seek(0)
    return digest.hexdigest()
