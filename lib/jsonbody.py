"""JSON from clients, parsed in one place: UTF-8 only, and arrays and objects nested no deeper than
MAX_DEPTH, refused with ValidationFailed (`invalid_json`, a 400) before the parser ever sees them.

Why a depth limit: Python's parser recurses once per level. A body of 100,000 `[` raises
RecursionError (a 500 wherever only ValueError was caught), and a body nested a few thousand deep
parses, then breaks whatever walks it next (orjson refuses more than 255 levels, the canonical
fingerprint and `json.dumps` recurse again). No request of ours needs more than a few levels.

The depth is read before parsing, in linear time and in C (`too_deep`; brackets inside strings are
text): on a 1 MB body it costs a few milliseconds, and for bodies of any shape less than the parse.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from lib.errors import PayloadTooLarge, ValidationFailed

# Every body the API and the Solana Pay endpoint document is at most 4 levels deep.
MAX_DEPTH = 16

_SQUARE = bytes.maketrans(b"{}", b"[]")  # for depth, an object is an array
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


def too_deep(raw: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the JSON text `raw` nests arrays and objects more than `max_depth` levels deep.

    Linear, and every step in C: strings dropped (escaped backslashes and quotes first, then what
    lies between quotes), everything but brackets dropped, then up to `max_depth` rounds of
    deleting each innermost `[]`. A pair left after that had more than `max_depth` levels inside
    it; more than `max_depth` unclosed openers are as deep (not JSON, and too deep for the parser).
    On text that is not JSON the parser never nests past 2 * max_depth before it gives up."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # the common case: not enough brackets to get there
    if b'"' in raw:
        if b"\\" in raw:
            raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
        raw = b"".join(raw.split(b'"')[::2])
    structure = raw.translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(max_depth):
        reduced = structure.replace(b"[]", b"")
        if len(reduced) == len(structure):
            break
        structure = reduced
    return b"[]" in structure or structure.count(b"[") > max_depth


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text (bytes must be UTF-8; a leading byte order mark is ignored, as RFC 8259
    allows); ValidationFailed `invalid_json` for anything else and for nesting past `max_depth`."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed(
                "The request body is not valid JSON: it is not UTF-8.", code="invalid_json"
            ) from None
    else:
        text, raw = raw, raw.encode("utf-8", "surrogatepass")
    text = text.removeprefix("\ufeff")
    if too_deep(raw, max_depth):
        raise ValidationFailed(
            f"The request body nests arrays and objects too deeply: at most {max_depth} levels.",
            code="invalid_json",
            details={"max_depth": max_depth},
        )
    try:
        return json.loads(text)
    # ValueError: bad syntax, an integer over 4300 digits. RecursionError cannot happen below the
    # limit; caught anyway, since a 500 for bad input is worse than one more except clause.
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None


def request_json(request: HttpRequest, *, max_depth: int = MAX_DEPTH) -> Any:
    """The request's JSON body ({} when blank), parsed by `loads`; PayloadTooLarge past
    DATA_UPLOAD_MAX_MEMORY_SIZE. Strings with a lone UTF-16 surrogate (`"\\ud800"`: JSON syntax,
    but no database stores it) are refused too."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge("The request body is too large.") from None
    if not raw.strip():
        return {}
    data = loads(raw, max_depth=max_depth)
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise ValidationFailed(
            "The request body is not valid JSON: it contains a lone UTF-16 surrogate.", code="invalid_json"
        ) from None
    return data
