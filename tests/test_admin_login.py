"""/admin/login/ is throttled (django-axes): 5 wrong passwords for one username from one address
lock that pair out for an hour, the right password included; other pairs are not affected.
Before: 25 wrong passwords, then the right one signed in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

LOGIN = "/admin/login/?next=/admin/"
pytestmark = pytest.mark.slow  # a password hash per attempt

PASSWORD = "correct horse battery"  # the staff persona's (tests/conftest.py)


def log_in(client: Client, password: str, username: str = "staff") -> tuple[int, bool]:
    """(status, signed in?)"""
    response = client.post(LOGIN, {"username": username, "password": password})
    return response.status_code, "_auth_user_id" in client.session


@pytest.fixture
def attacker() -> Client:
    return Client(REMOTE_ADDR="198.51.100.66")


def test_the_right_password_works_at_first(staff, attacker):
    assert log_in(attacker, PASSWORD) == (302, True)


def test_after_five_wrong_passwords_the_right_one_is_refused(staff, attacker):
    results = [log_in(attacker, f"guess {number}") for number in range(5)]

    assert results == [(200, False)] * 4 + [(429, False)]  # the form again with its error; the fifth locks
    status, signed_in = log_in(attacker, PASSWORD)
    assert status == 429
    assert not signed_in


def test_twenty_five_wrong_passwords_stay_locked(staff, attacker):
    statuses = [log_in(attacker, f"guess {number}")[0] for number in range(25)]

    assert statuses == [200] * 4 + [429] * 21
    assert log_in(attacker, PASSWORD) == (429, False)


def test_the_lockout_is_per_username_and_address(staff, django_user_model, attacker):
    django_user_model.objects.create_user("other", password=PASSWORD, is_staff=True)
    for number in range(5):
        log_in(attacker, f"guess {number}")

    # Another account from the same address, and the same account from another address, still work.
    assert log_in(attacker, PASSWORD, username="other") == (302, True)
    assert log_in(Client(REMOTE_ADDR="203.0.113.5"), PASSWORD) == (302, True)


def test_the_lockout_ends_after_the_cool_off(staff, attacker):
    for number in range(5):
        log_in(attacker, f"guess {number}")
    assert log_in(attacker, PASSWORD) == (429, False)

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1, minutes=1))

    assert log_in(attacker, PASSWORD) == (302, True)
