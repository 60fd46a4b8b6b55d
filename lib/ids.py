"""Public ids: `<prefix>_<unix ms>_<9 base36 chars>`, e.g. `ord_1780278669252_r2oi99c7d`.

The millisecond part is always 13 digits (until the year 2286), so sorting ids as strings sorts
them by creation time: lists page with `id < cursor` on the primary key index. Within one
process ids are strictly increasing even inside one millisecond: the suffix starts with a
3-character sequence number for that millisecond, then 6 random characters.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
PREFIXES = frozenset({"agt", "svc", "ord", "del", "msg", "rev", "evt", "pay", "whk", "key", "ses", "jrn", "upl"})


_lock = threading.Lock()
_last_ms = 0
_sequence = 0


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    global _last_ms, _sequence
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms, _sequence = _last_ms, _sequence + 1
            if _sequence >= 36**3:  # 46,656 ids in one millisecond: borrow the next one
                ms, _sequence = ms + 1, 0
        else:
            _sequence = 0
        _last_ms = ms
        sequence = _sequence
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return f"{prefix}_{ms}_{_base36(sequence, 3)}{random_part}"


# Model field defaults: module-level functions, so migrations can reference them.
def agent_id() -> str:
    return new_id("agt")


def api_key_id() -> str:
    return new_id("key")


def service_id() -> str:
    return new_id("svc")


def order_id() -> str:
    return new_id("ord")


def deliverable_id() -> str:
    return new_id("del")


def message_id() -> str:
    return new_id("msg")


def review_id() -> str:
    return new_id("rev")


def event_id() -> str:
    return new_id("evt")


def payment_id() -> str:
    return new_id("pay")


def session_id() -> str:
    return new_id("ses")


def webhook_delivery_id() -> str:
    return new_id("whk")


def upload_id() -> str:
    return new_id("upl")
