"""Settings, all from the environment (12-factor). See the configuration table in README.md.

Development values for SECRET_KEY and FIELD_ENCRYPTION_KEY come from a git-ignored `.env`
(``python -m connector.envfile`` makes it). With DEBUG off the app refuses to start without them.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from connector.envfile import load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
load_env_file(BASE_DIR / ".env")


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env("ML_DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

_HOW_TO_MAKE_KEYS = (
    "Run `python -m connector.envfile` (development) or set it in the environment. "
    "FIELD_ENCRYPTION_KEY must be a Fernet key: "
    "python -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())'. "
    "Keep FIELD_ENCRYPTION_KEY safe: stored credentials cannot be read without it."
)
SECRET_KEY = env("SECRET_KEY")
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY")
if not SECRET_KEY or not FIELD_ENCRYPTION_KEY:
    missing = [n for n, v in (("SECRET_KEY", SECRET_KEY), ("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)) if not v]
    if not DEBUG:
        raise ImproperlyConfigured(f"{', '.join(missing)} not set. {_HOW_TO_MAKE_KEYS}")
    from connector.envfile import ensure_dev_env_file

    ensure_dev_env_file(BASE_DIR / ".env")
    load_env_file(BASE_DIR / ".env")
    SECRET_KEY = env("SECRET_KEY")
    FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY")

_WEAK_SECRET_PREFIX = "django-insecure-"


def weak_secret_key_reason(key: str) -> str | None:
    """Why a SECRET_KEY is too weak to run with (Django's own --deploy thresholds), or None."""
    if key.startswith(_WEAK_SECRET_PREFIX):
        return "it is a generated development key"
    if len(key) < 50:
        return f"it is {len(key)} characters long (at least 50 are needed)"
    if len(set(key)) < 5:
        return "it has fewer than 5 distinct characters"
    return None


if not DEBUG and (_weak := weak_secret_key_reason(SECRET_KEY)):
    # Refused, not warned: sessions, CSRF tokens and password-reset links are all signed with it.
    raise ImproperlyConfigured(f"SECRET_KEY is too weak: {_weak}. Make a new one with "
                               "python -c 'import secrets;print(secrets.token_urlsafe(50))'.")

ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "encrypted_model_fields",
    "axes",
    "accounts",
    "mappings",
    "connector",
    "connector.bigcommerce",
    "connector.adobe",
    "agentapi",
    "demo",  # `make run`'s management commands (runstack, seed_demo, demo_order); no models
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "connector.security.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lock-out answer.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, as django-axes asks: it refuses a locked-out client before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "connector.urls"
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
            ]
        },
    }
]
WSGI_APPLICATION = "connector.wsgi.application"
ASGI_APPLICATION = "connector.asgi.application"

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'ml-connector.sqlite3'}")
# Persistent connections: a new PostgreSQL connection per webhook would cost more than the insert.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
                                              conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, for tests too: the worker, web and agent API processes that the
    # end-to-end tests start must see the same database as the test process.
    # The pid keeps concurrent test sessions on one machine apart.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-ml-connector-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES and env_bool("DB_POOL"):
    # The web process (connector/asgi.py sets DB_POOL): under ASGI Django runs each request's
    # synchronous part on a thread of its own, so a persistent connection is never reused and every
    # agent API call or admin page opened a new PostgreSQL connection (measured: one session per
    # request, 341 in a 3,000-order run), leaving the old one open until its thread was collected.
    # A pool (psycopg_pool) lends each request a connection and bounds how many the process holds.
    # Worker processes keep one persistent connection each: a prefork child runs one task at a time.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 2), "max_size": env_int("DB_POOL_MAX", 20),
        "timeout": env_int("DB_POOL_TIMEOUT", 20)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
FORMS_URLFIELD_ASSUME_HTTPS = True
WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1_048_576)

# -- Celery ---------------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport. It needs no server and no extra package,
# survives restarts (messages are files), and works for several worker processes on one
# machine. Production sets CELERY_BROKER_URL=redis://...
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.rstrip("/") == "filesystem:":
    # The transport ignores the host, but kombu warns "No hostname was supplied" on every
    # connection without one: name it, so a newcomer's first run shows no noise.
    CELERY_BROKER_URL = "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    # kombu's transport with atomic message files (connector/fsbroker.py says why).
    CELERY_BROKER_TRANSPORT = "connector.fsbroker:Transport"
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),  # kombu's default is ./control in the cwd
        # The transport checks its folder for new messages this often (default 1 s): webhook →
        # posted latency on the embedded default is dominated by it.
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Redis that coordinates across processes (rate-limit budgets, agent wake-ups). Defaults to the
# broker when the broker is Redis; on the embedded default the database does the job.
COORDINATION_REDIS_URL = env("COORDINATION_REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
# Posting tasks acknowledge only after they finish: a worker killed mid-task leaves the message
# on the broker for another worker. Safe because every task is idempotent (unique constraints).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless this is
# set: a new PostgreSQL session per task (measured: two thirds of a 3,000-order run's 250 sessions,
# each a backend fork and a cold catalog cache). With it, connector/celery.py hands connections back
# to Django's own rules after each task instead (close_old_connections: CONN_MAX_AGE, health check,
# a connection that saw an error is checked before reuse).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Fixed entries (synced into the database schedule at beat start). Per-integration intervals are
# Integration fields edited in admin; these ticks only look for integrations that are due.
SWEEP_GRACE_SECONDS = env_int("SWEEP_GRACE_SECONDS", 60)  # pending this long past due = message lost
# Poll scheduling (connector/services/scheduling.py): the tick that hands out due polls (a poll starts
# at most this late plus its queue wait), how many integrations one claim takes, how many claims one
# tick may make, and the most a poll's time moves at random (capped at 10 % of its interval).
POLL_TICK_SECONDS = env_int("POLL_TICK_SECONDS", 5)
POLL_DISPATCH_BATCH = env_int("POLL_DISPATCH_BATCH", 500)
POLL_DISPATCH_MAX_BATCHES = env_int("POLL_DISPATCH_MAX_BATCHES", 20)
POLL_JITTER_SECONDS = env_int("POLL_JITTER_SECONDS", 3)
POLL_QUEUE_MAX = env_int("POLL_QUEUE_MAX", 500)  # no more polls sent while the broker queue is this deep
POLL_MIN_INTERVAL_SECONDS = env_int("POLL_MIN_INTERVAL_SECONDS", 30)  # the bench and tests shorten it
# An idle BigCommerce poll reads only the orders feed; the refunds feed is read when an order changed
# (a refund changes its order) and otherwise at least this often.
REFUND_POLL_MAX_SECONDS = env_int("REFUND_POLL_MAX_SECONDS", 3600)
CELERY_BEAT_SCHEDULE = {
    # Every store's polls: one entry hands out the integrations that are due (Integration.next_poll_at).
    "dispatch due polls": {"task": "connector.dispatch_due_polls", "schedule": POLL_TICK_SECONDS},
    "push due stock": {"task": "connector.push_due_stock", "schedule": env_int("STOCK_TICK_SECONDS", 30)},
    "worker heartbeat": {"task": "connector.worker_heartbeat", "schedule": 30, "args": ["beat→worker"]},
    "prune archives": {"task": "connector.prune_archives", "schedule": 6 * 3600},
    "sweep lost work": {"task": "connector.sweep_lost_work", "schedule": env_int("SWEEP_TICK_SECONDS", 30)},
    "e-mail notifications": {"task": "connector.dashboard.send_notifications",
                             "schedule": env_int("NOTIFY_TICK_SECONDS", 60)},
}
# The poll dispatcher's tick has a queue of its own, which every worker also consumes: in the shared
# queue it waited behind the polls it had sent a tick before (700 of them with 2,000 integrations on a
# busy machine), so every poll after it started late as well. A worker takes from both in turn.
CELERY_TASK_QUEUES = (Queue("celery"), Queue("ticks"))
CELERY_TASK_ROUTES = {"connector.dispatch_due_polls": {"queue": "ticks"}}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# -- E-mail (notifications) -----------------------------------------------------------------
# SMTP from the environment; without EMAIL_HOST nothing is sent (the notifications are still
# recorded, with the reason, in admin → Notifications).
EMAIL_HOST = env("EMAIL_HOST", "") or ""
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "ml-connector <connector@localhost>")
DAILY_DIGEST_HOUR = env_int("DAILY_DIGEST_HOUR", 7)  # in the store's time zone

# -- DRF --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"agent": env("AGENT_THROTTLE_RATE", "50/s")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ml-connector agent API",
    "DESCRIPTION": "The API the local agent next to desktop Sage calls. See agentapi/PROTOCOL.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if COORDINATION_REDIS_URL:
    CACHES = {"default": {"BACKEND": "connector.cache.SharedPoolRedisCache", "LOCATION": COORDINATION_REDIS_URL}}

LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# -- Security (see SECURITY.md) ---------------------------------------------------------------
_SERVED_OVER_HTTPS = PUBLIC_BASE_URL.lower().startswith("https://")
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
# On by default when the public URL is https (behind a TLS-terminating proxy, also set
# SECURE_PROXY_SSL_HEADER_FORWARDED_PROTO=1 so Django knows the request came in over https).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _SERVED_OVER_HTTPS and not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _SERVED_OVER_HTTPS and not DEBUG else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
if env_bool("SECURE_PROXY_SSL_HEADER_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'")

# Outbound URLs an owner types (store API, Sage server, OAuth token URL) must be https to a public
# address; the demo and the tests talk to local emulators, so DEBUG allows loopback and private hosts.
OUTBOUND_ALLOW_PRIVATE_HOSTS = env_bool("OUTBOUND_ALLOW_PRIVATE_HOSTS", DEBUG)
# Where the public keys of Adobe I/O Events signatures are fetched (x-adobe-public-key1/2-path);
# the sandbox Adobe Commerce serves its own. Checked like every outbound URL before each fetch.
ADOBE_IO_KEY_HOST = env("ADOBE_IO_KEY_HOST", "https://static.adobeioevents.com")

# CSV uploads of mappings.
MAPPINGS_CSV_MAX_BYTES = env_int("MAPPINGS_CSV_MAX_BYTES", 2_000_000)
MAPPINGS_CSV_MAX_ROWS = env_int("MAPPINGS_CSV_MAX_ROWS", 20_000)

# Webhooks verified without a timestamp (X-BC-Signature, the secret header) are refused when their
# created_at is older than this, and their dedup keys are kept at least this long. BigCommerce
# retries a failing hook for about 48 hours before deactivating it, so 72 hours leaves a margin.
WEBHOOK_REPLAY_WINDOW_SECONDS = env_int("WEBHOOK_REPLAY_WINDOW_SECONDS", 72 * 3600)

# Brute force (django-axes for admin logins and agent keys): per client address, locked after
# AXES_FAILURE_LIMIT wrong tries for AXES_COOLOFF_MINUTES; an operator lifts it under
# Axes → Access attempts in admin (or `manage.py axes_reset_ip <address>`).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
# Behind N reverse proxies the client address is the N-th from the right in X-Forwarded-For.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "connector.security.client_ip"
# Wrong agent keys: at most this many per client address per window, then 429 until the window ends.
AGENT_AUTH_FAILURE_LIMIT = env_int("AGENT_AUTH_FAILURE_LIMIT", 20)
AGENT_AUTH_WINDOW_SECONDS = env_int("AGENT_AUTH_WINDOW_SECONDS", 300)
AXES_ENABLE_ADMIN = True
