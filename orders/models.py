from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, PriceType, Service
from lib import ids
from lib.wallets import Chain
from orders.limits import BRIEF_MAX, NOTE_MAX, PROMPT_MAX, REVIEW_COMMENT_MAX, TX_HASH_MAX

if TYPE_CHECKING:  # the shapes read this module's choices at run time
    from orders.reads import shapes


class Status(models.TextChoices):
    PENDING_QUOTE = "pending_quote"
    QUOTED = "quoted"
    ACCEPTED = "accepted"
    PAID = "paid"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    REVISION_REQUESTED = "revision_requested"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"


# Where an order can still take a payment (the `pay` rule's sources in orders.core.transitions.TABLE).
PAYABLE = (Status.QUOTED, Status.ACCEPTED)


class BuyerKind(models.TextChoices):
    HUMAN = "human"
    AGENT = "agent"
    X402 = "x402"


class WorkspaceKind(models.TextChoices):
    """What an order bought besides the work: nothing, or a workspace open for a window."""

    NONE = "none"
    WEEKLY = "weekly"  # open 7 days
    MONTHLY = "monthly"  # open 30 days
    QUOTA_PACK = "quota_pack"  # a fixed number of prompts, open 24 hours


# Where the agent owes a delivery: paid or started and not delivered yet, or sent back for a revision.
# An order resting here past its due time is overdue (`Order.overdue`), and its buyer may dispute it.
AWAITING_DELIVERY = frozenset({Status.PAID, Status.IN_PROGRESS, Status.REVISION_REQUESTED})

# Both parties may talk on an order once it has been paid for (the product's rule).
MESSAGING_STATUSES = frozenset(
    {Status.PAID, Status.IN_PROGRESS, Status.DELIVERED, Status.REVISION_REQUESTED, Status.COMPLETED, Status.DISPUTED}
)


class Order(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=ids.order_id, editable=False)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="orders")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="orders")
    buyer_kind = models.CharField(max_length=10, choices=BuyerKind.choices)
    buyer_wallet = models.CharField(max_length=64, blank=True, db_index=True)
    buyer_chain = models.CharField(max_length=10, choices=Chain.choices, blank=True)
    buyer_agent = models.ForeignKey(Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="purchases")
    brief = models.TextField(max_length=BRIEF_MAX)
    reference_urls = models.JSONField(default=list, blank=True)
    # Assigned only by orders.core.transitions; read-only everywhere else (admin included).
    status = models.CharField(max_length=20, choices=Status.choices, editable=False)
    quoted_price_usd = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    # To the USDC base unit: the fee is what the ledger books (payments.ledger.split_fee), $10.005 on $100.05.
    platform_fee_usd = models.DecimalField(max_digits=13, decimal_places=6, null=True, blank=True)
    payment_chain = models.CharField(max_length=10, choices=Chain.choices)
    # Binds an on-chain payment to this order (the Solana memo), so a transfer made for one
    # order cannot be replayed to pay another.
    payment_reference = models.CharField(max_length=32, unique=True, editable=False)
    escrow_tx_hash = models.CharField(max_length=TX_HASH_MAX, blank=True)
    revision_count = models.PositiveSmallIntegerField(default=0)
    revision_feedback = models.TextField(max_length=NOTE_MAX, blank=True)
    dispute_reason = models.TextField(max_length=NOTE_MAX, blank=True)
    # The terms as bought (DESIGN.md section 5): copied from the service when the order is quoted
    # (at creation for auto-quoted services, by `quote` otherwise; orders.core.transitions.terms_of).
    # Editing the service never changes them; everything about the order reads these, not the service.
    price_type = models.CharField(max_length=10, choices=PriceType.choices, default=PriceType.FIXED)
    max_revisions = models.PositiveSmallIntegerField(default=3)
    turnaround_hours = models.PositiveIntegerField(default=48)
    workspace_kind = models.CharField(max_length=10, choices=WorkspaceKind.choices, default=WorkspaceKind.NONE)
    quota_total = models.PositiveIntegerField(default=0)
    quota_used = models.PositiveIntegerField(default=0)
    workspace_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    quoted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The latest revision request (the buyer's, or staff sending a dispute back): the agent's
    # turnaround runs again from here (`due_at`).
    revision_requested_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("resolve_dispute", "Can resolve disputes (release, refund, split, send back)")]
        indexes = [
            # The agent poll: WHERE agent_id = ? AND status IN (...) ORDER BY id DESC.
            models.Index(fields=["agent", "status", "-id"], name="order_agent_poll_idx"),
            models.Index(fields=["agent", "-id"], name="order_agent_list_idx"),
            models.Index(fields=["buyer_wallet", "buyer_chain", "-id"], name="order_buyer_wallet_idx"),
            models.Index(fields=["buyer_agent", "-id"], name="order_buyer_agent_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(buyer_kind__in=BuyerKind.values), name="order_buyer_kind_valid"),
            models.CheckConstraint(condition=Q(payment_chain__in=Chain.values), name="order_payment_chain_valid"),
            models.CheckConstraint(
                condition=Q(quoted_price_usd__isnull=True) | Q(quoted_price_usd__gt=0, quoted_price_usd__lte=1_000_000),
                name="order_quoted_price_range",
            ),
            models.CheckConstraint(
                condition=(Q(buyer_kind=BuyerKind.AGENT) & Q(buyer_agent__isnull=False))
                | (~Q(buyer_kind=BuyerKind.AGENT) & Q(buyer_agent__isnull=True) & ~Q(buyer_wallet="")),
                name="order_buyer_identified",
            ),
            models.CheckConstraint(condition=~Q(buyer_agent=models.F("agent")), name="order_agent_not_own_buyer"),
            models.CheckConstraint(
                condition=Q(quota_total=0) | Q(quota_used__lte=models.F("quota_total")), name="order_quota_within_total"
            ),
            models.CheckConstraint(condition=Q(price_type__in=PriceType.values), name="order_price_type_valid"),
            models.CheckConstraint(condition=Q(max_revisions__lte=10), name="order_max_revisions_0_10"),
            models.CheckConstraint(
                condition=Q(workspace_kind__in=WorkspaceKind.values), name="order_workspace_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_workspace(self) -> bool:
        """Bought as a workspace (weekly, monthly or a quota pack), whatever the service says now."""
        return self.workspace_kind != WorkspaceKind.NONE

    @property
    def quota_left(self) -> int | None:
        """Prompts the buyer may still send; None when unlimited (quota 0) or not a workspace."""
        if not self.is_workspace or self.quota_total == 0:
            return None
        return max(self.quota_total - self.quota_used, 0)

    @property
    def due_at(self) -> datetime | None:
        """When the agent's committed turnaround runs out: `turnaround_hours` after payment, or after
        the latest revision request (each gives the agent a fresh turnaround, as the first delivery
        had). None before payment, and for workspaces: their window closes them instead."""
        if self.paid_at is None or self.is_workspace:
            return None
        start = max(self.paid_at, self.revision_requested_at or self.paid_at)
        return start + timedelta(hours=self.turnaround_hours)

    @property
    def overdue(self) -> bool:
        """The turnaround has passed and the agent owes a delivery: the buyer may dispute
        (orders.core.transitions, the `overdue` rows), and cancel for a full refund if still `paid`."""
        due = self.due_at
        return self.status in AWAITING_DELIVERY and due is not None and due <= timezone.now()

    @property
    def buyer_id(self) -> str:
        """Who bought, as one string: the buyer agent's id or the wallet address."""
        return self.buyer_agent_id or self.buyer_wallet


class Dispute(Order):
    """The disputes queue in admin: orders waiting for staff."""

    class Meta:
        proxy = True
        verbose_name = "dispute"


class MediaType(models.TextChoices):
    IMAGE = "image"
    VIDEO = "video"
    LINK = "link"
    DOCUMENT = "document"
    CODE = "code"
    TEXT = "text"


class FetchStatus(models.TextChoices):
    """Where a deliverable's stored file stands (blank: nothing is stored, e.g. a link)."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DeliverableStatus(models.TextChoices):
    PENDING = "pending"  # a workspace prompt the agent has not answered yet: no url, no media type
    DELIVERED = "delivered"


class Deliverable(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=ids.deliverable_id, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="deliverables")
    # The agent's URL, or `atelier://upload/<id>` for a file sent to POST /api/upload. Never shown
    # to a buyer the watermark gate holds back (orders.deliverables.gate). Blank only while a prompt is pending.
    url = models.URLField(max_length=2000, blank=True)
    media_type = models.CharField(max_length=10, choices=MediaType.choices, blank=True)
    # A workspace prompt (POST /api/orders/{id}/generate); the agent's answer fills url and media_type.
    prompt = models.TextField(max_length=PROMPT_MAX, blank=True)
    status = models.CharField(max_length=10, choices=DeliverableStatus.choices, default=DeliverableStatus.DELIVERED)
    # Set when a later delivery replaces this one; kept for the record, hidden from the default view.
    superseded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The stored copy (orders.deliverables.previews): names in the "private" storage, served only by orders.web.files_api.
    fetch_status = models.CharField(max_length=10, choices=FetchStatus.choices, blank=True, default="")
    fetch_error = models.CharField(max_length=300, blank=True)
    file_path = models.CharField(max_length=300, blank=True)
    preview_path = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["order", "superseded", "id"], name="deliverable_order_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status=DeliverableStatus.DELIVERED, media_type__in=MediaType.values)
                | Q(status=DeliverableStatus.PENDING, media_type="", url=""),
                name="deliverable_media_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(fetch_status__in=["", *FetchStatus.values]), name="deliverable_fetch_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=DeliverableStatus.PENDING) | ~Q(prompt=""), name="deliverable_pending_is_a_prompt"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.media_type}: {self.url}"


class Upload(models.Model):
    """A file an agent sent to POST /api/upload, to deliver as `atelier://upload/<id>`."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.upload_id, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)  # from the file's content, not the client's word
    media_type = models.CharField(max_length=10, choices=MediaType.choices)  # what it can be delivered as
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file_path = models.CharField(max_length=300)  # in the "private" storage
    preview_path = models.CharField(max_length=300, blank=True)  # images: the watermarked preview
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "-id"], name="upload_agent_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(media_type__in=MediaType.values), name="upload_media_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.content_type})"

    @property
    def url(self) -> str:
        return f"atelier://upload/{self.id}"

    def to_dict(self) -> shapes.UploadData:
        return {
            "id": self.id,
            "url": self.url,
            "filename": self.filename,
            "content_type": self.content_type,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat(),
        }


class SenderRole(models.TextChoices):
    BUYER = "buyer"
    AGENT = "agent"


class Message(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=ids.message_id, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="messages")
    sender_role = models.CharField(max_length=10, choices=SenderRole.choices)
    sender_id = models.CharField(max_length=64)
    content = models.TextField(max_length=NOTE_MAX)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["order", "id"], name="message_order_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(sender_role__in=SenderRole.values), name="message_sender_role_valid"),
            models.CheckConstraint(condition=~Q(content=""), name="message_content_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.sender_role}: {self.content[:40]}"

    def to_dict(self) -> shapes.MessageData:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "sender_role": self.sender_role,
            "sender_id": self.sender_id,
            "content": self.content,
            "created_at": self.created_at.isoformat(),
        }


class Review(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=ids.review_id, editable=False)
    # One review per order, held by the database (a race cannot write two).
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="review")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="reviews")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(max_length=REVIEW_COMMENT_MAX, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="review_rating_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ on {self.order_id}"

    def to_dict(self) -> shapes.ReviewData:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "agent_id": self.agent_id,
            "service_id": self.service_id,
            "rating": self.rating,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
        }


class Role(models.TextChoices):
    """Who someone is on an order: the table's actors (orders.core.transitions) and an event's actor kind."""

    BUYER = "buyer"
    AGENT = "agent"
    STAFF = "staff"
    SYSTEM = "system"


class OrderEvent(models.Model):
    """The audit trail: every transition and every side effect worth seeing."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.event_id, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=30)
    actor_kind = models.CharField(max_length=10, choices=Role.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["order", "id"], name="event_order_idx"),
            # The page's timeline and the poll's last non-message event, without walking back over
            # every message event (10,000 on a busy order): flat in the number of messages.
            models.Index(fields=["order", "id"], condition=~models.Q(action="message"), name="event_timeline_idx"),
            # A dispute and staff's decisions on it (orders.reads.resolution.DECIDING, tested equal): few rows, so
            # reading an order's resolution never walks its other events (10,000 on a busy order).
            models.Index(
                fields=["order", "id"],
                condition=models.Q(action="dispute")
                | models.Q(action__in=("release", "refund", "split", "send_back"), actor_kind="staff"),
                name="event_decision_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.from_status}->{self.to_status}"


class X402Intent(models.Model):
    """What an anonymous x402 caller asked for and was told to pay (the 402 answer), kept until it
    retries with the payment. Keyed by `reference`: the Solana memo the payment must carry, and the
    order's `payment_reference` once paid, whose unique constraint lets one intent make one order.
    The price is the one quoted in the 402, so a later change of the listing cannot change what is due."""

    reference = models.CharField(primary_key=True, max_length=32, editable=False)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    brief = models.TextField(max_length=BRIEF_MAX)
    reference_urls = models.JSONField(default=list, blank=True)
    price_usd = models.DecimalField(max_digits=9, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    # The payment must land on chain by then (x402 `maxTimeoutSeconds` after the 402).
    expires_at = models.DateTimeField()
    order = models.OneToOneField(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="x402_intent")

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="x402_intent_expiry_idx")]
        constraints = [models.CheckConstraint(condition=Q(price_usd__gt=0), name="x402_intent_price_positive")]

    def __str__(self) -> str:
        return f"x402 {self.reference} for {self.service_id}"


class StaffNotice(models.Model):
    """That staff were told (by email, orders.disputes.announce) of a dispute or of an order going
    overdue: one row per dispute (its event's time) and per due time passed, so each is told once."""

    class Kind(models.TextChoices):
        DISPUTE = "dispute"
        OVERDUE = "overdue"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="staff_notices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The dispute event's time, or the due time that passed: an order disputed again (after a send
    # back) or overdue again (after a revision request) is news again.
    at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "kind", "at"], name="staff_notice_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} at {self.at:%Y-%m-%d %H:%M}"
