"""What the API answers about orders, as types: mypy holds each to-dict function to its type, and
the OpenAPI document's schemas are generated from them (lib.shapes). Adding a field to an answer is
one line here and one in the function that builds it.

The modules below `reads` that build some of these (orders.models, orders.deliverables.gate) import
this module for type checking only; at run time it imports them, for their choices."""

from __future__ import annotations

from typing import Annotated, TypedDict

from agents.models import PriceType
from lib.shapes import Money, Time
from lib.wallets import Chain
from orders.core.transitions import ACTIONS
from orders.models import BuyerKind, DeliverableStatus, FetchStatus, MediaType, SenderRole, Status, WorkspaceKind
from orders.reads.resolution import DECISIONS
from payments.shapes import PaymentInstructions, Transfer, UnappliedTransfer

# The fee is exact to the USDC base unit (six places): 10% of $100.05 is $10.005.
Fee = Annotated[str, {"pattern": r"^\d+\.\d{2,6}$"}]
VIEWER_ROLES = ("buyer", "agent", "staff")


class Deliverable(TypedDict):
    """One delivered item, with the URLs this viewer may have (the watermark gate: orders.deliverables.gate)."""

    id: str
    deliverable_url: Annotated[str | None, "A gated viewer gets the preview here, or null."]
    deliverable_media_type: Annotated[str, MediaType]
    prompt: str | None
    superseded: bool
    created_at: Time
    gated: bool
    original_url: str | None
    preview_url: str | None
    fetch_status: Annotated[str | None, FetchStatus]
    fetch_error: str | None


class Prompt(TypedDict):
    """A workspace prompt and its answer (null while pending)."""

    id: str
    prompt: str
    status: Annotated[str, DeliverableStatus]
    result: Deliverable | None
    created_at: Time


class WorkspacePromptData(TypedDict):
    """A prompt just sent to a workspace, and the quota after it."""

    id: str
    order_id: str
    prompt: str
    status: Annotated[str, (DeliverableStatus.PENDING.value,)]
    created_at: Time
    quota_total: int
    quota_used: int
    quota_left: Annotated[int | None, "null: unlimited."]
    workspace_expires_at: Time | None


class Resolution(TypedDict):
    """Staff's decision on a dispute, with their note."""

    decision: Annotated[str, DECISIONS]
    note: str | None
    agent_amount_usd: Annotated[Money | None, "split: the part of the price released to the agent, before the fee."]
    agent_payout_base_units: Annotated[int, "USDC base units paid out to the agent."]
    refund_base_units: Annotated[int, "USDC base units sent back to the buyer."]
    platform_fee_base_units: Annotated[int, "USDC base units kept by the platform."]
    decided_at: Time


class OrderData(TypedDict):
    id: str
    service_id: str
    service_title: str
    price_type: Annotated[
        str,
        PriceType,
        "The terms as bought: copied from the service when quoted; a later edit of the service never changes them.",
    ]
    agent_id: str
    buyer_kind: Annotated[str, BuyerKind]
    buyer_wallet: str | None
    buyer_chain: Annotated[str | None, Chain]
    buyer_agent_id: str | None
    brief: str
    reference_urls: list[str]
    status: Annotated[str, Status]
    quoted_price_usd: Money | None
    platform_fee_usd: Fee | None
    payment_chain: Annotated[str, Chain]
    payment_reference: str
    escrow_tx_hash: str | None
    revision_count: int
    max_revisions: int
    turnaround_hours: int
    due_at: Annotated[
        Time | None,
        "When the agent's turnaround runs out: turnaround_hours after payment, or after the latest revision "
        "request. null before payment and for workspaces (their window closes them).",
    ]
    overdue: Annotated[
        bool,
        "due_at has passed and no delivery is waiting for the buyer (paid, in_progress or revision_requested): "
        "the buyer may dispute, or cancel for a full refund while still paid.",
    ]
    revision_feedback: str | None
    dispute_reason: str | None
    resolution: Annotated[
        Resolution | None,
        "Staff's decision on the dispute, with their note; null when the order was never disputed, is waiting "
        "for a decision, or was disputed again since.",
    ]
    quota_total: int
    quota_used: int
    workspace_expires_at: Time | None
    is_workspace: bool
    workspace_kind: Annotated[str, WorkspaceKind]
    quota_left: Annotated[int | None, "null: unlimited, or not a workspace."]
    payment: PaymentInstructions | None
    payment_pending: bool
    unapplied_transfers: list[UnappliedTransfer]
    unapplied_transfers_total: int
    transfers: list[Transfer]
    deliverables: list[Deliverable]
    prompts: list[Prompt]
    allowed_actions: list[Annotated[str, ACTIONS]]
    viewer_role: Annotated[str | None, VIEWER_ROLES]
    created_at: Time
    quoted_at: Time | None
    accepted_at: Time | None
    paid_at: Time | None
    started_at: Time | None
    delivered_at: Time | None
    revision_requested_at: Time | None
    completed_at: Time | None
    cancelled_at: Time | None


class MessageData(TypedDict):
    id: str
    order_id: str
    sender_role: Annotated[str, SenderRole]
    sender_id: str
    content: str
    created_at: Time


class ReviewData(TypedDict):
    id: str
    order_id: str
    agent_id: str
    service_id: str
    rating: Annotated[int, {"minimum": 1, "maximum": 5}]
    comment: str
    created_at: Time


class UploadData(TypedDict):
    """A stored file: deliver it as its `url`."""

    id: Annotated[str, {"pattern": "^upl_"}]
    url: Annotated[str, {"pattern": "^atelier://upload/upl_"}]
    filename: str
    content_type: str
    media_type: Annotated[str, MediaType]
    size: int
    sha256: Annotated[str, {"pattern": "^[0-9a-f]{64}$"}]
    created_at: Time
