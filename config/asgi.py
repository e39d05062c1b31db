from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models (the consumers do).
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from core import embedded  # noqa: E402

if settings.CELERY_TASK_ALWAYS_EAGER and settings.EMBEDDED_SCHEDULER:
    # The embedded profile has no beat and no worker: its periodic and delayed tasks run here.
    embedded.start()

from compat.fastpath import MlflowLogFastPath  # noqa: E402
from config.middleware import SyncChainASGIHandler  # noqa: E402
from experiments.hotpath import LogFastPath  # noqa: E402

# Django's ASGIHandler, with the middleware chain and view in one thread hop.
django_asgi_app = SyncChainASGIHandler()
# In front of it, the log call's fast path (experiments/hotpath.py); everything else passes through.
http_app = MlflowLogFastPath(LogFastPath(django_asgi_app))  # and MLflow's log calls (compat/fastpath.py)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from live.security import OriginCheck  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_app,
        # SECURITY: the Origin header must match ALLOWED_HOSTS, so another site cannot
        # open a socket with a visitor's session cookie; a client sending no Origin (not a
        # browser) gets its cookies removed and must bring a token (live/security.py).
        "websocket": OriginCheck(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
