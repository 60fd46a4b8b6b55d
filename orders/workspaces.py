"""Subscription workspaces: the buyer's prompts, the agent's answers, and the close.

A workspace order (weekly or monthly, or a quota pack: `Order.workspace_kind`, as bought) opens
when it is paid: `open_workspace` is a follow-up of `pay` in the same transaction
(orders.core.transitions), `in_progress` with `workspace_expires_at` 7 days, 30 days or 24 hours on.

- `prompt_create` (the buyer, POST /api/orders/{id}/generate) takes one unit of quota and leaves a
  pending deliverable for the prompt; the agent hears of it as `workspace.prompt`.
- `prompt_answer` (the agent, POST /api/orders/{id}/deliver naming the prompt's `deliverable_id`)
  fills that deliverable. An answer is not a transition: the order stays where it is, and nothing
  here assigns `status`. The answer that leaves a used-up quota with nothing pending runs the
  system's `expire` (through `transition`) in the same transaction.
- `workspace_expire_if_due` (orders.core.workspace_timer) closes a workspace whose window has
  passed: run by the task queued at opening (`expire_workspace`) and by every request that reads
  the order (orders.reads.queries.order_for), so a late or dead worker never keeps a workspace open.

After `expire` the order is `delivered`: the buyer approves or disputes as usual (an agent or x402
buyer's order is released at once instead: orders.core.table.settles_on_delivery).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from lib.errors import Conflict, Forbidden, NotFound
from lib.principal import SYSTEM, Principal
from orders.core import events
from orders.core.access import access_order
from orders.core.transitions import Role, transition
from orders.deliverables import fetching
from orders.models import Deliverable, DeliverableStatus, Order, Status

# Where the agent may still answer a prompt: the open workspace, and after the close until the
# buyer has approved (a prompt left pending at the close can still be answered for the buyer).
ANSWERABLE = frozenset({Status.IN_PROGRESS, Status.DELIVERED, Status.REVISION_REQUESTED, Status.DISPUTED})
NOT_OPEN_YET = frozenset({Status.PENDING_QUOTE, Status.QUOTED, Status.ACCEPTED, Status.PAID})


def _party(actor: Principal, order_id: str, expected: Role, doing: str) -> tuple[Order, Role]:
    """The order locked for a change, when `actor` is its `expected` party (404 for strangers)."""
    order, role = access_order(actor, order_id, lock=True)
    if role != expected:
        raise Forbidden(f"Only the {expected} of a workspace order can {doing}.", code="wrong_role")
    return order, role


def _require_workspace(order: Order) -> None:
    if not order.is_workspace:
        raise Conflict(
            "This order is not a workspace (a weekly or monthly service, or a quota pack).",
            code="not_a_workspace",
            details={"status": order.status, "price_type": order.price_type, "workspace_kind": order.workspace_kind},
        )


def _details(order: Order) -> dict[str, Any]:
    return {
        "status": order.status,
        "quota_total": order.quota_total,
        "quota_used": order.quota_used,
        "workspace_expires_at": order.workspace_expires_at.isoformat() if order.workspace_expires_at else None,
    }


def _check_open(order: Order) -> None:
    """Raise why no prompt can be sent now, if none can."""
    _require_workspace(order)
    now = timezone.now()
    expired = order.workspace_expires_at is not None and order.workspace_expires_at <= now
    used_up = order.quota_total > 0 and order.quota_used >= order.quota_total
    if order.status in NOT_OPEN_YET:
        raise Conflict(
            "The workspace opens once the order is paid.", code="workspace_not_open", details=_details(order)
        )
    if expired:
        raise Conflict("This workspace's window has closed.", code="workspace_expired", details=_details(order))
    if used_up:
        raise Conflict(
            f"This workspace has used all {order.quota_total} prompts of its quota.",
            code="quota_exhausted",
            details=_details(order),
        )
    if order.status != Status.IN_PROGRESS:
        raise Conflict(f"This workspace is {order.status}.", code="workspace_closed", details=_details(order))


def prompt_create(*, order_id: str, actor: Principal, prompt: str) -> tuple[Deliverable, Order]:
    """The buyer sends a prompt: one unit of quota, a pending deliverable, an OrderEvent `prompt`
    (the agent's `workspace.prompt` webhook). Locks the order row, so two prompts racing for the last
    unit are checked (`_check_open`: window open, quota left) one after the other."""
    with transaction.atomic():
        order, role = _party(actor, order_id, Role.BUYER, "send prompts")
        _check_open(order)
        order.quota_used += 1
        order.save(update_fields=["quota_used", "updated_at"])
        deliverable = Deliverable.objects.create(order=order, prompt=prompt, status=DeliverableStatus.PENDING)
        events.record(
            order,
            "prompt",
            actor_kind=role,
            actor_id=actor.id,
            data={"deliverable_id": deliverable.id, "quota_used": order.quota_used, "quota_total": order.quota_total},
            webhook_data={"deliverable_id": deliverable.id, "prompt": prompt, "quota_left": order.quota_left},
        )
    return deliverable, order


def _used_up(order: Order) -> bool:
    """The quota is used up when every unit is taken and every prompt answered."""
    if order.quota_total == 0 or order.quota_used < order.quota_total:
        return False
    return not order.deliverables.filter(status=DeliverableStatus.PENDING, superseded=False).exists()


def prompt_answer(*, order_id: str, actor: Principal, deliverable_id: str, url: str, media_type: str) -> Order:
    """The agent answers a pending prompt. Locks the order row; fills the prompt's deliverable (image
    URLs are fetched and previewed like any delivery: orders.deliverables.fetching), writes an OrderEvent
    `prompt_answered`, and, when that leaves a used-up quota with nothing pending, runs the system's
    `expire` in the same transaction. The same answer again is a no-op (safe retries); another answer
    to an answered prompt is a 409."""
    with transaction.atomic():
        order, role = _party(actor, order_id, Role.AGENT, "answer prompts")
        _require_workspace(order)
        if order.status not in ANSWERABLE:
            raise Conflict(
                f"Prompts of a {order.status} order can no longer be answered.",
                code="workspace_closed" if order.status not in NOT_OPEN_YET else "workspace_not_open",
                details=_details(order),
            )
        deliverable = (
            Deliverable.objects.filter(order=order, pk=deliverable_id, superseded=False).exclude(prompt="").first()
        )
        if deliverable is None:
            raise NotFound(
                "This order has no such prompt.", code="prompt_not_found", details={"deliverable_id": "unknown"}
            )
        if deliverable.status == DeliverableStatus.DELIVERED:
            if (deliverable.url, deliverable.media_type) == (url, media_type):
                return order
            raise Conflict(
                "This prompt has been answered already.",
                code="prompt_already_answered",
                details={"deliverable_id": deliverable.id},
            )
        deliverable.url, deliverable.media_type, deliverable.status = url, media_type, DeliverableStatus.DELIVERED
        fetching.attach(order, [deliverable])  # link an upload, or queue the image fetch (after commit)
        deliverable.save(
            update_fields=["url", "media_type", "status", "fetch_status", "file_path", "preview_path", "content_type"]
        )
        events.record(
            order,
            "prompt_answered",
            actor_kind=role,
            actor_id=actor.id,
            data={"deliverable_id": deliverable.id, "url": url, "media_type": media_type},
        )
        if order.status == Status.IN_PROGRESS and _used_up(order):
            order = transition(order.id, "expire", SYSTEM, note="quota used up")
    return order
