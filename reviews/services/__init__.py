"""Every write of the reviews app: one function per use case, keyword-only, transactional.

Each function validates its whole input first, asks :mod:`reviews.policy` (through the
facts of ``reviews.selectors.request_facts``) and refuses with the rule's code; side effects
(check tasks, e-mail, live events) leave only after commit. Notifications are rows written
in the same transaction as what caused them: a mention is in the database before any push.

The modules, one seam each (callers import this package: ``services.review_submit(...)``):

* ``requests``: open, edit, push a candidate, close or reopen, merge;
* ``conversation``: reviews, their dismissal, comments;
* ``checks``: queue, re-run and run the checks, with their evaluators;
* ``notifications``: who mentions reach, notification rows, their e-mail, the user's own;
* ``settings``: the review policy of a model repository or a project (R10);
* ``inputs`` and ``base``: input checks and what every service shares.
"""

from __future__ import annotations

from reviews.services.checks import check_run, checks_rerun
from reviews.services.conversation import (
    comment_create,
    comment_delete,
    comment_update,
    review_dismiss,
    review_submit,
)
from reviews.services.inputs import suggested_title
from reviews.services.notifications import (
    notification_email,
    notification_preferences_update,
    notifications_mark_read,
    notify_about,
)
from reviews.services.requests import review_request_merge, review_request_open, review_request_update
from reviews.services.settings import (
    project_review_settings_update,
    review_settings_delete,
    review_settings_update,
)

__all__ = [
    "check_run",
    "checks_rerun",
    "comment_create",
    "comment_delete",
    "comment_update",
    "notification_email",
    "notification_preferences_update",
    "notifications_mark_read",
    "notify_about",
    "project_review_settings_update",
    "review_dismiss",
    "review_request_merge",
    "review_request_open",
    "review_request_update",
    "review_settings_delete",
    "review_settings_update",
    "review_submit",
    "suggested_title",
]
