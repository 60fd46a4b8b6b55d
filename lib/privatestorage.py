"""File storages with no public URL: files here are served only by views that check the viewer.

Configured as `STORAGES["private"]`, chosen by STORAGE_BACKEND (atelier.settings):

- `PrivateStorage` (local, the default for `make run` and the tests): a folder under DATA_DIR,
  outside MEDIA_ROOT and STATIC_ROOT, readable by the app's user only.
- `PrivateS3Storage` (s3): a bucket on S3 or any S3-compatible store, shared by every app server and
  worker. Objects carry no public ACL.

`url()` refuses on both, so no template or serializer can turn a private file into a link that skips
the check by accident. The one way to a link is `presigned_url()`, which a view calls after the check:
a URL signed for one object, valid for seconds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage

NO_URL = "Private files have no URL; serve them through a view that checks the viewer."


class PrivateStorage(FileSystemStorage):
    def __init__(self, **options: Any) -> None:
        options.setdefault("file_permissions_mode", 0o600)
        options.setdefault("directory_permissions_mode", 0o700)
        options["base_url"] = None
        super().__init__(**options)

    def url(self, name: str | None) -> str:
        raise ValueError(NO_URL)


class PrivateS3Storage(S3Storage):  # type: ignore[misc]  # django-storages ships no types: S3Storage is Any
    """S3 with signed access only: no public ACL, no unsigned URLs, names never overwritten."""

    def __init__(self, **options: Any) -> None:
        options["default_acl"] = None  # the bucket's own (private); never "public-read"
        options["querystring_auth"] = True
        options["file_overwrite"] = False
        options.setdefault("signature_version", "s3v4")
        super().__init__(**options)

    def url(self, name: str | None, parameters: Any = None, expire: Any = None, http_method: Any = None) -> str:
        raise ValueError(NO_URL)

    def presigned(self, name: str, *, seconds: int, content_type: str, download_name: str, inline: bool) -> str:
        disposition = "inline" if inline else f"attachment; filename*=UTF-8''{quote(download_name)}"
        parameters = {"ResponseContentType": content_type, "ResponseContentDisposition": disposition}
        return str(super().url(name, parameters=parameters, expire=seconds))


def private_storage() -> Storage:
    return storages["private"]


def presigned_url(name: str, *, seconds: int, content_type: str, download_name: str, inline: bool) -> str | None:
    """A short-lived signed URL for one private object, or None when the storage serves no URLs (local
    disk: the view streams the file). Call it only after checking the viewer."""
    storage = private_storage()
    if not isinstance(storage, PrivateS3Storage) or seconds <= 0:
        return None
    return storage.presigned(
        name, seconds=seconds, content_type=content_type, download_name=download_name, inline=inline
    )
