"""Personas and factories. Buyers sign in with real wallet keys (solders ed25519, eth-account
EIP-191); agents hold real API keys; orders reach their statuses through `transition()`."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from solders.keypair import Keypair

from agents.models import Agent, Service
from agents.services import agent_register, service_create
from identity.wallet_signin import signin_challenge_create, signin_complete
from lib.principal import SYSTEM, Principal
from orders.core.transitions import order_open, transition
from orders.models import Order, Status
from payments.models import Payment

# The bad-input tests' `world` fixture (tests/bad_input_support.py), for tests/lib, orders, agents, payments.
pytest_plugins = ["tests.bad_input_support"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db: None) -> None:
    cache.clear()


@pytest.fixture(autouse=True)
def _no_local_devchain_state(settings: Any, tmp_path: Any) -> None:
    """Tests never read the developer's `make run` keys; payment tests point at their own devchains."""
    settings.DEVCHAIN_STATE = tmp_path / "devchain.json"
    # Deliverable files and uploads (orders.deliverables.previews, orders.deliverables.uploads) go to the test's folder, never DATA_DIR/private.
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(tmp_path / "private")}},
    }


def with_body(response: Any) -> Any:
    """The test client's response with its JSON decoded as `.body` (None when it is not JSON), the attribute
    the tests read: a dynamic one, so the response is Any from here on."""
    response.body = response.json() if response["Content-Type"].startswith("application/json") else None
    return response


@dataclass
class Api:
    """A JSON client that speaks as one party."""

    client: Client
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        payload = body if isinstance(body, (str, bytes)) else json.dumps(body) if body is not None else ""
        return with_body(
            self.client.generic(
                method, path, payload, content_type="application/json", headers={**self.headers, **headers}
            )
        )

    def get(self, path: str, **headers: str) -> Any:
        return self.call("GET", path, **headers)

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.call("POST", path, body, **headers)

    def patch(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.call("PATCH", path, body, **headers)

    def delete(self, path: str, **headers: str) -> Any:
        return self.call("DELETE", path, **headers)


@dataclass
class WalletBuyer:
    chain: str
    wallet: str
    secret: Any  # solders Keypair or eth-account LocalAccount
    api: Api

    @property
    def principal(self) -> Principal:
        return Principal(wallet=self.wallet, chain=self.chain)

    def sign(self, message: str) -> str:
        if self.chain == "solana":
            return str(self.secret.sign_message(message.encode()))
        return "0x" + Account.sign_message(encode_defunct(text=message), self.secret.key).signature.hex()

    def request_headers(self, method: str, path: str, body: bytes = b"", *, ts: int | None = None) -> dict[str, str]:
        """The v2 per-request signature of one request: its four headers."""
        ts = time.time_ns() // 1_000_000 if ts is None else ts
        message = f"atelier-v2:{self.wallet}:{ts}:{method}:{path}:{hashlib.sha256(body).hexdigest()}"
        return {
            "X-Atelier-Wallet": self.wallet,
            "X-Atelier-Wallet-Signature": self.sign(message),
            "X-Atelier-Wallet-Timestamp": str(ts),
            "X-Atelier-Wallet-Signature-Version": "2",
        }


@dataclass
class AgentPersona:
    agent: Agent
    key: str
    api: Api

    @property
    def principal(self) -> Principal:
        return Principal(agent=self.agent)

    @property
    def id(self) -> str:
        return self.agent.id


def make_buyer(chain: str = "solana") -> WalletBuyer:
    if chain == "solana":
        keypair = Keypair()
        secret: Any = keypair
        wallet = str(keypair.pubkey())
    else:
        secret = Account.create()
        wallet = secret.address
    buyer = WalletBuyer(chain, wallet, secret, Api(Client()))
    challenge = signin_challenge_create(chain=chain, wallet=wallet)
    _session, token = signin_complete(nonce=challenge.nonce, signature=buyer.sign(challenge.message))
    buyer.api.headers["Authorization"] = f"Bearer {token}"
    return buyer


def make_agent(name: str = "Pixel Forge") -> AgentPersona:
    agent, key = agent_register(name=name, description="Makes things.", payout_chain="solana")
    return AgentPersona(agent, key, Api(Client(), {"Authorization": f"Bearer {key}"}))


@pytest.fixture
def buyer(db: None) -> WalletBuyer:
    return make_buyer("solana")


@pytest.fixture
def base_buyer(db: None) -> WalletBuyer:
    return make_buyer("base")


@pytest.fixture
def other_buyer(db: None) -> WalletBuyer:
    return make_buyer("solana")


@pytest.fixture
def agent(db: None) -> AgentPersona:
    return make_agent("Pixel Forge")


@pytest.fixture
def other_agent(db: None) -> AgentPersona:
    return make_agent("Codewright")


@pytest.fixture
def staff(db: None, django_user_model: Any) -> Principal:
    user = django_user_model.objects.create_user("staff", password="correct horse battery", is_staff=True)
    return Principal(staff_user_id=user.pk)


@pytest.fixture
def anonymous(db: None) -> Api:
    return Api(Client())


def make_service(agent: Agent, price_type: str = "fixed", price: str = "25.00", **fields: Any) -> Service:
    return service_create(
        agent=agent,
        title=fields.pop("title", "Logo in three styles"),
        description=fields.pop("description", "Three logo directions for your brand, each as a large transparent PNG."),
        category=fields.pop("category", "design"),
        price_usd=Decimal(price),
        price_type=price_type,
        **fields,
    )


def make_payment(order: Order, *, tx_hash: str | None = None) -> Payment:
    """A payment record as the payments app writes it after verifying a transfer on-chain."""
    # At least one base unit (the amount must be positive, and an unquoted order has no price yet);
    # a fresh hash per payment of the same order (a transaction pays once, ever).
    amount = max(int((order.quoted_price_usd or Decimal(0)) * 10**6), 1)
    earlier = order.payments.count()
    return Payment.objects.create(
        order=order,
        chain=order.payment_chain,
        tx_hash=tx_hash or (f"tx{order.id}_{earlier}" if earlier else f"tx{order.id}"),
        payer=order.buyer_wallet or "agent",
        amount_base_units=amount,
        verified_at=timezone.now(),
    )


# The shortest path from creation to each status, as (action, role) steps.
PATHS: dict[str, list[tuple[str, str]]] = {
    Status.PENDING_QUOTE: [],
    Status.QUOTED: [("quote", "agent")],
    Status.ACCEPTED: [("quote", "agent"), ("accept", "buyer")],
    Status.PAID: [("quote", "agent"), ("accept", "buyer"), ("pay", "buyer")],
    Status.IN_PROGRESS: [("quote", "agent"), ("accept", "buyer"), ("pay", "buyer"), ("start", "agent")],
    Status.DELIVERED: [("quote", "agent"), ("accept", "buyer"), ("pay", "buyer"), ("deliver", "agent")],
    Status.COMPLETED: [
        ("quote", "agent"),
        ("accept", "buyer"),
        ("pay", "buyer"),
        ("deliver", "agent"),
        ("approve", "buyer"),
    ],
    Status.REVISION_REQUESTED: [
        ("quote", "agent"),
        ("accept", "buyer"),
        ("pay", "buyer"),
        ("deliver", "agent"),
        ("revision", "buyer"),
    ],
    Status.DISPUTED: [
        ("quote", "agent"),
        ("accept", "buyer"),
        ("pay", "buyer"),
        ("deliver", "agent"),
        ("dispute", "buyer"),
    ],
    Status.CANCELLED: [("cancel", "buyer")],
}

SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "quote": {"price_usd": Decimal("45.00")},
    "deliver": {"deliverables": [{"url": "https://cdn.example.com/result.png", "media_type": "image"}]},
    "revision": {"feedback": "Make the background darker."},
    "dispute": {"reason": "The delivery ignores the brief."},
    "split": {"agent_amount_usd": "20.00", "note": "Half the work was usable."},
    "release": {"note": "Delivery matches the brief."},
    "refund": {"note": "Nothing usable was delivered."},
    "send_back": {"note": "One more pass on the colours."},
}


def sample_data(action: str, order: Order) -> dict[str, Any]:
    if action == "pay":
        return {"payment": make_payment(order)}
    return dict(SAMPLE_DATA.get(action, {}))


# Steps a path skips when a follow-up already took the order there (`Rule.follows` in orders.core.table).
SKIPPED_STEPS = {("start", Status.IN_PROGRESS), ("approve", Status.COMPLETED)}


def make_order(
    buyer: WalletBuyer | AgentPersona,
    agent: AgentPersona,
    status: str = Status.PENDING_QUOTE,
    *,
    service: Service | None = None,
) -> Order:
    """An order of a quote-priced service, walked to `status` through the real transitions.

    A workspace order opens when paid (no `start`) and is delivered by the system's `expire`; an
    agent buyer's order is released on delivery (no `approve`), so it never rests in `delivered`."""
    service = service or make_service(agent.agent, price_type="quote", price="0.00")
    order = order_open(
        service=service,
        actor=buyer.principal,
        brief="Draw a fox in a lab coat, flat colours.",
        reference_urls=[],
        payment_chain=getattr(buyer, "chain", "solana"),
    )
    for action, role in PATHS[status]:
        if (service.auto_quoted and action == "quote") or (action, order.status) in SKIPPED_STEPS:
            continue
        actor = agent.principal if role == "agent" else buyer.principal
        if service.is_workspace and action == "deliver":
            action, actor = "expire", SYSTEM
        order = transition(order.id, action, actor, **sample_data(action, order))
    order.refresh_from_db()
    assert order.status == status
    return order
