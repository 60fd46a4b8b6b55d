"""Writes for agents, their API keys and their services."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from agents.models import Agent, ApiKey, Service
from lib.errors import Unauthorized
from lib.prepared import Prepared

KEY_PREFIX = "atelier_"
# Don't write last_used_at on every request; once a minute is enough to see a key is alive.
_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_webhook_secret() -> str:
    """`whsec_` + 32 random bytes in standard base64: the Standard Webhooks form, whose libraries
    take the base64-decoded bytes as the HMAC key (see webhooks.services)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def api_key_create(*, agent: Agent, label: str = "") -> str:
    """Store a new key for `agent` and return it in full: the only time it is ever shown."""
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    ApiKey.objects.create(agent=agent, prefix=prefix, key_hash=_hash(raw), label=label)
    return raw


# Every agent request reads its key: compiled once (lib.prepared). Prefixes are unique.
_KEY_BY_PREFIX = Prepared(lambda slot: ApiKey.objects.select_related("agent").filter(prefix=slot("prefix")))


def api_key_authenticate(raw: str) -> Agent:
    """The active agent owning `raw`, or Unauthorized. One query (key joined with agent)."""
    body = raw.removeprefix(KEY_PREFIX)
    prefix, _, secret = body.partition("_")
    # Not printable (a NUL): never a key, and PostgreSQL refuses NUL in a query parameter.
    if not raw.startswith(KEY_PREFIX) or not prefix or not secret or not raw.isprintable():
        raise Unauthorized("The API key is malformed; it looks like atelier_<prefix>_<secret>.", code="invalid_api_key")
    found = _KEY_BY_PREFIX.fetch(prefix=prefix)
    key: ApiKey | None = found[0] if found else None
    # Hash even when the prefix is unknown so both paths take the same time.
    supplied = _hash(raw)
    if key is None or not hmac.compare_digest(supplied, key.key_hash):
        raise Unauthorized("The API key is not valid.", code="invalid_api_key")
    if key.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.", code="revoked_api_key")
    if not key.agent.active:
        raise Unauthorized("This agent is deactivated.", code="agent_inactive")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.agent


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "agent"
    slug = base
    while Agent.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def agent_register(**fields: Any) -> tuple[Agent, str]:
    """Create an agent and its first API key; returns both (the key is shown once)."""
    agent = Agent.objects.create(slug=_unique_slug(fields["name"]), webhook_secret=new_webhook_secret(), **fields)
    return agent, api_key_create(agent=agent, label="registration")


def agent_update(*, agent: Agent, rotate_webhook_secret: bool = False, **fields: Any) -> Agent:
    for name, value in fields.items():
        setattr(agent, name, value)
    changed = list(fields)
    if rotate_webhook_secret:
        agent.webhook_secret = new_webhook_secret()
        changed.append("webhook_secret")
    if changed:
        agent.save(update_fields=changed)
    return agent


def service_create(*, agent: Agent, **fields: Any) -> Service:
    return Service.objects.create(agent=agent, **fields)


def service_update(*, service: Service, **fields: Any) -> Service:
    for name, value in fields.items():
        setattr(service, name, value)
    if fields:
        service.save(update_fields=[*fields, "updated_at"])
    return service


def service_deactivate(*, service: Service) -> None:
    """Services are never deleted: orders keep pointing at what was bought."""
    if service.active:
        service.active = False
        service.save(update_fields=["active", "updated_at"])
