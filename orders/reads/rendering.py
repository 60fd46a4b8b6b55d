"""How the order page shows deliverables and the timeline, from rows already loaded.

Every URL comes from the watermark gate (`orders.deliverables.gate.deliverable_urls`): a human buyer sees the
watermarked preview of an image until the order is completed, and a placeholder while the preview
is being made; the original is linked only for viewers the gate allows. Code and text that were
uploaded (stored privately) are shown inline, code highlighted on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename, get_lexer_for_mimetype, guess_lexer
from pygments.util import ClassNotFound

from lib.privatestorage import private_storage
from orders.deliverables import gate
from orders.deliverables.uploads import UPLOAD_SCHEME
from orders.models import Deliverable, DeliverableStatus, FetchStatus, MediaType, Order, OrderEvent, Role, Upload

INLINE_LIMIT = 100_000  # bytes of code or text shown inline; a longer file is a link only


def _lexer(code: str, filename: str, content_type: str) -> Lexer:
    finders: tuple[Callable[[], Lexer], ...] = (
        lambda: get_lexer_for_filename(filename, code),
        lambda: get_lexer_for_mimetype(content_type),
        lambda: guess_lexer(code),
    )
    for find in finders:
        try:
            return find()
        except ClassNotFound:
            continue
    return TextLexer()


def highlighted(code: str, filename: str = "", content_type: str = "") -> str:
    """Server-side highlighting (Pygments, CSS classes only: no inline styles under the CSP)."""
    return str(highlight(code, _lexer(code, filename, content_type), HtmlFormatter(cssclass="code")))


def _filename(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _inline_text(deliverable: Deliverable) -> str | None:
    """The stored file's text when it is small enough to show inline."""
    if deliverable.fetch_status != FetchStatus.READY or not deliverable.file_path:
        return None
    try:
        with private_storage().open(deliverable.file_path, "rb") as handle:
            raw = handle.read(INLINE_LIMIT + 1)
    except OSError:
        return None
    if len(raw) > INLINE_LIMIT:
        return None
    return bytes(raw).decode("utf-8", errors="replace")


def deliverable_items(order: Order, role: Role | None) -> list[dict[str, Any]]:
    """The current deliverables as the template shows them, one dict each, the gate applied."""
    deliverables: list[Deliverable] | None = getattr(order, "current_deliverables", None)
    if deliverables is None:
        deliverables = list(order.deliverables.filter(superseded=False).order_by("id"))
    items = []
    for deliverable in deliverables:
        if deliverable.status == DeliverableStatus.PENDING:  # a workspace prompt not answered yet
            items.append({"id": deliverable.id, "media_type": "", "prompt": deliverable.prompt, "pending": True})
            continue
        deliverable.order = order  # the gate reads the order's status; no query per row
        urls = gate.deliverable_urls(deliverable, role)
        item: dict[str, Any] = {
            "id": deliverable.id,
            "media_type": deliverable.media_type,
            "prompt": deliverable.prompt,
            "filename": _filename(deliverable.url) or deliverable.media_type,
            "url": urls.url,
            "preview_url": urls.preview_url,
            "original_url": urls.original_url,
            "gated": urls.gated,
            "pending": False,
            "failed": deliverable.fetch_status == FetchStatus.FAILED,
            "code_html": None,
            "text": None,
        }
        if deliverable.media_type in (MediaType.CODE, MediaType.TEXT):
            text = _inline_text(deliverable)
            if text is not None and deliverable.media_type == MediaType.CODE:
                item["code_html"] = highlighted(text, item["filename"], deliverable.content_type)
            else:
                item["text"] = text
        items.append(item)
    return items


def earlier_deliverables(order: Order, role: Role | None) -> list[dict[str, Any]]:
    """What earlier deliveries held, newest first, the gate applied: a re-delivery keeps them visible
    as history. No query for an order never re-delivered."""
    if not order.revision_count:
        return []
    rows = list(order.deliverables.filter(superseded=True).order_by("-id"))
    # An uploaded file is named as the agent uploaded it, not by its internal id (`upl_…`).
    uploaded = dict(
        Upload.objects.filter(
            id__in=[_filename(row.url) for row in rows if row.url.startswith(UPLOAD_SCHEME)]
        ).values_list("id", "filename")
    )
    items = []
    for deliverable in rows:
        deliverable.order = order
        urls = gate.deliverable_urls(deliverable, role)
        name = _filename(deliverable.url)
        items.append(
            {
                "id": deliverable.id,
                "media_type": deliverable.media_type or "link",
                "filename": uploaded.get(name) or name or deliverable.media_type,
                "created_at": deliverable.created_at,
                # A gated image shows its watermarked preview, as the current one does.
                "url": urls.original_url or urls.preview_url or urls.url,
            }
        )
    return items


def delivery_versions(earlier: list[dict[str, Any]], events: list[OrderEvent]) -> list[dict[str, Any]]:
    """Earlier deliverables grouped into numbered versions, newest first: an item belongs to the first
    `deliver` event at or after it was written (the same transaction), as on the staff's resolve page."""
    delivered_at = [event.created_at for event in events if event.action == "deliver"]
    groups: dict[int, list[dict[str, Any]]] = {}
    for item in earlier:
        number = next((n for n, at in enumerate(delivered_at, 1) if at >= item["created_at"]), len(delivered_at))
        groups.setdefault(max(number, 1), []).append(item)
    return [
        {"number": number, "at": delivered_at[number - 1] if number <= len(delivered_at) else None, "items": items}
        for number, items in sorted(groups.items(), reverse=True)
    ]


# --- the timeline -------------------------------------------------------------------------------

_ACTOR = {"buyer": "Buyer", "agent": "The agent", "staff": "Staff", "system": "Atelier"}


def _money(value: Any) -> str:
    try:
        return f"${Decimal(str(value)):,.2f}"
    except ArithmeticError:
        return str(value)


def _money_base_units(value: Any) -> str:
    try:
        return f"{int(value) / 10**6:,.2f}"
    except (TypeError, ValueError):
        return "?"


def _short(value: Any, limit: int = 18) -> str:
    text = str(value or "")
    return text if len(text) <= limit else f"{text[:8]}…{text[-6:]}"


def _delivered(count: int) -> str:
    return "Delivered 1 item" if count == 1 else f"Delivered {count} items"


def event_text(event: OrderEvent) -> str:
    """One line for a person: what happened."""
    data = event.data or {}
    action = event.action
    texts: dict[str, Callable[[], str]] = {
        "create": lambda: "Order placed",
        "quote": lambda: f"Quoted {_money(data.get('price_usd'))}",
        "accept": lambda: "Quote accepted",
        "payment_pending": lambda: (
            f"Payment sent ({_short(data.get('tx_hash'))}); "
            + ("not found on chain yet" if data.get("seen") is False else "waiting for it to be final")
        ),
        "payment_rejected": lambda: f"Payment refused: {data.get('error') or data.get('code')}",
        "payment_expired": lambda: (
            f"Stopped waiting for {_short(data.get('tx_hash'))}: "
            + ("not on chain within minutes" if data.get("code") == "claim_not_found" else "not final within a day")
        ),
        "payment_unapplied": lambda: (
            f"{_money_base_units(data.get('amount_base_units'))} USDC arrived but paid nothing "
            f"({str(data.get('reason', '')).replace('_', ' ')}); "
            + (f"it goes back to {_short(data['returned_to'])}" if data.get("returned_to") else "it waits for staff")
        ),
        "return_sent": lambda: f"Returned {_money_base_units(data.get('amount_base_units'))} USDC to its sender",
        "return_failed": lambda: (
            f"Returning {_money_base_units(data.get('amount_base_units'))} USDC failed; staff will retry"
        ),
        "return_held": lambda: (
            f"Returning {_money_base_units(data.get('amount_base_units'))} USDC is on hold: {data.get('reason', '')}"
        ),
        "refund_held": lambda: (
            f"The refund of {_money_base_units(data.get('amount_base_units'))} USDC is on hold: {data.get('reason', '')}"
        ),
        "payout_held": lambda: (
            f"The payout of {_money_base_units(data.get('amount_base_units'))} USDC is on hold: {data.get('reason', '')}"
        ),
        "pay": lambda: f"Paid into escrow ({_short(data.get('tx_hash'))} on {str(data.get('chain', '')).capitalize()})",
        "open_workspace": lambda: "Workspace opened",
        "start": lambda: "Started work",  # after "The agent" (who)
        "deliver": lambda: _delivered(len(data.get("deliverables") or [])),
        "approve": lambda: "Approved; the agent is paid",
        "revision": lambda: f"Revision requested: {data.get('feedback', '')}",
        "dispute": lambda: f"Disputed: {data.get('reason', '')}",
        "cancel": lambda: "Cancelled" + (f": {data['reason']}" if data.get("reason") else ""),
        "release": lambda: "Dispute resolved: released to the agent",
        "refund": lambda: "Dispute resolved: refunded",
        "split": lambda: f"Dispute resolved: split ({_money(data.get('agent_amount_usd'))} to the agent)",
        "send_back": lambda: "Dispute resolved: sent back for revision",
        "expire": lambda: "Workspace closed",
        "review": lambda: f"Reviewed {'★' * int(data.get('rating') or 0)}",
    }
    make = texts.get(action)
    return make() if make else action.replace("_", " ").capitalize()


def timeline(events: list[OrderEvent]) -> list[dict[str, Any]]:
    return [
        {
            "id": event.id,
            "action": event.action,
            "who": _ACTOR.get(event.actor_kind, event.actor_kind),
            "text": event_text(event),
            "to_status": event.to_status,
            "at": event.created_at,
        }
        for event in events
    ]
