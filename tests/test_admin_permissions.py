"""A staff member who may only look can change nothing in admin (DESIGN.md section 8).

Every action of every registered ModelAdmin declares the permission it needs; then each action is
run, as a view-only staff user (every view_* permission, nothing else), on every row of its model,
and every table (the task queue included) is compared before and after. The same user's POSTs to
add, change and delete pages, and to a dispute's resolve page, change nothing either.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.auth.models import Group, Permission
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.core.services import message_post, review_create
from orders.core.transitions import Role
from orders.models import Status
from payments.models import Payment, PaymentStatus, Reconciliation, UnappliedReason
from tests.conftest import make_order

# Ours; django-axes' lockout admin (axes.*) is a kept library's, with its own permissions.
OUR_APPS = {"atelier", "agents", "orders", "payments", "webhooks", "idempotency", "auth"}


def registered() -> list[tuple[type[Model], admin.ModelAdmin[Any]]]:
    ours = [item for item in admin.site._registry.items() if item[0]._meta.app_label in OUR_APPS]
    return sorted(ours, key=lambda item: item[0]._meta.label)


def actions_of(model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, Any]]:
    """Every action the ModelAdmin offers anyone: the site's (delete_selected) and its own."""
    found: list[tuple[str, Any]] = []
    if model_admin.actions is None:
        return found
    site_actions: list[tuple[str, Any]] = list(admin.site.actions)
    for action in [*site_actions, *model_admin.actions]:
        func = action[1] if isinstance(action, tuple) else action
        if isinstance(func, str):
            name, func = func, getattr(type(model_admin), func)
        else:
            name = func.__name__
        found.append((name, func))
    return found


ALL_ACTIONS = [
    pytest.param(model, name, func, id=f"{model._meta.label}.{name}")
    for model, model_admin in registered()
    for name, func in actions_of(model_admin)
]


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table that has a model (django_tasks_db's queue included)."""
    return {
        model._meta.label: sorted(
            (dict(row) for row in model._base_manager.values()), key=lambda row: str(row.get("id", row))
        )
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def world(buyer: Any, agent: Any) -> None:
    """A row for every admin to act on: orders in every resting state, a dispute, a payout that
    failed, an unapplied transfer, webhook deliveries, API keys, a reconciliation."""
    agent.agent.endpoint_url = "https://hooks.example.com/atelier"
    agent.agent.save(update_fields=["endpoint_url"])
    orders = {
        status: make_order(buyer, agent, status)
        for status in (Status.COMPLETED, Status.DISPUTED, Status.DELIVERED, Status.CANCELLED)
    }
    completed = orders[Status.COMPLETED]
    message_post(order=completed, role=Role.BUYER, actor=buyer.principal, content="Thanks, lovely work.")
    review_create(order=completed, role=Role.BUYER, actor=buyer.principal, rating=5, comment="Great.")
    created = buyer.api.post(
        "/api/orders",
        {"service_id": completed.service_id, "brief": "Another fox, this time in a spacesuit."},
        **{"Idempotency-Key": "walk-1"},
    )
    assert created.status_code == 201, created.body
    Group.objects.create(name="support")
    order = make_order(buyer, agent, Status.QUOTED)
    Payment.objects.create(
        order=order,
        chain="solana",
        tx_hash="tx-unapplied-dust",
        status=PaymentStatus.UNAPPLIED,
        reason=UnappliedReason.UNDERPAID,
        payer=buyer.wallet,
        amount_base_units=5_000,  # dust: not returned by itself, only by the return action
        due_base_units=45_000_000,
        verified_at=timezone.now(),
    )
    Reconciliation.objects.create(chain="solana", on_chain=1, ledger=1, unexplained=0)


def test_every_action_declares_its_permission() -> None:
    undeclared = [
        f"{model._meta.label}.{name}"
        for model, model_admin in registered()
        for name, func in actions_of(model_admin)
        if not getattr(func, "allowed_permissions", None)
    ]
    assert undeclared == []


@pytest.mark.parametrize(("model", "name", "func"), ALL_ACTIONS)
def test_a_view_only_user_changes_nothing_by_any_action(
    model: type[Model], name: str, func: Any, viewer: Any, world: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    client.force_login(viewer)
    changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    rows = [str(pk) for pk in model._base_manager.values_list("pk", flat=True)]
    assert rows, f"no {model._meta.label} rows to act on"
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist,
            {"action": name, "_selected_action": rows, "index": 0, "post": "yes", "select_across": 0},
        )
        confirmed = client.post(  # delete_selected's confirmation page posts again with post=yes
            changelist, {"action": name, "_selected_action": rows, "post": "yes"}
        )

    assert response.status_code in (200, 302, 403)
    assert confirmed.status_code in (200, 302, 403)
    assert snapshot() == before


@pytest.mark.parametrize(("model", "model_admin"), registered(), ids=lambda value: getattr(value, "__name__", ""))
def test_a_view_only_user_changes_nothing_through_the_forms(
    model: type[Model], model_admin: Any, viewer: Any, world: None
) -> None:
    client = Client()
    client.force_login(viewer)
    info = (model._meta.app_label, model._meta.model_name)
    obj = model._base_manager.first()
    assert obj is not None
    before = snapshot()

    client.post(reverse("admin:{}_{}_add".format(*info)), {IS_POPUP_VAR: "0"})
    client.post(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]), {"_save": "Save"})
    client.post(reverse("admin:{}_{}_delete".format(*info), args=[obj.pk]), {"post": "yes"})

    assert snapshot() == before


def test_a_view_only_user_cannot_open_or_post_the_resolve_page(viewer: Any, world: None) -> None:
    client = Client()
    client.force_login(viewer)
    order_id = Payment.objects.filter(order__status=Status.DISPUTED).values_list("order_id", flat=True).first()
    url = reverse("admin:orders_dispute_resolve", args=[order_id])
    before = snapshot()

    assert client.get(url).status_code == 403
    assert client.post(url, {"decision": "release", "note": "Looks fine."}).status_code == 403
    # The dispute opens read-only for them, with no decision buttons.
    page = client.get(reverse("admin:orders_dispute_change", args=[order_id]))
    assert page.status_code == 200
    assert b"Release to the agent" not in page.content

    assert snapshot() == before
