"""Demo agents and services for `make run`. Safe to run again: existing demo rows are kept."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from eth_account import Account
from solders.keypair import Keypair

from agents.models import Agent, PriceType, Service
from agents.services import api_key_create, new_webhook_secret


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"atelier demo {name}".encode()).digest()


def demo_solana_wallet(name: str) -> str:
    """A real, deterministic key, so payouts on the devchain land somewhere you can inspect."""
    return str(Keypair.from_seed(_seed(name)).pubkey())


def demo_evm_wallet(name: str) -> str:
    return str(Account.from_key(_seed(name)).address)


DEMO_AGENTS: list[dict[str, Any]] = [
    {
        "name": "Pixel Forge",
        "slug": "pixel-forge",
        "description": "Illustrations, product shots and logos from a fine-tuned diffusion pipeline.",
        "payout_chain": "solana",
        "payout_wallet": demo_solana_wallet("pixel-forge"),
        "services": [
            (
                "Logo in three styles",
                "design",
                "fixed",
                "25.00",
                0,
                "Three logo directions for your brand name, each as a 2048 px PNG with a transparent background.",
            ),
            (
                "Custom illustration",
                "design",
                "quote",
                "0.00",
                0,
                "A bespoke illustration from your brief; quoted after reading it, usually within the hour.",
            ),
            (
                "Weekly image studio",
                "design",
                "weekly",
                "49.00",
                50,
                "A week-long workspace: send up to 50 prompts and get finished images back for each one.",
            ),
        ],
    },
    {
        "name": "Codewright",
        "slug": "codewright",
        "description": "Reviews pull requests, writes tests and fixes bugs in Python and TypeScript.",
        "payout_chain": "base",
        "payout_address_base": demo_evm_wallet("codewright"),
        "services": [
            (
                "Pull request review",
                "code",
                "fixed",
                "15.00",
                0,
                "A careful review of one pull request: bugs, security issues, missing tests, with suggested patches.",
            ),
            (
                "Bug fix with tests",
                "code",
                "quote",
                "0.00",
                0,
                "Send the failing behaviour and the repository; get a fix with a regression test, quoted per bug.",
            ),
        ],
    },
    {
        "name": "Wordsmith",
        "slug": "wordsmith",
        "description": "Landing pages, product descriptions and release notes in your voice.",
        "payout_chain": "solana",
        "payout_wallet": demo_solana_wallet("wordsmith"),
        "services": [
            (
                "Landing page copy",
                "writing",
                "fixed",
                "30.00",
                0,
                "Hero, features and FAQ copy for one landing page, with two alternative headlines to test.",
            ),
            (
                "Monthly content desk",
                "writing",
                "monthly",
                "199.00",
                0,
                "A month of blog posts and social copy on request: unlimited prompts inside the workspace.",
            ),
        ],
    },
]


class Command(BaseCommand):
    help = "Load demo agents and services (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for spec in DEMO_AGENTS:
            fields = {key: value for key, value in spec.items() if key != "services"}
            agent, created = Agent.objects.get_or_create(
                slug=fields.pop("slug"), defaults={**fields, "webhook_secret": new_webhook_secret()}
            )
            if created:
                key = api_key_create(agent=agent, label="demo")
                self.stdout.write(f"{agent.name}: {agent.id}  API key (shown once): {key}")
            for title, category, price_type, price, quota, description in spec["services"]:
                Service.objects.get_or_create(
                    agent=agent,
                    title=title,
                    defaults={
                        "category": category,
                        "price_type": PriceType(price_type),
                        "price_usd": Decimal(price),
                        "quota_limit": quota,
                        "description": description,
                    },
                )
        self.stdout.write(f"Demo data ready: {Agent.objects.count()} agents, {Service.objects.count()} services.")
