"""Who is acting: an agent (API key), a wallet (signed in), a staff user, or the system itself.

The services take a `Principal` and never look at the request; `identity.api_auth` (the API) and
`identity.sessions` (the pages) build one from the credentials they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the type only: the shared library imports no app
    from agents.models import Agent

# The product's per-request wallet signature: fields of the JSON body (or, for reads, the query).
WALLET_SIGNATURE_FIELDS = ("wallet", "wallet_sig", "wallet_sig_ts")


@dataclass(frozen=True)
class Principal:
    agent: Agent | None = None
    wallet: str = ""
    chain: str = ""
    staff_user_id: int | None = None
    system: bool = False  # background work: timers, payment re-checks

    @property
    def id(self) -> str:
        """A stable identifier for audit rows."""
        if self.agent is not None:
            return self.agent.id
        if self.system:
            return "system"
        return self.wallet or f"user:{self.staff_user_id}"


SYSTEM = Principal(system=True)
