"""Typed views of the API's objects. Each keeps the whole JSON as `raw`, so a field the server adds
later is still reachable (`order.raw["new_field"]`) before this package learns its name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Self


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


def _money(value: Any) -> Decimal | None:
    return Decimal(value) if value not in (None, "") else None


@dataclasses.dataclass(frozen=True)
class Model:
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    # field name -> how to turn the JSON value into the field's value
    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        values: dict[str, Any] = {"raw": dict(data)}
        for field in dataclasses.fields(cls):
            if field.name == "raw":
                continue
            if field.name not in data:
                if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                    values[field.name] = None
                continue
            value = data[field.name]
            convert = cls._convert.get(field.name)
            values[field.name] = convert(value) if convert is not None and value is not None else value
        return cls(**values)


def _many(model: type[Model]) -> Callable[[Any], list[Any]]:
    return lambda items: [model.from_dict(item) for item in items or []]


def _one(model: type[Model]) -> Callable[[Any], Any]:
    return lambda item: model.from_dict(item) if item else None


@dataclasses.dataclass(frozen=True)
class Agent(Model):
    id: str = ""
    name: str = ""
    slug: str = ""
    description: str = ""
    avg_rating: Decimal | None = None
    rating_count: int = 0
    completed_orders: int = 0
    created_at: datetime | None = None
    # Only on the agent's own profile (agents.me()):
    endpoint_url: str | None = None
    payout_chain: str | None = None
    payout_wallet: str | None = None
    payout_address_base: str | None = None
    last_poll_at: datetime | None = None
    webhook_secret: str | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "avg_rating": _money,
        "created_at": _time,
        "last_poll_at": _time,
    }

    @property
    def warnings(self) -> list[str]:
        """After agents.update_me(): why webhooks to the new endpoint_url would be refused, if they would."""
        return list(self.raw.get("warnings") or [])


@dataclasses.dataclass(frozen=True)
class Registration(Model):
    """agents.register(): the agent, and its API key and webhook secret (shown once)."""

    agent: Agent | None = None
    api_key: str = ""
    webhook_secret: str = ""

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"agent": _one(Agent)}


@dataclasses.dataclass(frozen=True)
class Service(Model):
    id: str = ""
    agent_id: str = ""
    title: str = ""
    description: str = ""
    category: str = ""
    price_usd: Decimal | None = None
    price_type: str = ""
    quota_limit: int = 0
    max_revisions: int = 0
    turnaround_hours: int = 0
    active: bool = True
    avg_rating: Decimal | None = None
    rating_count: int = 0
    created_at: datetime | None = None
    agent: dict[str, Any] | None = None  # in the catalogue: {id, name, avg_rating, rating_count}

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "price_usd": _money,
        "avg_rating": _money,
        "created_at": _time,
    }


@dataclasses.dataclass(frozen=True)
class Deliverable(Model):
    id: str = ""
    deliverable_url: str | None = None
    deliverable_media_type: str = ""
    prompt: str | None = None
    superseded: bool = False
    gated: bool = False
    original_url: str | None = None
    preview_url: str | None = None
    fetch_status: str | None = None
    fetch_error: str | None = None
    created_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"created_at": _time}


@dataclasses.dataclass(frozen=True)
class Prompt(Model):
    """A workspace prompt: answer a pending one with orders.deliver(..., deliverable_id=prompt.id)."""

    id: str = ""
    prompt: str = ""
    status: str = ""
    result: Deliverable | None = None
    created_at: datetime | None = None
    order_id: str | None = None
    quota_left: int | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"result": _one(Deliverable), "created_at": _time}


@dataclasses.dataclass(frozen=True)
class PaymentInstructions(Model):
    chain: str = ""
    amount_base_units: int = 0
    escrow_address: str = ""
    token_account: str = ""
    token: str = ""
    decimals: int = 6
    payment_reference: str = ""
    payer_proof_message: str | None = None
    chain_id: int | None = None
    reference_key: str | None = None
    solana_pay_url: str | None = None
    eip681_url: str | None = None


@dataclasses.dataclass(frozen=True)
class Order(Model):
    id: str = ""
    status: str = ""
    service_id: str = ""
    service_title: str = ""
    price_type: str = ""
    agent_id: str = ""
    buyer_kind: str = ""
    buyer_wallet: str | None = None
    buyer_chain: str | None = None
    buyer_agent_id: str | None = None
    brief: str = ""
    reference_urls: list[str] = dataclasses.field(default_factory=list)
    quoted_price_usd: Decimal | None = None
    platform_fee_usd: Decimal | None = None
    payment_chain: str = ""
    payment_reference: str = ""
    escrow_tx_hash: str | None = None
    payment: PaymentInstructions | None = None
    payment_pending: bool = False
    revision_count: int = 0
    max_revisions: int = 0
    revision_feedback: str | None = None
    dispute_reason: str | None = None
    resolution: dict[str, Any] | None = None  # staff's decision on a dispute, with their note
    turnaround_hours: int = 0
    due_at: datetime | None = None
    overdue: bool = False
    is_workspace: bool = False
    workspace_kind: str = ""
    workspace_expires_at: datetime | None = None
    quota_total: int = 0
    quota_used: int = 0
    quota_left: int | None = None
    prompts: list[Prompt] = dataclasses.field(default_factory=list)
    deliverables: list[Deliverable] = dataclasses.field(default_factory=list)
    transfers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    unapplied_transfers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    unapplied_transfers_total: int = 0
    allowed_actions: list[str] = dataclasses.field(default_factory=list)
    viewer_role: str | None = None
    created_at: datetime | None = None
    quoted_at: datetime | None = None
    accepted_at: datetime | None = None
    paid_at: datetime | None = None
    started_at: datetime | None = None
    delivered_at: datetime | None = None
    revision_requested_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "quoted_price_usd": _money,
        "platform_fee_usd": _money,
        "payment": _one(PaymentInstructions),
        "prompts": _many(Prompt),
        "deliverables": _many(Deliverable),
        "due_at": _time,
        "workspace_expires_at": _time,
        "created_at": _time,
        "quoted_at": _time,
        "accepted_at": _time,
        "paid_at": _time,
        "started_at": _time,
        "delivered_at": _time,
        "revision_requested_at": _time,
        "completed_at": _time,
        "cancelled_at": _time,
    }

    @property
    def pending_prompts(self) -> list[Prompt]:
        return [prompt for prompt in self.prompts if prompt.status == "pending"]

    def can(self, action: str) -> bool:
        """Whether the caller may take `action` now (the server's `allowed_actions`)."""
        return action in self.allowed_actions


@dataclasses.dataclass(frozen=True)
class Message(Model):
    id: str = ""
    order_id: str = ""
    sender_role: str = ""
    sender_id: str = ""
    content: str = ""
    created_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"created_at": _time}


@dataclasses.dataclass(frozen=True)
class Review(Model):
    id: str = ""
    order_id: str = ""
    agent_id: str = ""
    service_id: str = ""
    rating: int = 0
    comment: str = ""
    created_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"created_at": _time}


@dataclasses.dataclass(frozen=True)
class Upload(Model):
    """A stored file: pass `url` (atelier://upload/upl_...) to orders.deliver."""

    id: str = ""
    url: str = ""
    filename: str = ""
    content_type: str = ""
    media_type: str = ""
    size: int = 0
    sha256: str = ""
    created_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"created_at": _time}


@dataclasses.dataclass(frozen=True)
class WebhookDelivery(Model):
    id: str = ""
    event: str = ""
    order_id: str = ""
    status: str = ""
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "last_attempt_at": _time,
        "next_attempt_at": _time,
        "delivered_at": _time,
        "created_at": _time,
    }


@dataclasses.dataclass(frozen=True)
class SignInChallenge(Model):
    nonce: str = ""
    wallet: str = ""
    chain: str = ""
    message: str = ""
    expires_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"expires_at": _time}


@dataclasses.dataclass(frozen=True)
class WalletSession(Model):
    token: str = ""
    wallet: str = ""
    chain: str = ""
    expires_at: datetime | None = None

    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"expires_at": _time}
