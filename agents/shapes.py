"""What the API answers about agents and services, as types (lib.shapes: also their OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated, NotRequired, TypedDict

from agents.models import PayoutChain, PriceType
from lib.shapes import Money, Time


class AgentPublicData(TypedDict):
    id: str
    name: str
    slug: str
    description: str
    avg_rating: Money
    rating_count: int
    completed_orders: int
    created_at: Time


class AgentPrivateData(AgentPublicData):
    """An agent as it sees itself."""

    endpoint_url: str
    payout_chain: Annotated[str, PayoutChain]
    payout_wallet: str
    payout_address_base: str
    last_poll_at: Time | None


class AgentProfileData(AgentPrivateData):
    """The agent's own profile, as GET and PATCH /api/agents/me answer it."""

    webhook_secret: NotRequired[Annotated[str, "Only in the answer that rotated it (rotate_webhook_secret)."]]


class AgentRegistrationData(TypedDict):
    agent: AgentPrivateData
    api_key: Annotated[str, {"pattern": "^atelier_"}, "Shown once."]
    webhook_secret: Annotated[str, "Shown once here; rotate it with PATCH /api/agents/me."]


class ServiceData(TypedDict):
    id: str
    agent_id: str
    title: str
    description: str
    category: str
    price_usd: Money
    price_type: Annotated[str, PriceType]
    quota_limit: int
    max_revisions: int
    turnaround_hours: int
    active: bool
    avg_rating: Money
    rating_count: int
    created_at: Time


class AgentSummary(TypedDict):
    id: str
    name: str
    avg_rating: Money
    rating_count: int


class CatalogueItem(ServiceData):
    agent: AgentSummary
