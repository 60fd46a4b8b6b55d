"""The order state machine (DESIGN.md section 3): every (action, status, role) cell, repeats,
strangers, the revision limit, side effects after commit, concurrent approvals on PostgreSQL,
and the API's refusal envelope.

The expected table below is written by hand from DESIGN.md, not read from `TABLE`, so that a wrong
row in `TABLE` fails these tests; one test also checks the two agree.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import F

from lib.errors import Conflict, Forbidden, NotFound
from lib.principal import SYSTEM, Principal
from orders.core import events
from orders.core.transitions import ACTIONS, TABLE, allowed_actions, check, role_of, transition
from orders.models import Deliverable, Order, OrderEvent, Status
from tests.conftest import PATHS, make_order, make_payment, make_service, sample_data

S = Status
ROLES = ("buyer", "agent", "staff", "system")

# DESIGN.md section 3, by hand: (action, actor) -> (from statuses, to status).
EXPECTED: dict[tuple[str, str], tuple[frozenset[Status], Status]] = {
    ("quote", "agent"): (frozenset({S.PENDING_QUOTE}), S.QUOTED),
    ("accept", "buyer"): (frozenset({S.QUOTED}), S.ACCEPTED),
    ("pay", "buyer"): (frozenset({S.ACCEPTED, S.QUOTED}), S.PAID),
    ("open_workspace", "system"): (frozenset({S.PAID}), S.IN_PROGRESS),
    ("start", "agent"): (frozenset({S.PAID}), S.IN_PROGRESS),
    ("deliver", "agent"): (
        frozenset({S.PAID, S.IN_PROGRESS, S.REVISION_REQUESTED, S.DISPUTED, S.DELIVERED}),
        S.DELIVERED,
    ),
    ("approve", "buyer"): (frozenset({S.DELIVERED}), S.COMPLETED),
    ("revision", "buyer"): (frozenset({S.DELIVERED}), S.REVISION_REQUESTED),
    ("dispute", "buyer"): (frozenset({S.DELIVERED}), S.DISPUTED),
    ("cancel", "buyer"): (frozenset({S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED, S.PAID}), S.CANCELLED),
    ("cancel", "agent"): (frozenset({S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED, S.PAID, S.IN_PROGRESS}), S.CANCELLED),
    # resolve: release, refund, split (part each), send back.
    ("release", "staff"): (frozenset({S.DISPUTED}), S.COMPLETED),
    ("refund", "staff"): (frozenset({S.DISPUTED}), S.CANCELLED),
    ("split", "staff"): (frozenset({S.DISPUTED}), S.COMPLETED),
    ("send_back", "staff"): (frozenset({S.DISPUTED}), S.REVISION_REQUESTED),
    ("expire", "system"): (frozenset({S.IN_PROGRESS}), S.DELIVERED),
    # Agent-to-agent and x402 orders have no approval step: the system releases them on delivery.
    ("release", "system"): (frozenset({S.DELIVERED}), S.COMPLETED),
}
# Rows that apply to some orders only, and the code their guard refuses the others with: workspace
# orders (weekly, monthly, quota packs), and orders with no approval step. `make_order` builds an
# ordinary quote-priced order of a human buyer, so in the whole-table test these are refused.
CONDITIONAL: dict[tuple[str, str], str] = {
    ("open_workspace", "system"): "not_a_workspace",
    ("expire", "system"): "not_a_workspace",
    ("release", "system"): "approval_required",
}
WORKSPACE_ONLY = ("open_workspace", "expire")
# Rows with a condition on the order besides its status (`Rule.when`), by hand: (action, actor) ->
# (from statuses, to status, condition, the code a failed condition is refused with). The buyer may
# dispute an order the agent has not delivered within its turnaround (seeds: "no delivery at all
# within the agent's committed turnaround"). `make_order`'s orders are never overdue (48 h turnaround).
WHEN: dict[tuple[str, str], tuple[frozenset[Status], Status, str, str]] = {
    ("dispute", "buyer"): (
        frozenset({S.PAID, S.IN_PROGRESS, S.REVISION_REQUESTED}),
        S.DISPUTED,
        "overdue",
        "not_overdue",
    ),
}


def _actor(role: str, buyer: Any, agent: Any, staff: Principal) -> Principal:
    return {"buyer": buyer.principal, "agent": agent.principal, "staff": staff, "system": SYSTEM}[role]


def _expected_allowed(
    status: str, role: str, *, workspace: bool = False, no_approval: bool = False, overdue: bool = False
) -> set[str]:
    applies = {
        ("open_workspace", "system"): workspace,
        ("expire", "system"): workspace,
        ("release", "system"): no_approval,
    }
    unconditional = {
        action
        for (action, actor), (sources, _target) in EXPECTED.items()
        if actor == role and status in sources and applies.get((action, actor), True)
    }
    when = {action for (action, actor), (sources, *_rest) in WHEN.items() if actor == role and status in sources}
    return unconditional | (when if overdue else set())


def _make_overdue(order: Order) -> Order:
    """As if the order's turnaround had passed since payment and since its latest revision request."""
    shift = timedelta(hours=order.turnaround_hours + 1)
    Order.objects.filter(pk=order.pk).update(paid_at=F("paid_at") - shift)
    Order.objects.filter(pk=order.pk, revision_requested_at__isnull=False).update(
        revision_requested_at=F("revision_requested_at") - shift
    )
    order.refresh_from_db()
    return order


def _is_repeat_cell(action: str, status: str, role: str) -> bool:
    """`make_order` reached `status` by this very action, actor and sample data: a repeat, so a no-op.

    `pay` is never a repeat here: `sample_data("pay")` records a new payment on every call.
    """
    path = PATHS[status]
    return bool(path) and path[-1] == (action, role) and action != "pay" and EXPECTED[(action, role)][1] == status


def _row(order_id: str) -> Mapping[str, Any]:
    return Order.objects.filter(pk=order_id).values().get()


def _events(order_id: str) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(order_id=order_id).order_by("id"))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The `staff` persona sets a password; PBKDF2 at full strength would dominate 600 cells.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- the table, whole -------------------------------------------------------------------------


def test_expected_table_is_what_the_code_table_says():
    code: dict[tuple[str, str], tuple[Any, ...]] = {}
    code_when: dict[tuple[str, str], tuple[Any, ...]] = {}
    for rule in TABLE:
        key = (rule.action, rule.actor.value)
        rows = code_when if rule.when else code
        if key in rows and not rule.when and rule.implies:
            # The same move from more sources, taking a step first (paying a quote accepts it).
            sources, target = rows[key]
            assert target == rule.target
            assert not sources & rule.sources, f"{key}'s rows overlap"
            rows[key] = (sources | rule.sources, target)
            continue
        assert key not in rows, f"two rules for {key}"
        rows[key] = (
            (frozenset(rule.sources), rule.target, rule.when) if rule.when else (frozenset(rule.sources), rule.target)
        )

    assert code == EXPECTED
    assert code_when == {key: (sources, target, when) for key, (sources, target, when, _code) in WHEN.items()}
    # One action, one actor: the rows' sources never overlap, so the order's status picks the row.
    for move, (sources, _target, _when) in code_when.items():
        assert not sources & code.get(move, (frozenset(), None))[0]
    assert set(ACTIONS) == {action for action, _role in EXPECTED}


def test_every_status_has_a_path_and_every_role_is_covered():
    assert set(PATHS) == set(Status.values)
    assert {role for _action, role in EXPECTED} == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("status", Status.values)
@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_status_role_cell_moves_refuses_or_repeats_as_designed(action, status, role, buyer, agent, staff):
    order = make_order(buyer, agent, status)
    actor = _actor(role, buyer, agent, staff)
    data = sample_data(action, order)
    row_before = _row(order.id)
    events_before = _events(order.id)
    rule = EXPECTED.get((action, role))
    repeat = rule is not None and _is_repeat_cell(action, status, role)
    when = WHEN.get((action, role))
    # A conditional row's cell: its condition (overdue) does not hold for make_order's orders.
    only_when = when is not None and status in when[0]

    if rule is not None and status in rule[0] and (action, role) not in CONDITIONAL and not repeat:
        result = transition(order.id, action, actor, **data)
        target = rule[1]
        assert result.status == target
        assert _row(order.id)["status"] == target
        if (action, status) == ("pay", S.QUOTED):  # the accept is recorded, then the pay
            steps = [("accept", S.QUOTED, S.ACCEPTED), ("pay", S.ACCEPTED, S.PAID)]
        else:
            steps = [(action, status, target)]
        new = _events(order.id)[len(events_before) :]
        assert [(e.action, e.from_status, e.to_status, e.actor_kind, e.actor_id) for e in new] == [
            (*step, role, actor.id) for step in steps
        ]
        return

    if rule is None and when is None:
        with pytest.raises(Forbidden) as refused:
            transition(order.id, action, actor, **data)
        assert (refused.value.status, refused.value.code) == (403, "wrong_role")
        assert refused.value.details["status"] == status
    elif repeat:
        result = transition(order.id, action, actor, **data)
        assert (result.pk, result.status) == (order.pk, status)
    else:
        with pytest.raises(Conflict) as conflict:
            transition(order.id, action, actor, **data)
        if rule is not None and status in rule[0]:
            expected_code = CONDITIONAL[(action, role)]
        elif when is not None and only_when:
            expected_code = when[3]
        else:
            expected_code = "invalid_transition"
        assert (conflict.value.status, conflict.value.code) == (409, expected_code)
        assert conflict.value.details["status"] == status
        assert set(conflict.value.details["allowed_actions"]) == _expected_allowed(status, role)

    # Refused, or a repeat: nothing changed.
    assert _row(order.id) == row_before
    assert _events(order.id) == events_before


# A workspace order never rests in `paid`: paying opens it (`open_workspace` follows `pay`).
@pytest.mark.parametrize("action", WORKSPACE_ONLY)
@pytest.mark.parametrize("status", [s for s in Status.values if s not in (S.PENDING_QUOTE, S.PAID)])
def test_workspace_actions_move_workspace_orders_by_the_table(action, status, buyer, agent):
    service = make_service(agent.agent, price_type="weekly", price="25.00")
    order = make_order(buyer, agent, status, service=service)
    row_before = _row(order.id)
    events_before = _events(order.id)
    sources, target = EXPECTED[(action, "system")]

    if status in sources:
        result = transition(order.id, action, SYSTEM)
        assert result.status == target
        new = _events(order.id)[len(events_before) :]
        assert [(e.action, e.from_status, e.to_status, e.actor_kind, e.actor_id) for e in new] == [
            (action, status, target, "system", "system")
        ]
    elif (action, status) in {("open_workspace", S.IN_PROGRESS), ("expire", S.DELIVERED)}:
        # The order's last step was this very action (paying opened it; make_order expired it): a repeat.
        result = transition(order.id, action, SYSTEM)
        assert (result.status, _row(order.id), _events(order.id)) == (status, row_before, events_before)
    else:
        with pytest.raises(Conflict) as refused:
            transition(order.id, action, SYSTEM)
        assert refused.value.code == "invalid_transition"
        assert set(refused.value.details["allowed_actions"]) == _expected_allowed(status, "system", workspace=True)
        assert _row(order.id) == row_before
        assert _events(order.id) == events_before


@pytest.mark.parametrize("status", Status.values)
@pytest.mark.parametrize(("action", "role"), list(WHEN))
def test_conditional_rows_move_an_order_once_their_condition_holds(action, role, status, buyer, agent, staff):
    order = _make_overdue(make_order(buyer, agent, status))
    actor = _actor(role, buyer, agent, staff)
    sources, target, _when, _code = WHEN[(action, role)]
    assert order.overdue == (status in sources)
    assert set(allowed_actions(order, role_of(order, actor))) == _expected_allowed(status, role, overdue=True)
    if status not in sources:
        return  # the unconditional rows and the whole-table test cover the other statuses

    result = transition(order.id, action, actor, **sample_data(action, order))

    assert result.status == target
    new = _events(order.id)[-1]
    assert (new.action, new.from_status, new.to_status, new.actor_kind) == (action, status, target, role)


@pytest.mark.parametrize("status", sorted(WHEN[("dispute", "buyer")][0]))
def test_a_workspace_order_is_never_overdue_so_never_disputed_before_delivery(status, buyer, agent):
    service = make_service(agent.agent, price_type="weekly", price="25.00")
    if status == S.PAID:
        pytest.skip("a workspace order never rests in paid: paying opens it")
    order = _make_overdue(make_order(buyer, agent, status, service=service))

    assert (order.due_at, order.overdue) == (None, False)
    with pytest.raises(Conflict) as refused:
        transition(order.id, "dispute", buyer.principal, reason="Nothing yet.")
    assert refused.value.code == "not_overdue"


@pytest.mark.parametrize("status", Status.values)
def test_allowed_actions_list_what_each_role_may_do(status, buyer, agent, staff):
    order = make_order(buyer, agent, status)
    for role in ROLES:
        actor = _actor(role, buyer, agent, staff)
        assert role_of(order, actor) == role
        actions = allowed_actions(order, role_of(order, actor))
        assert len(actions) == len(set(actions))
        assert set(actions) == _expected_allowed(status, role), role


# --- repeats, strangers, the revision limit ----------------------------------------------------


def test_approve_twice_is_a_no_op(buyer, agent):
    order = make_order(buyer, agent, S.DELIVERED)
    transition(order.id, "approve", buyer.principal)
    events = _events(order.id)
    row = _row(order.id)

    again = transition(order.id, "approve", buyer.principal)

    assert (again.pk, again.status) == (order.pk, S.COMPLETED)
    assert _events(order.id) == events
    assert _row(order.id) == row
    agent.agent.refresh_from_db()
    assert agent.agent.completed_orders == 1


def test_cancel_twice_is_a_no_op(buyer, agent):
    order = make_order(buyer, agent, S.QUOTED)
    transition(order.id, "cancel", buyer.principal)
    events = _events(order.id)
    row = _row(order.id)

    again = transition(order.id, "cancel", buyer.principal)

    assert (again.pk, again.status) == (order.pk, S.CANCELLED)
    assert _events(order.id) == events
    assert _row(order.id) == row


def test_cancel_by_the_other_party_after_a_cancel_is_a_conflict_not_a_repeat(buyer, agent):
    order = make_order(buyer, agent, S.QUOTED)
    transition(order.id, "cancel", buyer.principal)

    with pytest.raises(Conflict) as refused:
        transition(order.id, "cancel", agent.principal)

    assert refused.value.code == "invalid_transition"


def test_revision_twice_with_the_same_feedback_is_a_no_op(buyer, agent):
    order = make_order(buyer, agent, S.DELIVERED)
    transition(order.id, "revision", buyer.principal, feedback="Warmer colours, please.")
    events = _events(order.id)
    row = _row(order.id)

    again = transition(order.id, "revision", buyer.principal, feedback="Warmer colours, please.")

    assert (again.pk, again.status, again.revision_count) == (order.pk, S.REVISION_REQUESTED, 1)
    assert _events(order.id) == events
    assert _row(order.id) == row


def test_revision_again_with_other_feedback_is_a_conflict(buyer, agent):
    order = make_order(buyer, agent, S.DELIVERED)
    transition(order.id, "revision", buyer.principal, feedback="Warmer colours, please.")
    row = _row(order.id)

    with pytest.raises(Conflict) as refused:
        transition(order.id, "revision", buyer.principal, feedback="Actually, cooler colours.")

    assert refused.value.code == "invalid_transition"
    assert _row(order.id) == row


def test_deliver_twice_with_the_same_deliverables_is_a_no_op(buyer, agent):
    order = make_order(buyer, agent, S.IN_PROGRESS)
    items = [{"url": "https://cdn.example.com/fox.png", "media_type": "image"}]
    transition(order.id, "deliver", agent.principal, deliverables=items)
    events = _events(order.id)
    deliverables = list(Deliverable.objects.filter(order=order).values("id", "url", "superseded"))

    again = transition(order.id, "deliver", agent.principal, deliverables=[dict(item) for item in items])

    assert (again.pk, again.status) == (order.pk, S.DELIVERED)
    assert _events(order.id) == events
    assert list(Deliverable.objects.filter(order=order).values("id", "url", "superseded")) == deliverables


def test_deliver_again_with_other_deliverables_redelivers_and_supersedes_the_old(buyer, agent):
    order = make_order(buyer, agent, S.IN_PROGRESS)
    first = [{"url": "https://cdn.example.com/fox.png", "media_type": "image"}]
    second = [
        {"url": "https://cdn.example.com/fox-v2.png", "media_type": "image"},
        {"url": "https://cdn.example.com/fox.psd", "media_type": "document"},
    ]
    transition(order.id, "deliver", agent.principal, deliverables=first)
    events_before = len(_events(order.id))

    result = transition(order.id, "deliver", agent.principal, deliverables=second)

    assert result.status == S.DELIVERED
    new = _events(order.id)[events_before:]
    assert [(e.action, e.from_status, e.to_status, e.actor_kind) for e in new] == [
        ("deliver", S.DELIVERED, S.DELIVERED, "agent")
    ]
    assert new[0].data["deliverables"] == second
    rows = Deliverable.objects.filter(order=order)
    assert set(rows.filter(superseded=True).values_list("url", flat=True)) == {"https://cdn.example.com/fox.png"}
    assert set(rows.filter(superseded=False).values_list("url", flat=True)) == {item["url"] for item in second}


def test_pay_twice_with_the_same_payment_is_a_no_op_and_with_another_is_a_conflict(buyer, agent):
    order = make_order(buyer, agent, S.QUOTED)
    payment = make_payment(order)
    transition(order.id, "pay", buyer.principal, payment=payment)
    events = _events(order.id)

    again = transition(order.id, "pay", buyer.principal, payment=payment)

    assert (again.status, _events(order.id)) == (S.PAID, events)
    with pytest.raises(Conflict) as refused:
        transition(order.id, "pay", buyer.principal, payment=make_payment(order, tx_hash="another-transfer"))
    assert refused.value.code == "invalid_transition"
    assert _events(order.id) == events


@pytest.mark.parametrize("stranger", ["other_buyer", "other_agent"])
@pytest.mark.parametrize("action", ["approve", "cancel", "deliver", "quote"])
def test_a_stranger_gets_not_found(stranger, action, buyer, agent, request):
    outsider = request.getfixturevalue(stranger)
    order = make_order(buyer, agent, S.DELIVERED if action in ("approve", "deliver") else S.PENDING_QUOTE)
    row = _row(order.id)
    events = _events(order.id)

    with pytest.raises(NotFound) as refused:
        transition(order.id, action, outsider.principal, **sample_data(action, order))

    assert (refused.value.status, refused.value.code) == (404, "order_not_found")
    assert _row(order.id) == row
    assert _events(order.id) == events


def test_an_unknown_order_is_not_found(buyer):
    with pytest.raises(NotFound):
        transition("ord_0000000000000_000000000", "approve", buyer.principal)


def test_revision_beyond_the_limit_is_refused_and_drops_out_of_allowed_actions(buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00", max_revisions=2)
    order = make_order(buyer, agent, S.DELIVERED, service=service)
    for feedback in ("Darker.", "Lighter."):
        assert "revision" in allowed_actions(order, role_of(order, buyer.principal))
        transition(order.id, "revision", buyer.principal, feedback=feedback)
        order = transition(order.id, "deliver", agent.principal, **sample_data("deliver", order))

    order.refresh_from_db()
    assert order.revision_count == 2
    assert "revision" not in allowed_actions(order, role_of(order, buyer.principal))
    assert set(allowed_actions(order, role_of(order, buyer.principal))) == {"approve", "dispute"}
    row = _row(order.id)
    events = _events(order.id)

    with pytest.raises(Conflict) as refused:
        transition(order.id, "revision", buyer.principal, feedback="One more, please.")

    assert (refused.value.status, refused.value.code) == (409, "revision_limit_reached")
    assert refused.value.details == {"max_revisions": 2, "revision_count": 2}
    assert _row(order.id) == row
    assert _events(order.id) == events


def test_a_service_with_no_revisions_refuses_the_first(buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00", max_revisions=0)
    order = make_order(buyer, agent, S.DELIVERED, service=service)
    assert "revision" not in allowed_actions(order, role_of(order, buyer.principal))

    with pytest.raises(Conflict) as refused:
        transition(order.id, "revision", buyer.principal, feedback="Darker.")

    assert refused.value.code == "revision_limit_reached"


# --- side effects run after commit only ----------------------------------------------------------


@pytest.fixture
def changes(monkeypatch: pytest.MonkeyPatch) -> list[OrderEvent]:
    """The events `events.order_changed` was called with."""
    seen: list[OrderEvent] = []
    monkeypatch.setattr(events, "order_changed", seen.append)
    return seen


def test_a_transition_schedules_its_side_effect_for_after_commit(
    buyer, agent, changes, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, S.DELIVERED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        transition(order.id, "approve", buyer.principal)
        assert changes == []  # scheduled, not run: the transaction has not committed yet

    assert callbacks  # order_changed, and whatever else approving schedules (the payout)
    approve = OrderEvent.objects.get(order=order, action="approve")
    assert changes == [approve]


def test_pay_from_quoted_schedules_one_side_effect_per_event(buyer, agent, changes, django_capture_on_commit_callbacks):
    order = make_order(buyer, agent, S.QUOTED)
    payment = make_payment(order)

    with django_capture_on_commit_callbacks(execute=True):
        transition(order.id, "pay", buyer.principal, payment=payment)
        assert changes == []

    assert [(event.action, event.to_status) for event in changes] == [("accept", S.ACCEPTED), ("pay", S.PAID)]


@pytest.mark.parametrize(
    ("status", "role", "refusal"),
    [(S.QUOTED, "buyer", Conflict), (S.DELIVERED, "agent", Forbidden), (S.COMPLETED, "buyer", None)],
    ids=["conflict", "forbidden", "repeat"],
)
def test_a_refused_or_repeated_approve_schedules_nothing(
    status, role, refusal, buyer, agent, staff, changes, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, status)
    actor = _actor(role, buyer, agent, staff)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if refusal is None:
            transition(order.id, "approve", actor)
        else:
            with pytest.raises(refusal):
                transition(order.id, "approve", actor)

    assert callbacks == []
    assert changes == []


def test_a_transition_rolled_back_by_its_caller_runs_no_side_effect(
    buyer, agent, changes, django_capture_on_commit_callbacks
):
    order = make_order(buyer, agent, S.DELIVERED)

    class AbortError(Exception):
        pass

    def approve_then_abort() -> None:
        with transaction.atomic():
            transition(order.id, "approve", buyer.principal)
            raise AbortError

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(AbortError):
        approve_then_abort()

    assert callbacks == []
    assert changes == []
    assert _row(order.id)["status"] == S.DELIVERED


# --- concurrency (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: real row locks under concurrent connections (SQLite serialises whole transactions)",
)
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_approvals_complete_the_order_once(buyer, agent):
    # transaction=True: the personas' rows are committed, so other connections can see them.
    assert not connection.in_atomic_block
    order = make_order(buyer, agent, S.DELIVERED)
    threads = 20
    barrier = threading.Barrier(threads)

    def approve() -> Order:
        try:
            barrier.wait(timeout=30)
            return transition(order.id, "approve", buyer.principal)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(approve) for _ in range(threads)]
        results = [future.result(timeout=60) for future in futures]  # re-raises any thread's error

    assert [(result.pk, result.status) for result in results] == [(order.pk, S.COMPLETED)] * threads
    assert _row(order.id)["status"] == S.COMPLETED
    assert OrderEvent.objects.filter(order=order, action="approve").count() == 1
    assert OrderEvent.objects.filter(order=order, to_status=S.COMPLETED).count() == 1
    agent.agent.refresh_from_db()
    assert agent.agent.completed_orders == 1


# --- the API's refusals ------------------------------------------------------------------------------


def test_patch_approve_on_a_quoted_order_is_409_naming_status_and_allowed_actions(buyer, agent):
    order = make_order(buyer, agent, S.QUOTED)
    row = _row(order.id)

    response = buyer.api.patch(f"/api/orders/{order.id}", {"action": "approve"})

    assert response.status_code == 409
    body = response.body
    assert set(body) == {"success", "error", "code", "details"}
    assert body["success"] is False
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body["code"] == "invalid_transition"
    assert body["details"] == {"status": "quoted", "allowed_actions": ["accept", "pay", "cancel"]}
    assert _row(order.id) == row


def test_patch_approve_by_the_agent_is_403_wrong_role(buyer, agent):
    order = make_order(buyer, agent, S.DELIVERED)
    row = _row(order.id)

    response = agent.api.patch(f"/api/orders/{order.id}", {"action": "approve"})

    assert response.status_code == 403
    assert response.body["success"] is False
    assert response.body["code"] == "wrong_role"
    assert response.body["details"]["status"] == "delivered"
    assert _row(order.id) == row


def test_patch_by_a_stranger_is_404(buyer, other_buyer, agent):
    order = make_order(buyer, agent, S.DELIVERED)

    response = other_buyer.api.patch(f"/api/orders/{order.id}", {"action": "approve"})

    assert response.status_code == 404
    assert response.body["code"] == "order_not_found"
    assert _row(order.id)["status"] == S.DELIVERED


def test_the_state_diagram_in_the_docs_is_the_tables() -> None:
    """docs/states.md is generated from TABLE (`make states`): a change to the table that did not
    redraw it fails here."""
    from orders.management.commands.states import TARGET, document

    assert TARGET.read_text() == document(), "docs/states.md is stale: run `make states`"


def test_payable_is_where_the_table_lets_a_buyer_pay() -> None:
    from orders.models import PAYABLE

    assert {source for rule in TABLE if rule.action == "pay" for source in rule.sources} == set(PAYABLE)


def test_a_step_a_row_implies_is_a_row_of_the_table_from_that_source() -> None:
    """Paying a quote accepts it first: the implied step is the table's own accept, by the same actor."""
    implying = [rule for rule in TABLE if rule.implies]
    assert [(rule.action, sorted(rule.sources), rule.implies) for rule in implying] == [("pay", ["quoted"], "accept")]
    for rule in implying:
        steps = [r for r in TABLE if r.action == rule.implies and r.actor == rule.actor and rule.sources <= r.sources]
        assert len(steps) == 1


# Each row's `only` condition, by hand: (action, actor) -> (condition, the code it refuses with).
ONLY: dict[tuple[str, str], tuple[str, str]] = {
    ("open_workspace", "system"): ("workspace", "not_a_workspace"),
    ("expire", "system"): ("workspace", "not_a_workspace"),
    ("release", "system"): ("settles_on_delivery", "approval_required"),
    ("revision", "buyer"): ("revisions_left", "revision_limit_reached"),
}
# The system's steps taken at once on arrival: a paid workspace opens; a delivery with no approval
# step is released.
FOLLOWS = {("open_workspace", "system"), ("release", "system")}


def test_each_rows_conditions_and_follow_ups_are_the_designed_ones() -> None:
    only = {(rule.action, rule.actor.value): (rule.only, rule.only.code) for rule in TABLE if rule.only}
    when = {(rule.action, rule.actor.value): (rule.when, rule.when.code) for rule in TABLE if rule.when}

    assert only == ONLY
    assert {key: code for key, (_name, code) in ONLY.items() if key in CONDITIONAL} == CONDITIONAL
    assert when == {key: (name, code) for key, (_sources, _target, name, code) in WHEN.items()}
    assert {(rule.action, rule.actor.value) for rule in TABLE if rule.follows} == FOLLOWS
    # A follow-up is the system's, and never needs data from a caller.
    assert all(rule.actor == "system" for rule in TABLE if rule.follows)


def test_check_refuses_a_failed_condition_as_transition_does(buyer, agent):
    """`check` (before slow work) and `transition` read the same conditions off the row."""
    service = make_service(agent.agent, price_type="quote", price="0.00", max_revisions=0)
    order = make_order(buyer, agent, S.DELIVERED, service=service)

    with pytest.raises(Conflict) as checked:
        check(order, "revision", buyer.principal)
    with pytest.raises(Conflict) as moved:
        transition(order.id, "revision", buyer.principal, feedback="Darker.")

    assert (checked.value.code, checked.value.message, checked.value.details) == (
        moved.value.code,
        moved.value.message,
        moved.value.details,
    )
    assert moved.value.details == {"max_revisions": 0, "revision_count": 0}
