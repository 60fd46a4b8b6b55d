"""Staff are told of disputes (issue 23): a new dispute and an order newly overdue are announced by
email to the staff holding `resolve_dispute`; a burst is one email; each is told once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import call_command
from django.db.models import F
from django.test import Client

from lib.principal import Principal
from orders.core.transitions import transition
from orders.disputes.announce import announce_to_staff
from orders.models import Order, Status
from tests.conftest import make_buyer, make_order


@pytest.fixture
def resolvers(django_user_model: Any) -> list[Any]:
    resolve = Permission.objects.get(codename="resolve_dispute")
    dana = django_user_model.objects.create_user("dana", "dana@example.com", "pw-dana-123", is_staff=True)
    dana.user_permissions.add(resolve)
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    # Staff who only look, and people who are not staff, are not told.
    viewer = django_user_model.objects.create_user("vic", "vic@example.com", "pw-vic-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dispute"))
    outsider = django_user_model.objects.create_user("olga", "olga@example.com", "pw-olga-123")
    outsider.user_permissions.add(resolve)
    return [dana, root]


def test_a_burst_of_disputes_is_one_email_to_the_staff_who_resolve(
    resolvers: list[Any], agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    disputed = [make_order(make_buyer(), agent, Status.DISPUTED) for _ in range(4)]
    late = make_order(make_buyer(), agent, Status.IN_PROGRESS)
    Order.objects.filter(pk=late.pk).update(paid_at=F("paid_at") - timedelta(hours=late.turnaround_hours + 1))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("scheduler", once=True, job=["announce_to_staff"])

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert sorted(email.to) == ["dana@example.com", "root@example.com"]
    assert email.subject == "Atelier: 4 new disputes and 1 order overdue"
    for order in disputed:
        assert f"/admin/orders/dispute/{order.id}/resolve/" in email.body
    assert "Overdue since" in email.body
    assert late.id in email.body

    # Told once: the next round has nothing new, and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_to_staff() == 0
    assert len(mail.outbox) == 1


def test_a_dispute_after_the_email_is_news_again(
    resolvers: list[Any], buyer: Any, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = make_order(buyer, agent, Status.DISPUTED)
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_to_staff() == 1
    transition(order.id, "send_back", Principal(staff_user_id=resolvers[0].pk), note="Try again.")
    transition(
        order.id, "deliver", agent.principal, deliverables=[{"url": "https://x.example/b", "media_type": "link"}]
    )
    transition(order.id, "dispute", buyer.principal, reason="Still wrong.")
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_to_staff() == 1
    assert len(mail.outbox) == 2
    assert "Still wrong." in mail.outbox[1].body


def test_the_admin_index_counts_the_disputes_waiting(resolvers: list[Any], agent: Any) -> None:
    for _ in range(2):
        make_order(make_buyer(), agent, Status.DISPUTED)
    client = Client()
    client.force_login(resolvers[0])
    page = client.get("/admin/").content.decode()
    assert "<strong>2</strong> disputes waiting for a decision" in page
    assert "Atelier staff" in page
    assert "Django administration" not in page
