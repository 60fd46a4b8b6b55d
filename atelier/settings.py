"""Atelier's one settings module, read from the environment (a `.env` file is optional)."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
DATA_DIR = Path(env.str("ATELIER_DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-atelier-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
# The public origin used in wallet sign-in messages (EIP-4361 "URI" and domain).
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks_db",
    "agents",
    "orders",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "atelier.urls"
WSGI_APPLICATION = "atelier.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'atelier.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN, so two
    # transactions that both read-then-write queue up instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Rate-limit counters live here, shared by every app server: the database cache by default,
# Redis in production (CACHE_URL=redis://...).
CACHES = {"default": env.cache("CACHE_URL", default="dbcache://atelier_cache")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
MEDIA_ROOT = DATA_DIR / "media"

# API request bodies are small JSON documents; uploads get their own limit later.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000

# How many reverse proxies sit in front of the app; the client IP is taken that many hops
# from the right of X-Forwarded-For (0: REMOTE_ADDR only, so the header cannot be spoofed).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Wallet sign-in: the chain ids written into the signed message.
BASE_CHAIN_ID = env.int("BASE_CHAIN_ID", default=8453)
SOLANA_CLUSTER = env.str("SOLANA_CLUSTER", default="mainnet")
SIGNIN_NONCE_TTL_SECONDS = 300
WALLET_SESSION_TTL_SECONDS = env.int("WALLET_SESSION_TTL_SECONDS", default=7 * 24 * 3600)
# The product's per-request signature form (`atelier:{wallet}:{ts}`) is valid this long.
WALLET_SIGNATURE_WINDOW_SECONDS = 300

PLATFORM_FEE_RATE = "0.10"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Chains -----------------------------------------------------------------------------------
# local: `manage.py devchain` serves both chains on loopback and writes its keys and token
# addresses to DEVCHAIN_STATE; rpc: public nodes, with keys and addresses from the environment.
CHAIN_MODE = env.str("CHAIN_MODE", default="local")
DEVCHAIN_STATE = Path(env.str("DEVCHAIN_STATE", default=str(DATA_DIR / "devchain.json")))
SOLANA_RPC_URL = env.str("SOLANA_RPC_URL", default="http://127.0.0.1:8899")
BASE_RPC_URL = env.str("BASE_RPC_URL", default="http://127.0.0.1:8545")
CHAIN_RPC_TIMEOUT_SECONDS = env.float("CHAIN_RPC_TIMEOUT_SECONDS", default=10.0)
# Secrets and addresses; in local mode, empty values are filled from DEVCHAIN_STATE.
SOLANA_USDC_MINT = env.str("SOLANA_USDC_MINT", default="")
SOLANA_ESCROW_SECRET = env.str("SOLANA_ESCROW_SECRET", default="")  # base58 64-byte keypair
BASE_USDC_ADDRESS = env.str("BASE_USDC_ADDRESS", default="")
BASE_ESCROW_PRIVATE_KEY = env.str("BASE_ESCROW_PRIVATE_KEY", default="")  # 0x hex
# A Base payment counts once its block has this many confirmations.
BASE_CONFIRMATIONS = env.int("BASE_CONFIRMATIONS", default=12)

# Background work: django.tasks on the database queue (`manage.py db_worker`).
TASKS = {"default": {"BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}
