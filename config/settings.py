"""Assay's one settings module, read from the environment (see ``config/env.py``).

With no variable set this is the embedded default: SQLite under ``var/``, artifacts under
``var/artifacts``, Celery tasks run in-process, the in-memory channel layer. Setting
``DATABASE_URL``, ``REDIS_URL`` and ``ASSAY_ARTIFACTS=s3://…`` gives the production
profile; nothing else differs between the two.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF
from whitenoise.compress import Compressor

from config.env import (
    env_bool,
    env_choice,
    env_int,
    env_json,
    env_list,
    env_str,
    oidc_apps,
    oidc_group_map,
    oidc_origins,
    sso_required_domains,
)

# Lets admin.ModelAdmin[Model] and friends be subscripted at run time (for mypy).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ASSAY_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("ASSAY_DEBUG", False)


def _secret_key() -> str:
    """ASSAY_SECRET_KEY, or for the embedded profile a random key kept in ``var/``.

    # SECURITY: there is no built-in default key; a key is never shared between installs.
    """
    from_env = env_str("ASSAY_SECRET_KEY", "")
    if from_env:
        return from_env
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ASSAY_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("ASSAY_CSRF_TRUSTED_ORIGINS", ["http://127.0.0.1:8000", "http://localhost:8000"])
# The public base URL, used to build absolute links (run URLs for the SDK, e-mails).
PUBLIC_URL = env_str("ASSAY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "csp",
    "accounts",
    "experiments",
    "artifacts",
    "registry",
    "reviews",
    "compat",
    "automations",
    "reports",
    "live",
    "frontend",
    # After the project's apps, so that frontend/templates/ overrides allauth's templates.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
]

MIDDLEWARE = [
    "core.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before any view (and before CSRF reads a form): NUL in the URL, bodies over the limit.
    "core.http.RequestGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.pages.DomainErrorMiddleware",
    # Under ASGI the chain and the view run in one thread hop (config/middleware.py).
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.navigation",
                "frontend.context_processors.notifications",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'assay.sqlite3'}")
DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("ASSAY_DB_CONN_MAX_AGE", 0))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("ASSAY_DB_POOL", True):
    # Under ASGI each request runs in its own thread context, so CONN_MAX_AGE never reuses a
    # connection (and leaks one per request until GC); psycopg's pool does reuse them.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("ASSAY_DB_POOL_MIN", 2),
        "max_size": env_int("ASSAY_DB_POOL_MAX", 16),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side prepared statements for the hot path's queries (core/querycache.py's
    # prepared_cursor): psycopg prepares a statement on a connection after this many runs.
    # Off (ASSAY_DB_PREPARE=false) behind a pooler in transaction mode, such as PgBouncer's.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env_bool("ASSAY_DB_PREPARE", True) else None
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while a run is being logged.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: broker, channel layer, cache ------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("ASSAY_CACHE_PREFIX", "assay"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's async pool refuses (MaxConnectionsError) past 100 connections by
                # default, and redis-py 8's 5 s socket timeout equals the layer's 5 s BZPOPMIN:
                # a busy loop then reads a timeout and the socket being served dies with it.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("ASSAY_CHANNELS_MAX_CONNECTIONS", 512),
                        "socket_timeout": 30,
                    }
                ],
                "prefix": env_str("ASSAY_CHANNELS_PREFIX", "assay:channels"),
                # Messages waiting per socket before the layer drops them (a slow client); a
                # dropped event is a gap its consumer fills from the live event log.
                "capacity": env_int("ASSAY_CHANNELS_CAPACITY", 1000),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- live updates (live/): the per-topic event log and socket re-checks --------------------------
# Events kept per topic for reconnecting clients, and for how long (Redis, or in-process embedded).
ASSAY_LIVE_LOG_SIZE = env_int("ASSAY_LIVE_LOG_SIZE", 500)
ASSAY_LIVE_LOG_TTL = env_int("ASSAY_LIVE_LOG_TTL", 24 * 3600)
ASSAY_LIVE_PREFIX = env_str("ASSAY_LIVE_PREFIX", "assay:live")
# Every open socket re-checks its subscriptions this often (access changes made through the
# models are broadcast at once; this catches the rest, e.g. a revoked token).
ASSAY_LIVE_RECHECK_SECONDS = env_int("ASSAY_LIVE_RECHECK_SECONDS", 30)
# A socket without a session or Authorization header must send {"type": "auth"} this soon.
ASSAY_LIVE_AUTH_TIMEOUT = env_int("ASSAY_LIVE_AUTH_TIMEOUT", 10)

# Webhooks (automations): addresses beyond the SSRF rule (CIDRs or host names), and retries.
WEBHOOK_ALLOW = env_list("ASSAY_WEBHOOK_ALLOW", [])
WEBHOOK_RETRY_BASE_MS = env_int("ASSAY_WEBHOOK_RETRY_BASE_MS", 30_000)
WEBHOOK_MAX_ATTEMPTS = env_int("ASSAY_WEBHOOK_MAX_ATTEMPTS", 8)
# The dispatcher (automations/services.py) claims up to WEBHOOK_BATCH due deliveries at a
# time for WEBHOOK_LEASE_SECONDS (a killed worker's claim is taken again after it) and sends
# them with WEBHOOK_SEND_THREADS threads per worker process.
WEBHOOK_BATCH = env_int("ASSAY_WEBHOOK_BATCH", 100)
WEBHOOK_LEASE_SECONDS = env_int("ASSAY_WEBHOOK_LEASE_SECONDS", 60)
WEBHOOK_SEND_THREADS = env_int("ASSAY_WEBHOOK_SEND_THREADS", 16)
# After a batch smaller than WEBHOOK_BATCH, the dispatcher waits this long for the next one to
# fill (commits arriving one by one would otherwise make batches of one).
WEBHOOK_BATCH_WAIT_MS = env_int("ASSAY_WEBHOOK_BATCH_WAIT_MS", 50)
# A process that saw a dispatcher awake sends no wake-up for this long after; a dispatcher
# going idle looks once more this long after it says so (automations/services.py: kick).
WEBHOOK_KICK_WINDOW_MS = env_int("ASSAY_WEBHOOK_KICK_WINDOW_MS", 250)
# Finished deliveries (and their attempts) older than this are deleted by a daily task.
WEBHOOK_RETENTION_DAYS = env_int("ASSAY_WEBHOOK_RETENTION_DAYS", 30)
# Metric alerts: how long a process keeps a project's rules (and experiments' best values)
# before reading them again; a rule changed in another process applies within this time.
ALERT_RULES_TTL = env_int("ASSAY_ALERT_RULES_TTL", 10)

# "memory://" alone makes kombu warn "No hostname was supplied" whenever a task is queued.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("ASSAY_CELERY_QUEUE", "assay")
# A message whose worker died unacknowledged goes back to the queue after this many
# seconds (Redis transport); processing is idempotent, so a redelivery is harmless.
# Workers sweep for such messages every fifth of that timeout (at least 1 s, at most 60 s;
# kombu's own default sweeps only every 100 s, longer than a short timeout).
_VISIBILITY_TIMEOUT = env_int("ASSAY_CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(60, _VISIBILITY_TIMEOUT // 5)),
    "unacked_restore_throttle": 1,
}
# Periodic work (run `celery -A config beat` once per deployment). In the embedded profile
# (eager tasks) the server process runs this schedule itself (core/embedded.py) unless
# ASSAY_EMBEDDED_SCHEDULER is off; entries must be in seconds for it.
EMBEDDED_SCHEDULER = env_bool("ASSAY_EMBEDDED_SCHEDULER", True)
CELERY_BEAT_SCHEDULE = {
    "artifacts-sweep": {"task": "artifacts.tasks.artifacts_sweep_task", "schedule": 15 * 60.0},
    # Projects' retention policies (artifacts/retention.py); projects without one are skipped.
    "retention-enforce": {"task": "artifacts.tasks.retention_enforce_task", "schedule": 24 * 3600.0},
    # Metric alerts of kind "stalled" (automations/alerts.py): runs that went quiet.
    "alerts-stalled": {"task": "automations.alerts_stalled", "schedule": 60.0},
    # Webhook deliveries past ASSAY_WEBHOOK_RETENTION_DAYS (automations/services.py).
    # Webhook deliveries whose wake-up or timer was lost (automations/services.py dispatch).
    "webhook-dispatch": {"task": "automations.dispatch", "schedule": 60.0},
    "webhook-deliveries-prune": {"task": "automations.deliveries_prune", "schedule": 24 * 3600.0},
}

# --- artifacts ---------------------------------------------------------------------------
# "file" (a local directory) or "s3://bucket"; see artifacts/storage.py (issue 5).
ASSAY_ARTIFACTS = env_str("ASSAY_ARTIFACTS", str(VAR_DIR / "artifacts"))
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "")
S3_ACCESS_KEY = env_str("S3_ACCESS_KEY", "")
S3_SECRET_KEY = env_str("S3_SECRET_KEY", "")
S3_REGION = env_str("S3_REGION", "us-east-1")
# The endpoint clients use for presigned URLs when it differs from the server's (a proxy).
S3_PUBLIC_ENDPOINT_URL = env_str("S3_PUBLIC_ENDPOINT_URL", "")
ASSAY_MAX_ARTIFACT_BYTES = env_int("ASSAY_MAX_ARTIFACT_BYTES", 5 * 1024**3)
# Above this size an upload is multipart, in parts of ASSAY_UPLOAD_PART_BYTES (S3: ≥ 5 MiB).
ASSAY_MULTIPART_THRESHOLD = env_int("ASSAY_MULTIPART_THRESHOLD", 64 * 1024**2)
ASSAY_UPLOAD_PART_BYTES = env_int("ASSAY_UPLOAD_PART_BYTES", 64 * 1024**2)
ASSAY_UPLOAD_URL_EXPIRY_SECONDS = env_int("ASSAY_UPLOAD_URL_EXPIRY_SECONDS", 3600)
ASSAY_DOWNLOAD_URL_EXPIRY_SECONDS = env_int("ASSAY_DOWNLOAD_URL_EXPIRY_SECONDS", 300)
# Uploads declared but never completed are aborted and removed after this many hours.
ASSAY_UPLOAD_EXPIRY_HOURS = env_int("ASSAY_UPLOAD_EXPIRY_HOURS", 24)
# Artifacts left uploaded/processing this long (lost task, Redis restart) are queued again.
ASSAY_ARTIFACT_STALE_MINUTES = env_int("ASSAY_ARTIFACT_STALE_MINUTES", 30)
# Test-only: seconds each processing sleeps, to kill a worker in the middle of it.
ASSAY_TEST_PROCESSING_DELAY = env_int("ASSAY_TEST_PROCESSING_DELAY", 0)

# --- auth (django-allauth) -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Sign-up: "open", "invite" (only with a team invitation; the default) or "closed".
ASSAY_SIGNUP = env_choice("ASSAY_SIGNUP", "invite", ["open", "invite", "closed"])
# New users through an OpenID Connect provider (the provider decides who may sign in).
ASSAY_OIDC_SIGNUP = env_bool("ASSAY_OIDC_SIGNUP", True)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_EMAIL_VERIFICATION = env_choice("ASSAY_EMAIL_VERIFICATION", "optional", ["none", "optional", "mandatory"])
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_REDIRECT_URL = "login"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Assay] "
# Counted in the cache: Redis in production (shared by all processes), local memory embedded.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "change_password": "5/m/user",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Assay"
OIDC_APPS = oidc_apps(env_json("ASSAY_OIDC_PROVIDERS", []))
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": OIDC_APPS}}
SOCIALACCOUNT_STORE_TOKENS = False
# An OIDC sign-in whose provider asserts a *verified* e-mail signs in (and links to) the
# existing account with that address; an unverified claim never does (accounts/adapters.py).
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
# Groups become teams at every OIDC sign-in (accounts/sso.py): the claim holding the groups
# and "group=team:role,…" (memberships so made are managed by the provider).
ASSAY_OIDC_GROUPS_CLAIM = env_str("ASSAY_OIDC_GROUPS_CLAIM", "groups")
ASSAY_OIDC_GROUP_MAP = oidc_group_map(env_str("ASSAY_OIDC_GROUP_MAP", ""))
# Seconds an ID token's iat/exp may be off this server's clock (accounts/adapters.py clock_skew).
ASSAY_OIDC_CLOCK_LEEWAY = env_int("ASSAY_OIDC_CLOCK_LEEWAY", 120)
# SSO required: users whose e-mail is in these domains ("*": everyone) cannot sign in with a
# password (API tokens keep working; superusers are exempt, the break-glass account).
ASSAY_SSO_REQUIRED_DOMAINS = sso_required_domains(env_list("ASSAY_SSO_REQUIRED_DOMAINS", []))

# --- e-mail (invitations, verification, password reset) -----------------------------------------
EMAIL_BACKEND = env_str("ASSAY_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("ASSAY_EMAIL_FROM", "Assay <assay@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_HOST = env_str("ASSAY_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("ASSAY_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("ASSAY_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("ASSAY_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("ASSAY_EMAIL_TLS", False)
EMAIL_TIMEOUT = env_int("ASSAY_EMAIL_TIMEOUT", 10)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.TokenScopePermission"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.FastJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Assay API",
    "DESCRIPTION": "Experiment tracking, model registry and model review. "
    "Authenticate with `Authorization: Bearer <token>`: create a token on the API tokens "
    "page ([/settings/tokens/](/settings/tokens/)) or `POST /api/v1/tokens/`; the SDK and "
    "CLI store it with `assay login`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package, not a CDN (CSP and offline installs).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body is documented as its serializer says (a field the server needs stays
    # required, e.g. a member's role), not as every field optional.
    "COMPONENT_SPLIT_PATCH": False,
    # Enum components (drf-spectacular's default hook), then every operation's error answers
    # with the one Error component, then the constraints the server enforces (core/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.add_error_responses",
        # Closed request bodies, path parameter shapes, links between operations.
        "core.openapi.add_constraints",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TeamRoleEnum": "accounts.models.Membership.Role",
        "TokenScopeEnum": "accounts.models.ApiToken.Scope",
        "ProjectRoleEnum": ["viewer", "writer", "maintainer", "admin"],
        "VisibilityEnum": "accounts.models.Project.Visibility",
    },
}
# Bounds on what one request may carry; documented in the OpenAPI schema and docs/api.md.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ASSAY_MAX_BODY_BYTES", 32 * 1024 * 1024)

# --- security headers ----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("ASSAY_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("ASSAY_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("ASSAY_HSTS_SECONDS", 0)
# With HSTS on, subdomains and preload follow unless turned off (check --deploy asks for both).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ASSAY_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("ASSAY_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("ASSAY_BEHIND_TLS_PROXY", False) else None
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        # Signing in through an OpenID Connect provider redirects the form's POST there.
        "form-action": [SELF, *oidc_origins(OIDC_APPS)],
    }
}

# --- static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
# collectstatic writes here and WhiteNoise serves from here, in every profile: `make run` and
# the test suite collect before serving (tests/static_files.py), the image at build time.
STATIC_ROOT = Path(env_str("ASSAY_STATIC_ROOT", str(VAR_DIR / "static")))
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Hashed names (app.3f2a9c81b0d4.js) and a gzip and a brotli copy of each file, made once by
# collectstatic: WhiteNoise answers a hashed name with "Cache-Control: max-age=315360000,
# public, immutable" and the smallest encoding the browser accepts. No finders at run time:
# a file that was not collected is not served, and {% static %} of an uncollected name fails
# loudly instead of linking an unversioned URL.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "frontend.static_files.StaticStorage"},
}
# Only the hashed copies are kept (and compressed): every page links through {% static %}.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
# Source maps (~15 MB, read by a developer's tools only) are served as they are: brotli at
# its best level over them made collectstatic take a minute and a half on this machine.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- logs and metrics (core/observability.py) ---------------------------------------------
# ASSAY_LOG_FORMAT=json for one JSON object per line (deploy/ sets it); every record carries
# the request id of the request or task that made it.
ASSAY_LOG_FORMAT = env_str("ASSAY_LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.observability.RequestIdFilter"},
        "refusal_traceback": {"()": "core.observability.RefusalTracebackFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ASSAY_LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("ASSAY_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["refusal_traceback"]},
        # Eager (embedded) tasks run inside the request: a "Task … succeeded" line for each
        # upload is noise on `make run`'s console. Workers keep it.
        **({"celery.app.trace": {"level": "WARNING"}} if CELERY_TASK_ALWAYS_EAGER else {}),
    },
}
# /metrics answers these addresses, or a bearer token when set; anyone else gets a 404.
ASSAY_METRICS_ALLOWED_IPS = env_list("ASSAY_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
ASSAY_METRICS_TOKEN = env_str("ASSAY_METRICS_TOKEN", "")
