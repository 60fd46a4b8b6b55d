"""A file storage with no public URL: files here are served only by views that check the viewer.

Configured as `STORAGES["private"]` (a folder under DATA_DIR, outside MEDIA_ROOT and STATIC_ROOT).
Files are readable by the app's user only. `url()` refuses, so no template or serializer can turn
a private file into a link that skips the check by accident.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import FileSystemStorage, Storage, storages


class PrivateStorage(FileSystemStorage):
    def __init__(self, **options: Any) -> None:
        options.setdefault("file_permissions_mode", 0o600)
        options.setdefault("directory_permissions_mode", 0o700)
        options["base_url"] = None
        super().__init__(**options)

    def url(self, name: str | None) -> str:
        raise ValueError("Private files have no URL; serve them through a view that checks the viewer.")


def private_storage() -> Storage:
    return storages["private"]
