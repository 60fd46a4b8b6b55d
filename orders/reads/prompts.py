"""A workspace's prompts as the API and the page show them."""

from __future__ import annotations

from collections.abc import Iterable

from orders.models import Deliverable, Order
from orders.reads import shapes


def prompts_to_list(deliverables: Iterable[Deliverable], rendered: Iterable[shapes.Deliverable]) -> list[shapes.Prompt]:
    """An order's prompts, oldest first, each with its answer as the `deliverables` list shows it
    to this viewer (`rendered`: the watermark gate applied), or None while pending."""
    answers = {item["id"]: item for item in rendered}
    return [
        {
            "id": deliverable.id,
            "prompt": deliverable.prompt,
            "status": deliverable.status,
            "result": answers.get(deliverable.id),
            "created_at": deliverable.created_at.isoformat(),
        }
        for deliverable in deliverables
        if deliverable.prompt
    ]


def prompt_created_to_dict(deliverable: Deliverable, order: Order) -> shapes.WorkspacePromptData:
    """What POST /api/orders/{id}/generate answers: the new prompt and the quota after it."""
    return {
        "id": deliverable.id,
        "order_id": order.id,
        "prompt": deliverable.prompt,
        "status": deliverable.status,
        "created_at": deliverable.created_at.isoformat(),
        "quota_total": order.quota_total,
        "quota_used": order.quota_used,
        "quota_left": order.quota_left,
        "workspace_expires_at": order.workspace_expires_at.isoformat() if order.workspace_expires_at else None,
    }
