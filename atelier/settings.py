"""Atelier's one settings module, read from the environment (a `.env` file is optional)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from lib.caches import DEFAULT_URL as CACHE_DEFAULT_URL
from lib.caches import cache_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
DATA_DIR = Path(env.str("ATELIER_DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
# Where `make run` serves (HOST, PORT) and its devchains listen; the URLs below follow them.
HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)
# The public origin used in wallet sign-in messages (EIP-4361 "URI" and domain).
PUBLIC_URL = env.str("PUBLIC_URL", default=f"http://{HOST}:{PORT}")
# A deployment: DEBUG off and served over TLS (PUBLIC_URL is https): secure cookies, HSTS and the
# HTTPS redirect. Local runs and tests are plain http.
HTTPS = env.bool("HTTPS", default=PUBLIC_URL.startswith("https://"))
DEPLOYED = HTTPS and not DEBUG
if DEBUG:
    # "django-insecure-" makes `check --deploy` flag this key if it ever reaches a server.
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-atelier-dev-key-change-me-0123456789abcdef")
elif not (SECRET_KEY := env.str("SECRET_KEY", default="")):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off: the development key is in the repository, so sessions "
        "and signed values made with it could be forged. Set SECRET_KEY, or DEBUG=true for local development."
    )

# Development only: webhooks may go to loopback and private networks (a receiver on this machine).
# Ignored with DEBUG off, where they would reach the server's own network.
ALLOW_PRIVATE_WEBHOOKS = DEBUG and env.bool("ALLOW_PRIVATE_WEBHOOKS", default=False)

INSTALLED_APPS = [
    "atelier.apps.AtelierAdminConfig",  # django.contrib.admin, titled for the project
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # /admin/ login throttling (AXES_* below)
    "django_htmx",
    "django_tasks_db",
    "agents",
    "orders",
    "payments",
    "webhooks",
    "idempotency",  # Idempotency-Key records for the API's POST and PATCH
    "atelier",  # management commands shared by all apps (requeue_stale_tasks)
    # The local chains (`manage.py devchain`): a development package no app imports (.importlinter).
    # Installed everywhere for its command only; its modules, and the dev-only packages they need
    # (eth-tester), load when the command runs.
    "devchain",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, before anything that reads a session
    "lib.requestlog.RequestLogMiddleware",  # a request id, one JSON line and metrics per request
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its 429 response
]

ROOT_URLCONF = "atelier.urls"
# Who is calling an API endpoint (api.endpoints): API keys and wallet credentials.
API_AUTHENTICATOR = "identity.api_auth.authenticate"
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
                "django.template.context_processors.csp",
                "atelier.context_processors.signed_in",
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "PG_PREPARED_STATEMENTS", default=True
):
    # Parameters bound by the server, so the hot reads (lib.prepared) can be prepared
    # statements: PostgreSQL stops planning them on every request (0.1-0.9 ms each, BENCHMARKS.md).
    # Only those: every other query is planned afresh with its values, as before (a generic plan
    # for "this order's messages, newest first" assumed an average order and walked a 10,000-message
    # one). PG_PREPARED_STATEMENTS=false, e.g. behind a transaction-mode PgBouncer older than 1.21.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": None})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Rate-limit counters live here, shared by every app server: the database cache by default,
# Redis in production (CACHE_URL=redis://...).
CACHES = {"default": cache_config(env.str("CACHE_URL", default=CACHE_DEFAULT_URL))}

# Staff sign in to /admin/ with passwords: django-axes locks a username from one client address
# after AXES_FAILURE_LIMIT wrong ones, for AXES_COOLOFF_TIME (manage.py axes_reset lifts it sooner).
# By username and address together, so a stranger cannot lock staff out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(hours=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "lib.ratelimit.client_address"  # the proxies the rate limiter trusts
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["atelier.formats"]  # one date format: 2026-12-06 21:27 UTC
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing one on every start
MEDIA_ROOT = DATA_DIR / "media"

# Deliverable files and agents' uploads are private: they live outside MEDIA_ROOT and STATIC_ROOT,
# the "private" storage has no URL, and only the views in orders.web.files_api serve them, after
# checking the viewer against the watermark gate (orders.deliverables.gate).
# Hashed names need `collectstatic` to have run (the deploy steps); the suite and DEBUG use the sources.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
# STORAGE_BACKEND=local (the default: a folder under DATA_DIR, one machine) or s3 (S3 or any
# S3-compatible store, shared by every app server and worker; docs/deploy.md).
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="local")
if STORAGE_BACKEND not in ("local", "s3"):
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be local or s3, not {STORAGE_BACKEND!r}.")
# With S3, the original of a deliverable is served by a redirect to a URL signed for that one object
# and valid this many seconds, once the view has checked the viewer (0: streamed through the app).
PRIVATE_FILE_URL_SECONDS = env.int("PRIVATE_FILE_URL_SECONDS", default=60)
S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")  # empty: AWS itself
if STORAGE_BACKEND == "s3":
    PRIVATE_STORAGE: dict[str, object] = {
        "BACKEND": "lib.privatestorage.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET"),
            "location": env.str("S3_PREFIX", default="private"),
            "endpoint_url": S3_ENDPOINT_URL or None,
            "region_name": env.str("S3_REGION", default="us-east-1"),
            # Empty: boto3 finds credentials itself (instance role, AWS_* variables).
            "access_key": env.str("S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default="") or None,
            # A custom endpoint (MinIO, moto, most S3-compatible stores) is addressed by path.
            "addressing_style": "path" if S3_ENDPOINT_URL else None,
        },
    }
else:
    PRIVATE_STORAGE = {
        "BACKEND": "lib.privatestorage.PrivateStorage",
        "OPTIONS": {"location": str(DATA_DIR / "private")},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # whitenoise: hashed names and gzip/brotli copies made by `collectstatic`, served far-future
    # cached by the app server itself (no separate static host needed). DEBUG serves the sources.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    "private": PRIVATE_STORAGE,
}
# Image deliverables are fetched once (lib.safehttp) up to this size and pixel count.
DELIVERABLE_FETCH_MAX_BYTES = env.int("DELIVERABLE_FETCH_MAX_BYTES", default=20 * 1024 * 1024)
DELIVERABLE_MAX_PIXELS = env.int("DELIVERABLE_MAX_PIXELS", default=40_000_000)
# POST /api/upload: one file per request, at most this size.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=50 * 1024 * 1024)

# API request bodies are small JSON documents; uploads get their own limit later.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000

# How many reverse proxies sit in front of the app; the client IP is taken that many hops
# from the right of X-Forwarded-For (0: REMOTE_ADDR only, so the header cannot be spoofed).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# POST /solana-pay/orders/<id> (public: each request costs the Solana node a balance read), per
# client IP: a wallet asks once per scan or click, so 30 a minute leaves room for a shared address.
SOLANA_PAY_RATE_LIMIT = env.int("SOLANA_PAY_RATE_LIMIT", default=30)
SOLANA_PAY_RATE_WINDOW = env.int("SOLANA_PAY_RATE_WINDOW", default=60)

# GET /metrics (atelier.metrics): only `Authorization: Bearer <METRICS_TOKEN>`; without a token it
# is never served with DEBUG off (a same-host proxy makes every caller loopback), in DEBUG to loopback.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Staff email (orders.disputes.announce): the console in development (DEBUG); otherwise an SMTP
# server as EMAIL_URL, e.g. smtp+tls://user:password@host:587 (django-environ's email_url), by
# default the host's own relay on localhost:25 (Django's default).
_email = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {
            "host": _email["EMAIL_HOST"],
            "port": _email["EMAIL_PORT"],
            "username": _email["EMAIL_HOST_USER"],
            "password": _email["EMAIL_HOST_PASSWORD"],
            "use_tls": bool(_email.get("EMAIL_USE_TLS")),
            "use_ssl": bool(_email.get("EMAIL_USE_SSL")),
        }
        if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
        else {},
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Atelier <atelier@localhost>")

# `make bench` only: serves GET /bench/bare, a bare JSON view, as the benchmark's baseline.
ATELIER_BENCH = env.bool("ATELIER_BENCH", default=False)

# Wallet sign-in: the chain ids written into the signed message.
BASE_CHAIN_ID = env.int("BASE_CHAIN_ID", default=8453)
SOLANA_CLUSTER = env.str("SOLANA_CLUSTER", default="mainnet")
SIGNIN_NONCE_TTL_SECONDS = 300
WALLET_SESSION_TTL_SECONDS = env.int("WALLET_SESSION_TTL_SECONDS", default=7 * 24 * 3600)
# The product's per-request signature form (`atelier:{wallet}:{ts}`) is valid this long.
WALLET_SIGNATURE_WINDOW_SECONDS = 300

PLATFORM_FEE_RATE = "0.10"

# --- Browser security ---------------------------------------------------------------------------
# A strict policy: scripts only from this origin and with the per-response nonce, no inline
# handlers or styles, no framing. Media (video deliverables) may come from any https origin.
S3_ORIGIN = [S3_ENDPOINT_URL.rstrip("/")] if STORAGE_BACKEND == "s3" and S3_ENDPOINT_URL else []
if STORAGE_BACKEND == "s3" and not S3_ENDPOINT_URL:
    S3_ORIGIN = [f"https://{PRIVATE_STORAGE['OPTIONS']['bucket_name']}.s3.amazonaws.com", "https://*.amazonaws.com"]  # type: ignore[index]
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    # The S3 origin: deliverable originals redirect there (signed, short-lived) after the gate check.
    "img-src": [CSP.SELF, "data:", *S3_ORIGIN],
    "media-src": [CSP.SELF, "https:", *S3_ORIGIN],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_TRUSTED_ORIGINS = [PUBLIC_URL.rstrip("/")]
CSRF_FAILURE_VIEW = "api.endpoints.csrf_failure"  # the styled page, or a notice in place for htmx
SESSION_COOKIE_HTTPONLY = True
# Sessions read from the cache (Redis in production) and written through to the database: every open
# order page asks its poll every 3 s, and a session read was one of its two queries.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = DEPLOYED
CSRF_COOKIE_SECURE = DEPLOYED
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=DEPLOYED)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if DEPLOYED else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = DEPLOYED
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=DEPLOYED)
if TRUSTED_PROXY_COUNT:
    # TLS ends at the proxy; without this the HTTPS redirect would loop.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# LOG_FORMAT=json (the default outside DEBUG): one JSON object per line, with the request id and
# order id (lib.requestlog); plain lines for a person at a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "lib.requestlog.ContextFilter"}},
    "formatters": {
        "plain": {
            "()": "lib.requestlog.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "lib.requestlog.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-tasks' own lines ("Task id=... state=...") would double atelier.task's.
    "loggers": {"django.tasks": {"level": "WARNING"}, "django_tasks_db": {"level": "INFO"}},
}

# --- Chains -----------------------------------------------------------------------------------
# local: `manage.py devchain` serves both chains on loopback and writes its keys and token
# addresses to DEVCHAIN_STATE; rpc: public nodes, with keys and addresses from the environment.
CHAIN_MODE = env.str("CHAIN_MODE", default="local" if DEBUG else "rpc")
if CHAIN_MODE not in ("local", "rpc"):
    raise ImproperlyConfigured(f"CHAIN_MODE must be local or rpc, not {CHAIN_MODE!r}.")
# Local chains outside DEBUG (a demo server, the benchmark, the test suite) only when asked for.
ALLOW_LOCAL_CHAIN = env.bool("ALLOW_LOCAL_CHAIN", default=False)
if CHAIN_MODE == "local" and not DEBUG and not ALLOW_LOCAL_CHAIN:
    raise ImproperlyConfigured(
        "CHAIN_MODE=local with DEBUG off: payments would be checked against the local devchain and its "
        "test keys, and the demo wallet would sign in for anyone. Use CHAIN_MODE=rpc in production, or "
        "set ALLOW_LOCAL_CHAIN=true for a demo server."
    )
DEVCHAIN_STATE = Path(env.str("DEVCHAIN_STATE", default=str(DATA_DIR / "devchain.json")))
SOLANA_PORT = env.int("SOLANA_PORT", default=8899)
BASE_PORT = env.int("BASE_PORT", default=8545)
SOLANA_RPC_URL = env.str("SOLANA_RPC_URL", default=f"http://127.0.0.1:{SOLANA_PORT}")
BASE_RPC_URL = env.str("BASE_RPC_URL", default=f"http://127.0.0.1:{BASE_PORT}")
CHAIN_RPC_TIMEOUT_SECONDS = env.float("CHAIN_RPC_TIMEOUT_SECONDS", default=10.0)
# Secrets and addresses; in local mode, empty values are filled from DEVCHAIN_STATE.
SOLANA_USDC_MINT = env.str("SOLANA_USDC_MINT", default="")
SOLANA_ESCROW_SECRET = env.str("SOLANA_ESCROW_SECRET", default="")  # base58 64-byte keypair
BASE_USDC_ADDRESS = env.str("BASE_USDC_ADDRESS", default="")
BASE_ESCROW_PRIVATE_KEY = env.str("BASE_ESCROW_PRIVATE_KEY", default="")  # 0x hex
# Least privilege for the hot wallet: only the processes that sign outgoing transfers (the workers)
# hold the keys above. App servers (ATELIER_ROLE=app, set by deploy/gunicorn.conf.py) run with the
# public addresses alone, never load a key (not even the devchain's), and refuse to start with one
# in their environment unless APP_SERVER_HOLDS_KEYS is true (docs/deploy.md).
SOLANA_ESCROW_ADDRESS = env.str("SOLANA_ESCROW_ADDRESS", default="")
BASE_ESCROW_ADDRESS = env.str("BASE_ESCROW_ADDRESS", default="")
ATELIER_ROLE = env.str("ATELIER_ROLE", default="")
APP_SERVER_HOLDS_KEYS = env.bool("APP_SERVER_HOLDS_KEYS", default=False)
HOLDS_HOT_WALLET_KEYS = ATELIER_ROLE != "app" or APP_SERVER_HOLDS_KEYS
if not HOLDS_HOT_WALLET_KEYS and (SOLANA_ESCROW_SECRET or BASE_ESCROW_PRIVATE_KEY):
    raise ImproperlyConfigured(
        "A hot-wallet key (SOLANA_ESCROW_SECRET or BASE_ESCROW_PRIVATE_KEY) is set for an app server: only the "
        "workers that sign outgoing transfers hold them. Give app servers SOLANA_ESCROW_ADDRESS and "
        "BASE_ESCROW_ADDRESS instead, or set APP_SERVER_HOLDS_KEYS=true to run them with the keys anyway."
    )
# The hot wallet pays every payout's, refund's and return's fee in the chain's own coin: below this
# (lamports; wei) /readyz warns and the metric shows it. 0.05 SOL is ~10,000 Solana transfers.
HOT_WALLET_FEE_FLOOR = {
    "solana": env.int("SOLANA_HOT_WALLET_FLOOR_LAMPORTS", default=50_000_000),
    "base": env.int("BASE_HOT_WALLET_FLOOR_WEI", default=10**15),
}
# A Base payment counts once its block has this many confirmations.
BASE_CONFIRMATIONS = env.int("BASE_CONFIRMATIONS", default=12)
# Where the order page links a transaction: a URL with `{tx}` in it, per chain (empty: no link, as on
# the local devchains), e.g. https://explorer.solana.com/tx/{tx} or https://basescan.org/tx/{tx}.
SOLANA_EXPLORER_TX_URL = env.str("SOLANA_EXPLORER_TX_URL", default="")
BASE_EXPLORER_TX_URL = env.str("BASE_EXPLORER_TX_URL", default="")

# The scheduler puts a task RUNNING this long back in the queue (its worker died): longer than any
# task takes (payouts and webhooks take seconds), or a slow task would run twice at once.
REQUEUE_STALE_AFTER_SECONDS = env.int("REQUEUE_STALE_AFTER_SECONDS", default=300)

# Background work: django.tasks on the database queue (`manage.py db_worker`).
TASKS = {"default": {"BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}
