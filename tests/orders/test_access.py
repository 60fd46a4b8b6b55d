"""orders.core.access: an order looked up for a caller, 404 for strangers exactly as for no order."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from lib.errors import NotFound
from orders.core.access import access_order
from orders.core.transitions import Role
from orders.models import Status
from tests.conftest import make_order


@pytest.mark.parametrize("lock", [False, True])
def test_each_party_gets_the_order_and_its_role(buyer: Any, agent: Any, lock: bool) -> None:
    order = make_order(buyer, agent, Status.QUOTED)
    with transaction.atomic():
        as_buyer, buyer_role = access_order(buyer.principal, order.id, lock=lock)
        as_agent, agent_role = access_order(agent.principal, order.id, lock=lock)
    assert (as_buyer.id, buyer_role) == (order.id, Role.BUYER)
    assert (as_agent.id, agent_role) == (order.id, Role.AGENT)
    assert as_buyer.service.id == order.service_id  # joined, for the caller's next step


@pytest.mark.parametrize("lock", [False, True])
def test_a_stranger_and_a_missing_order_get_the_same_404(buyer: Any, other_buyer: Any, agent: Any, lock: bool) -> None:
    order = make_order(buyer, agent, Status.QUOTED)
    refusals = []
    for actor, order_id in ((other_buyer.principal, order.id), (buyer.principal, "ord_missing")):
        with transaction.atomic(), pytest.raises(NotFound) as caught:
            access_order(actor, order_id, lock=lock)
        refusals.append((caught.value.status, caught.value.code, caught.value.message))
    assert refusals == [(404, "order_not_found", "No such order.")] * 2
