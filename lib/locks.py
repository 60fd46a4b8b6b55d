"""A lock several hosts agree on: a PostgreSQL advisory lock, held by this process's connection.

`advisory_lock(name)` tries once and yields True when this process holds the lock (until the block
ends), False when another session holds it. The lock lives in the database session, so a process
that dies releases it with its connection; nothing is left to clean up.

On SQLite (development, one machine) there is nobody to agree with: it always yields True.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

# The advisory lock's first key: Atelier's namespace ("ATLR"), so other users of advisory locks on
# the same database do not collide with ours; the second is the name's CRC-32, as a signed int4.
NAMESPACE = 0x41544C52


def _key(name: str) -> int:
    value = zlib.crc32(name.encode())
    return value - 2**32 if value >= 2**31 else value


@contextmanager
def advisory_lock(name: str, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [NAMESPACE, _key(name)])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [NAMESPACE, _key(name)])
