"""The signed-in user's notification settings: which kinds of notification also arrive by
e-mail (every kind is always in the notification centre). The page the e-mails point to.

Thin: the same service as the API's PUT (``reviews.services.notification_preferences_update``)
checks the kinds; a refusal is a message naming the field (frontend/errors.py), status 400,
nothing saved.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from frontend.common import request_user
from frontend.errors import form_errors
from reviews import selectors, services
from reviews.models import Notification

KIND_HELP = {
    Notification.Kind.MENTION: "Someone @mentions you (or a team of yours) in a request, review, comment or report.",
    Notification.Kind.REVIEW_REQUESTED: "Someone asks you (or a team of yours) to review a request.",
    Notification.Kind.REVIEW_SUBMITTED: "Someone approves, comments on or requests changes to a request you follow.",
    Notification.Kind.NEW_CANDIDATE: "A request you follow gets a new candidate version.",
    Notification.Kind.CHECKS_FAILED: "A required check fails on a request you follow.",
    Notification.Kind.MERGED: "A request you follow is merged.",
    Notification.Kind.CLOSED: "A request you follow is closed.",
    Notification.Kind.REPORT_COMMENT: "Someone comments on a report you wrote or commented on.",
    Notification.Kind.METRIC_ALERT: "An alert rule you made fires on a run, or any rule fires on a run of yours.",
}


@login_required
def notification_settings_page(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    status = 200
    if request.method == "POST":
        chosen = request.POST.getlist("email")
        with form_errors(request, "E-mail preferences not saved", with_field=True):
            services.notification_preferences_update(user=user, email_kinds=chosen)
            messages.success(request, "E-mail preferences saved.")
            return redirect("notification-settings")
        status = 400
    else:
        chosen = selectors.email_kinds(user)
    kinds = [
        {"value": kind.value, "label": kind.label, "help": KIND_HELP[kind], "checked": kind.value in chosen}
        for kind in Notification.Kind
    ]
    return render(
        request,
        "reviews/notification_settings.html",
        {"kinds": kinds, "has_email": bool(user.email)},
        status=status,
    )
