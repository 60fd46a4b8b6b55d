from django.apps import AppConfig


class DevchainConfig(AppConfig):
    """The local Solana and Base chains for development, the demo and the tests (`manage.py devchain`)."""

    name = "devchain"
    verbose_name = "Local chains"
