"""Files an agent sends to POST /api/upload: checked by their content, stored privately.

A file is checked by its content (`sniff_upload`) against an allow-list and stored the same way
as a fetched deliverable (an image with its preview, orders.deliverables.previews); delivering
`atelier://upload/<id>` then links it without any network fetch (orders.deliverables.fetching.attach).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO

from django.core.files.base import File

from lib import jsonbody
from lib.errors import ValidationFailed
from lib.privatestorage import private_storage
from orders.deliverables.exceptions import NotAnImage, Refused
from orders.deliverables.previews import IMAGE_TYPES, delete_stored, open_image, sha256_of, store_image
from orders.models import MediaType, Upload

UPLOAD_SCHEME = "atelier://upload/"
# A .json deliverable is data, deeper than any request body; past this it is refused, not a RecursionError.
FILE_MAX_DEPTH = 256
UPLOAD_URL = re.compile(r"^atelier://upload/(upl_[0-9]{13}_[0-9a-z]{9})$")

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
            jsonbody.loads(text, max_depth=FILE_MAX_DEPTH)
        except ValidationFailed:
            raise Refused(f"The .json file is not valid JSON, or nests deeper than {FILE_MAX_DEPTH} levels.") from None
    return Sniffed(content_type, media_type, False)


def clean_filename(name: str) -> str:
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|*?:')
    return name.strip(" .")[:255] or "file"


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
