"""The order API: thin views over `transitions`, `services` and `queries`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from agents.models import Agent, Service
from api.endpoints import AGENT, PARTY, PAYABLE, ApiRequest, Reply, caller, calling_agent, endpoint
from lib.errors import Forbidden, NotFound, ValidationFailed
from lib.principal import Principal
from lib.ratelimit import Rate
from lib.validation import Choice, Int, Invalid, ListOf, Money, Object, Str, Url, Variants
from lib.wallets import Chain
from orders import workspaces
from orders.checkout import claims, x402
from orders.core.transitions import order_open, role_of, transition
from orders.deliverables.uploads import UPLOAD_SCHEME, UPLOAD_URL
from orders.limits import (
    BRIEF_MAX,
    BRIEF_MIN,
    NOTE_MAX,
    PAYER_SIGNATURE_MAX,
    PROMPT_MAX,
    TX_HASH_MAX,
)
from orders.models import MediaType, Status
from orders.reads import prompts, queries, unread
from orders.web import lookup

HOUR = 3600
POLL_RATE = Rate("orders_poll", 30, HOUR)
POLL_STAMP_INTERVAL = timedelta(seconds=10)
CREATE_RATE = Rate("orders_create", 30, HOUR)
DELIVER_RATE = Rate("deliver", 30, HOUR)

PAGE = {
    "limit": Int(required=False, minimum=1, maximum=100, description="Page size, default 20."),
    "before": Str(required=False, max_length=40, description="Cursor: the `next_cursor` of the previous page."),
}
STATUS_FILTER = Str(required=False, max_length=200, description="Comma-separated statuses, e.g. paid,in_progress.")


def _statuses(raw: str | None) -> list[str]:
    if not raw:
        return []
    wanted = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in wanted if name not in Status.values]
    if unknown:
        raise ValidationFailed(
            f"Unknown status {unknown[0]!r}; use {', '.join(Status.values)}.", details={"status": "unknown status"}
        )
    return wanted


def _listing(request: ApiRequest, own: Agent | None = None) -> Reply:
    actor = caller(request)
    rows, cursor = queries.order_page(
        actor,
        statuses=_statuses(request.params.get("status")),
        limit=request.params.get("limit", 20),
        before=request.params.get("before"),
        own=own,
    )
    data = [queries.order_to_dict(order, role_of(order, actor)) for order in rows]
    return Reply(data, extra={"next_cursor": cursor})


@endpoint(
    "GET",
    summary="Poll an agent's orders (own id only), newest first",
    auth=AGENT,
    query={
        "status": STATUS_FILTER,
        **PAGE,
        "needs_reply": Choice(
            required=False,
            choices=["true", "false"],
            description="true: the answer's `needs_reply` lists the agent's orders, in any status, whose newest "
            f"message is the buyer's, as {{order_id, message_id}} (newest first, at most {unread.NEEDS_REPLY_MAX}).",
        ),
    },
    rate=POLL_RATE,
    response="AgentOrderList",
    tag="agents",
)
def agent_orders(request: ApiRequest, agent_id: str) -> Reply:
    agent = calling_agent(request)
    if agent.id != agent_id:
        if not Agent.objects.filter(pk=agent_id).exists():
            raise NotFound("No such agent.", code="agent_not_found")
        raise Forbidden("An agent can only list its own orders.", code="not_your_agent")
    reply = _listing(request, own=agent)
    if request.params.get("needs_reply") == "true":
        reply = replace(reply, extra={**reply.extra, "needs_reply": unread.awaiting_reply(agent.id)})
    # After the listing: a poll refused for a bad filter is not a poll.
    _stamp_poll(agent)
    return reply


def _stamp_poll(agent: Agent) -> None:
    """`last_poll_at` = now, at most every POLL_STAMP_SECONDS (an agent polling every second wrote
    the stamp every second; the profile shows when it was last seen, to the few seconds). On PostgreSQL without waiting for the commit's disk flush, which cost
    up to 4 ms a poll when the disk was busy (`make bench`, BENCHMARKS.md): a crash can
    lose only this stamp, and the next poll writes it again. `set_config(..., true)` lasts until
    the end of the statement's own transaction, so it covers this commit and nothing else (the
    poll writes nothing else), in the same single query as before."""
    now = timezone.now()
    if agent.last_poll_at is not None and now - agent.last_poll_at < POLL_STAMP_INTERVAL:
        return
    if connection.vendor != "postgresql":
        Agent.objects.filter(pk=agent.id).update(last_poll_at=now)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE "agents_agent" SET "last_poll_at" = %s'
            " WHERE \"id\" = %s AND set_config('synchronous_commit', 'off', true) IS NOT NULL",
            [now, agent.id],
        )


@endpoint(
    "GET",
    summary="List the caller's orders, newest first",
    auth=PARTY,
    query={"status": STATUS_FILTER, **PAGE},
    response="OrderList",
    tag="orders",
)
def order_list(request: ApiRequest) -> Reply:
    return _listing(request)


@endpoint(
    "POST",
    summary="Order a service (buyer wallet or agent key; without credentials, x402 for fixed-price services)",
    auth=PAYABLE,
    body={
        "service_id": Str(max_length=40),
        "brief": Str(min_length=BRIEF_MIN, max_length=BRIEF_MAX),
        "reference_urls": ListOf(required=False, item=Url(), max_items=5),
        "payment_chain": Choice(required=False, choices=Chain.values, description="Defaults to the wallet's chain."),
    },
    rate=CREATE_RATE,
    response="Order",
    status=201,
    tag="orders",
    errors=(402,),
)
def order_create(request: ApiRequest) -> Any:
    """Without credentials, x402: a fixed-price service answers 402 with its payment requirements,
    and the same request again with an X-PAYMENT header naming the transaction makes a paid order."""
    data = request.data
    service = (
        Service.objects.select_related("agent").filter(pk=data["service_id"], active=True, agent__active=True).first()
    )
    if service is None:
        raise NotFound("No such service, or it is no longer offered.", code="service_not_found")
    if request.principal is None:
        return _order_x402(request, service)
    if x402.payment_header(request.headers):
        raise ValidationFailed(
            "X-PAYMENT is for callers without credentials; a signed-in buyer pays with PATCH action=pay.",
            code="invalid_payment",
            details={"X-PAYMENT": "not with credentials"},
        )
    principal = caller(request)
    if principal.staff_user_id is not None and not principal.wallet and principal.agent is None:
        raise Forbidden("Staff cannot place orders.", code="wrong_role")
    if principal.agent is not None and principal.agent.id == service.agent_id:
        raise Forbidden("An agent cannot hire itself.", code="cannot_hire_self")
    default_chain = principal.chain or (principal.agent.payout_chain if principal.agent else Chain.SOLANA)
    order = order_open(
        service=service,
        actor=principal,
        brief=data["brief"],
        reference_urls=data.get("reference_urls", []),
        payment_chain=data.get("payment_chain", default_chain),
    )
    order, role = lookup.order_for(principal, order.id)
    return queries.order_to_dict(order, role)


def _order_x402(request: ApiRequest, service: Service) -> Reply:
    data = request.data
    brief, reference_urls = data["brief"], data.get("reference_urls", [])
    resource = settings.PUBLIC_URL.rstrip("/") + request.path
    header = x402.payment_header(request.headers)
    if header is None:
        x402.x402_quote(service=service, brief=brief, reference_urls=reference_urls, resource_url=resource)
    payment = x402.parse_payment(header)
    order, settlement = x402.x402_order(
        service=service, brief=brief, reference_urls=reference_urls, payment=payment, resource_url=resource
    )
    # The payer's wallet is the buyer: it can sign in (or sign requests) to follow the order.
    shown, role = lookup.order_for(Principal(wallet=order.buyer_wallet, chain=order.buyer_chain), order.id)
    return Reply(queries.order_to_dict(shown, role), status=201, headers=x402.settlement_headers(settlement))


@endpoint("GET", summary="Get an order", auth=PARTY, response="Order", tag="orders")
def order_detail(request: ApiRequest, order_id: str) -> Any:
    order, role = lookup.order_for(caller(request), order_id)
    return queries.order_to_dict(order, role)


# The buyer's (and the agent's `cancel`) actions on PATCH /api/orders/{id}, each with the fields it
# takes: enforced by the endpoint (lib.validation.Variants) and documented as one branch each.
ORDER_ACTIONS = Variants(
    "action",
    {
        "accept": {},
        "pay": {
            "escrow_tx_hash": Str(max_length=TX_HASH_MAX),
            "payment_chain": Choice(required=False, choices=Chain.values),
            "payer_signature": Str(
                required=False,
                max_length=PAYER_SIGNATURE_MAX,
                description="Base: the paying wallet's signature of `atelier:pay:<payment_reference>`: EIP-191 "
                "by its key, or a smart account's (EIP-1271, ERC-6492) with its address as `payer` (not needed "
                "when you signed in with that wallet).",
            ),
            "payer": Str(
                required=False,
                max_length=64,
                description="Base, with payer_signature: the paying account's address, for a smart account (its "
                "USDC Transfer log into escrow binds the payment, whoever sent the transaction).",
            ),
        },
        "approve": {},
        "revision": {"feedback": Str(max_length=NOTE_MAX)},
        "dispute": {
            "reason": Str(
                max_length=NOTE_MAX,
                description="Of a delivered order, or of an overdue one: see the order's due_at and overdue.",
            )
        },
        "cancel": {"reason": Str(required=False, max_length=NOTE_MAX)},
    },
)


@endpoint(
    "PATCH",
    summary="Act on an order: accept, pay (escrow_tx_hash), approve, revision (feedback), dispute (reason), cancel",
    auth=PARTY,
    body=ORDER_ACTIONS,
    response="Order",
    tag="orders",
)
def order_act(request: ApiRequest, order_id: str) -> Any:
    data = request.data
    action = data.pop("action")
    if action == "pay":
        return _pay(request, order_id, data)
    # Resolve the order first so a stranger gets 404 before anything else is said.
    lookup.order_for(caller(request), order_id, details=False)
    order = transition(order_id, action, caller(request), **data)
    return queries.shown(order, caller(request))


def _pay(request: ApiRequest, order_id: str, data: dict[str, Any]) -> Reply:
    """Verified on-chain before the order counts as paid; 202 while the transaction is not final."""
    actor = caller(request)
    current, _role = lookup.order_for(actor, order_id, details=False)
    claims.order_pay(
        order_id=order_id,
        actor=actor,
        tx_hash=data["escrow_tx_hash"],
        chain=data.get("payment_chain", current.payment_chain),
        payer_signature=data.get("payer_signature", ""),
        payer=data.get("payer", ""),
    )
    order, role = lookup.order_for(actor, order_id)
    status = 202 if order.status in (Status.QUOTED, Status.ACCEPTED) else 200
    return Reply(queries.order_to_dict(order, role), status=status)


@endpoint(
    "POST",
    summary="Quote a price for a quote-priced order",
    auth=AGENT,
    body={"price_usd": Money(description='A string, more than 0, at most 1,000,000: "45.00".')},
    response="Order",
    tag="orders",
)
def order_quote(request: ApiRequest, order_id: str) -> Any:
    order = transition(order_id, "quote", caller(request), price_usd=request.data["price_usd"])
    return queries.shown(order, caller(request))


@endpoint("POST", summary="Start work on a paid order", auth=AGENT, response="Order", tag="orders")
def order_start(request: ApiRequest, order_id: str) -> Any:
    order = transition(order_id, "start", caller(request))
    return queries.shown(order, caller(request))


class DeliverableUrl(Url):
    """An http(s) URL, or `atelier://upload/<id>` from POST /api/upload."""

    def clean(self, value: Any) -> str:
        if isinstance(value, str) and value.strip().startswith(UPLOAD_SCHEME):
            if not UPLOAD_URL.match(value.strip()):
                raise Invalid("must be atelier://upload/<id> as returned by POST /api/upload")
            return value.strip()
        return str(super().clean(value))

    def schema(self) -> dict[str, Any]:
        return self._described(
            {
                "type": "string",
                "format": "uri",
                "maxLength": self.max_length,
                "pattern": "^(https?://|atelier://upload/)",
            }
        )


DELIVERABLE = {
    "deliverable_url": DeliverableUrl(),
    "deliverable_media_type": Choice(choices=MediaType.values),
}


@endpoint(
    "POST",
    summary="Deliver: one deliverable_url + deliverable_media_type, or a deliverables array",
    auth=AGENT,
    body={
        "deliverable_url": DeliverableUrl(required=False),
        "deliverable_media_type": Choice(required=False, choices=MediaType.values),
        "deliverables": ListOf(required=False, item=Object(spec=DELIVERABLE), min_items=1, max_items=20),
        "deliverable_id": Str(
            required=False,
            max_length=40,
            description="Workspace orders: the prompt this answers (with deliverable_url and deliverable_media_type).",
        ),
    },
    rate=DELIVER_RATE,
    response="Order",
    tag="orders",
)
def order_deliver(request: ApiRequest, order_id: str) -> Any:
    data = request.data
    if "deliverable_id" in data:
        return _answer_prompt(request, order_id, data)
    single = "deliverable_url" in data or "deliverable_media_type" in data
    if single == ("deliverables" in data):
        raise ValidationFailed(
            "Send either deliverable_url with deliverable_media_type, or a deliverables array.",
            code="validation_error",
            details={"deliverables": "send one form"},
        )
    items = data.get("deliverables", [data])
    for field in DELIVERABLE:
        if any(field not in item for item in items):
            raise ValidationFailed(f"{field} is required.", details={field: "is required"})
    deliverables = [{"url": item["deliverable_url"], "media_type": item["deliverable_media_type"]} for item in items]
    order = transition(order_id, "deliver", caller(request), deliverables=deliverables)
    return queries.shown(order, caller(request))


def _answer_prompt(request: ApiRequest, order_id: str, data: dict[str, Any]) -> Any:
    """A workspace prompt's answer: one deliverable, filling the prompt's; the order stays where it is."""
    missing = [field for field in DELIVERABLE if field not in data]
    if "deliverables" in data or missing:
        field = "deliverables" if "deliverables" in data else missing[0]
        raise ValidationFailed(
            "With deliverable_id, send one deliverable_url and deliverable_media_type (the prompt's answer).",
            details={field: "send deliverable_url and deliverable_media_type with deliverable_id"},
        )
    lookup.order_for(caller(request), order_id, details=False)  # strangers: 404; a closed window: expire
    workspaces.prompt_answer(
        order_id=order_id,
        actor=caller(request),
        deliverable_id=data["deliverable_id"],
        url=data["deliverable_url"],
        media_type=data["deliverable_media_type"],
    )
    order, role = lookup.order_for(caller(request), order_id)
    return queries.order_to_dict(order, role)


@endpoint(
    "POST",
    summary="Send a prompt to an open workspace (buyer): one unit of quota, answered by the agent's deliver",
    auth=PARTY,
    body={"prompt": Str(min_length=1, max_length=PROMPT_MAX)},
    response="WorkspacePrompt",
    status=201,
    tag="orders",
)
def order_generate(request: ApiRequest, order_id: str) -> Any:
    actor = caller(request)
    lookup.order_for(actor, order_id, details=False)  # strangers: 404; a closed window: expire first
    deliverable, order = workspaces.prompt_create(order_id=order_id, actor=actor, prompt=request.data["prompt"])
    return prompts.prompt_created_to_dict(deliverable, order)
