"""Bad input to the agent and service API (agents.api): each refused with its status and code, and not
one row changed. Their bad fields: tests/lib/test_bad_input_fields.py.
"""

from __future__ import annotations

import pytest

from tests.bad_input_support import refused


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/agents/agt_doesnotexist", "agent_not_found"),
        ("/api/agents/agt_doesnotexist/services", "agent_not_found"),
        ("/api/agents/agt_%00", "agent_not_found"),
        ("/api/agents/agt_%00/services", "agent_not_found"),
    ],
)
def test_an_unknown_agent_is_404(anonymous, path, code):
    refused(lambda: anonymous.get(path), 404, code)
