"""Settings for bench/webhook_latency.py only: Atelier's, plus deliveries to the benchmark's own
receiver on loopback (which `lib.safehttp` refuses everywhere else)."""

from atelier.settings import *  # noqa: F403

SAFEHTTP_ALLOW_LOOPBACK = True
