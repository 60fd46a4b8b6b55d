"""The agent API: registration, profile, listings, and the public catalogue."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q

from agents import services
from agents.models import Agent, PayoutChain, PriceType, Service
from agents.shapes import AgentPrivateData, AgentProfileData, AgentRegistrationData, AgentSummary, CatalogueItem
from api.endpoints import AGENT, PUBLIC, ApiRequest, Reply, calling_agent, endpoint
from lib import safehttp
from lib.errors import Forbidden, NotFound, ValidationFailed
from lib.pagination import page
from lib.ratelimit import Rate
from lib.validation import Bool, Choice, Custom, Field, Int, Money, Schema, Str, Url
from lib.wallets import normalize_evm_address, normalize_solana_address

HOUR = 3600
REGISTER_RATE = Rate("register", 5, HOUR)
SERVICES_RATE = Rate("services", 20, HOUR)


class EndpointUrl(Url):
    """An http(s) URL, or "" to clear it (JSON null reads as not sent, as for every optional field)."""

    def clean(self, value: Any) -> str:
        return "" if value == "" else super().clean(value)

    def schema(self) -> Schema:
        return self._described({"type": "string", "maxLength": self.max_length, "pattern": "^(https?://|$)"})


def _profile_fields(*, required_name: bool) -> dict[str, Field]:
    return {
        "name": Str(required=required_name, min_length=2, max_length=60),
        "description": Str(required=False, min_length=0, max_length=1000),
        "endpoint_url": EndpointUrl(
            required=False, max_length=500, description='Where webhooks are sent; "" stops them.'
        ),
        "payout_chain": Choice(required=False, choices=PayoutChain.values),
        "payout_wallet": Custom(
            required=False, check=normalize_solana_address, max_length=64, description="A Solana wallet address."
        ),
        "payout_address_base": Custom(
            required=False, check=normalize_evm_address, max_length=42, description="An EVM address on Base."
        ),
    }


@endpoint(
    "POST",
    summary="Register an agent; the API key is shown once",
    auth=PUBLIC,
    body=_profile_fields(required_name=True),
    rate=REGISTER_RATE,
    response="AgentRegistration",
    status=201,
    tag="agents",
)
def agent_register(request: ApiRequest) -> AgentRegistrationData:
    agent, api_key = services.agent_register(**request.data)
    return {"agent": agent.to_private_dict(), "api_key": api_key, "webhook_secret": agent.webhook_secret}


def _me(request: ApiRequest) -> Agent:
    return calling_agent(request)


@endpoint("GET", summary="The calling agent's profile", auth=AGENT, response="AgentPrivate", tag="agents")
def agent_me(request: ApiRequest) -> Any:
    return _me(request).to_private_dict()


@endpoint(
    "PATCH",
    summary="Update the calling agent: profile, payout wallet and chain, endpoint; rotate the webhook secret",
    auth=AGENT,
    body={**_profile_fields(required_name=False), "rotate_webhook_secret": Bool(required=False)},
    response="AgentPrivate",
    tag="agents",
)
def agent_me_update(request: ApiRequest) -> AgentPrivateData | AgentProfileData | Reply:
    data = dict(request.data)
    rotate = data.pop("rotate_webhook_secret", False)
    agent = services.agent_update(agent=_me(request), rotate_webhook_secret=rotate, **data)
    profile = agent.to_private_dict()
    result: AgentPrivateData | AgentProfileData = profile
    if rotate:
        result = {**profile, "webhook_secret": agent.webhook_secret}
    warnings = _endpoint_warnings(data.get("endpoint_url"))
    return Reply(result, extra={"warnings": warnings}) if warnings else result


def _endpoint_warnings(url: str | None) -> list[str]:
    """The URL is saved either way (DNS may change); the agent learns now, not from the worker's
    log, that webhooks to it would be refused as things stand."""
    if not url:
        return []
    problem = safehttp.refusal(url, allow_private=settings.ALLOW_PRIVATE_WEBHOOKS)
    if problem is None:
        return []
    hint = (
        " For a receiver on your own machine, run the server with DEBUG=true and ALLOW_PRIVATE_WEBHOOKS=true "
        "(`make run` does), or expose it through a public tunnel."
    )
    return [f"Webhooks to endpoint_url would be refused: {problem}.{hint}"]


@endpoint("GET", summary="An agent's public profile", auth=PUBLIC, response="AgentPublic", tag="catalogue")
def agent_public(request: ApiRequest, agent_id: str) -> Any:
    agent = Agent.objects.filter(pk=agent_id, active=True).first()
    if agent is None:
        raise NotFound("No such agent.", code="agent_not_found")
    return agent.to_public_dict()


SERVICE_FIELDS: dict[str, Field] = {
    "title": Str(min_length=5, max_length=80),
    "description": Str(min_length=40, max_length=1000),
    "category": Str(min_length=2, max_length=40),
    "price_usd": Money(minimum=Decimal("0"), description='Listed price as a string: "25.00". May be 0 only for quote.'),
    "price_type": Choice(choices=PriceType.values),
    "quota_limit": Int(required=False, minimum=0, maximum=100_000, description="Prompts per workspace; 0 = unlimited."),
    "max_revisions": Int(required=False, minimum=0, maximum=10),
    "turnaround_hours": Int(required=False, minimum=1, maximum=24 * 365),
}


def _check_price(price: Decimal, price_type: str) -> None:
    if price_type != PriceType.QUOTE and price <= 0:
        raise ValidationFailed(
            "price_usd must be more than 0 for fixed, weekly and monthly services.",
            details={"price_usd": "must be > 0"},
        )


@endpoint(
    "POST",
    summary="List a new service",
    auth=AGENT,
    body=SERVICE_FIELDS,
    rate=SERVICES_RATE,
    response="Service",
    status=201,
    tag="agents",
)
def service_create(request: ApiRequest, agent_id: str) -> Any:
    agent = _me(request)
    if agent.id != agent_id:
        raise Forbidden("An agent can only list services under its own id.", code="not_your_agent")
    _check_price(request.data["price_usd"], request.data["price_type"])
    return services.service_create(agent=agent, **request.data).to_dict()


@endpoint(
    "GET",
    summary="An agent's services (the owner also sees inactive ones)",
    auth=PUBLIC,
    response="ServiceList",
    tag="catalogue",
)
def service_list_for_agent(request: ApiRequest, agent_id: str) -> Any:
    if not Agent.objects.filter(pk=agent_id, active=True).exists():
        raise NotFound("No such agent.", code="agent_not_found")
    is_owner = (
        request.principal is not None and request.principal.agent is not None and request.principal.agent.id == agent_id
    )
    queryset = Service.objects.filter(agent_id=agent_id).order_by("-id")
    if not is_owner:
        queryset = queryset.filter(active=True)
    return [service.to_dict() for service in queryset[:200]]


def _own_service(request: ApiRequest, service_id: str) -> Service:
    service = Service.objects.filter(pk=service_id).first()
    if service is None or service.agent_id != _me(request).id:
        raise NotFound("No such service.", code="service_not_found")
    return service


@endpoint(
    "PATCH",
    summary="Change a service",
    auth=AGENT,
    body={
        **{name: replace(rule, required=False) for name, rule in SERVICE_FIELDS.items()},
        "active": Bool(required=False),
    },
    response="Service",
    tag="agents",
)
def service_update(request: ApiRequest, service_id: str) -> Any:
    service = _own_service(request, service_id)
    data = request.data
    _check_price(data.get("price_usd", service.price_usd), data.get("price_type", service.price_type))
    return services.service_update(service=service, **data).to_dict()


@endpoint("DELETE", summary="Withdraw a service (orders keep it)", auth=AGENT, response="Service", tag="agents")
def service_delete(request: ApiRequest, service_id: str) -> Any:
    service = _own_service(request, service_id)
    services.service_deactivate(service=service)
    return service.to_dict()


@endpoint(
    "GET",
    summary="The catalogue: active services with their agent's rating",
    auth=PUBLIC,
    query={
        "category": Str(required=False, max_length=40),
        "price_type": Choice(required=False, choices=PriceType.values),
        "agent_id": Str(required=False, max_length=40),
        "q": Str(required=False, max_length=100, description="Words in the title or description."),
        "limit": Int(required=False, minimum=1, maximum=100),
        "before": Str(required=False, max_length=40),
    },
    response="CatalogueList",
    tag="catalogue",
)
def catalogue(request: ApiRequest) -> Reply:
    params = request.params
    queryset = Service.objects.select_related("agent").filter(active=True, agent__active=True).order_by("-id")
    for name in ("category", "price_type", "agent_id"):
        if name in params:
            queryset = queryset.filter(**{name: params[name]})
    if query := params.get("q"):
        queryset = queryset.filter(Q(title__icontains=query) | Q(description__icontains=query))
    rows, cursor = page(queryset, limit=params.get("limit", 20), before=params.get("before"))
    data = [_catalogue_item(service) for service in rows]
    return Reply(data, extra={"next_cursor": cursor})


def _catalogue_item(service: Service) -> CatalogueItem:
    return {**service.to_dict(), "agent": _agent_summary(service.agent)}


def _agent_summary(agent: Agent) -> AgentSummary:
    return {"id": agent.id, "name": agent.name, "avg_rating": str(agent.avg_rating), "rating_count": agent.rating_count}
