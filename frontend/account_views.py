"""The signed-in user's own pages: account settings, API tokens, and the invitation they
opened (server-rendered, thin).

Every page asks the policy (``accounts.access``) and calls a service for every change;
templates receive ready booleans, never rules. Token creation and invitation acceptance
answer with the page itself: a token's secret is shown once and must not be stored anywhere.
"""

from __future__ import annotations

from datetime import timedelta

from allauth.account.models import EmailAddress
from allauth.account.views import SignupView
from allauth.socialaccount.providers.openid_connect import views as oidc_views
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from requests import RequestException

from accounts import selectors, services
from accounts.adapters import INVITATION_SESSION_KEY, AccountAdapter, sso_error_response
from accounts.models import ApiToken, Invitation
from core.errors import DomainError
from frontend.common import request_user
from frontend.errors import form_errors

TOKEN_EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("366", "1 year"), ("", "Never")]


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    context = {
        "teams": selectors.teams_visible_to(user).filter(memberships__user=user),
        "token_count": selectors.tokens_of(user).filter(revoked_at__isnull=True).count(),
        "email_verified": EmailAddress.objects.filter(user=user, verified=True).exists(),
    }
    return render(request, "accounts/settings.html", context)


def _user_scope(value: str) -> str:
    """The personal token form offers read and write; a SCIM token is made on the staff page."""
    return "" if value == ApiToken.Scope.SCIM else value


@login_required
def tokens_page(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    issued: services.IssuedToken | None = None
    status = 200
    if request.method == "POST":
        days = request.POST.get("expires_in_days", "")
        if days not in {value for value, _ in TOKEN_EXPIRY_CHOICES}:
            messages.error(request, "Choose an expiry from the list.")
            status = 400
        else:
            try:
                issued = services.token_create(
                    user=user,
                    name=request.POST.get("name", ""),
                    scope=_user_scope(request.POST.get("scope", "")),
                    expires_at=timezone.now() + timedelta(days=int(days)) if days else None,
                )
            except DomainError as exc:
                messages.error(request, exc.message)
                status = 400
    now = timezone.now()
    tokens = [
        (token, token.revoked_at is None and (token.expires_at is None or token.expires_at > now))
        for token in selectors.tokens_of(user)
    ]
    context = {
        "tokens": tokens,
        "issued": issued,
        "expiry_choices": TOKEN_EXPIRY_CHOICES,
        "scopes": [ApiToken.Scope.READ, ApiToken.Scope.WRITE],
    }
    # SECURITY: the raw token is in this one response only (never in a message or the session).
    response = render(request, "accounts/tokens.html", context, status=status)
    if issued is not None:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    user = request_user(request)
    token = selectors.tokens_of(user).filter(pk=token_id[:32]).first()
    if token is None:
        raise Http404("Not found.")
    services.token_revoke(token=token, actor=user)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("tokens")


# --- invitations ------------------------------------------------------------------------------------


def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link. Its secret is moved into the session at once and the browser is
    sent to ``/invitations/``, so the secret is in the URL of this one request only: never
    in a page's address (history, bookmarks, screenshots), never in a Referer header, and
    never in a 4xx log line (unknown links are redirected like valid ones)."""
    # SECURITY: the bounded, well-formed raw value is kept for invitation_find; nothing is logged.
    well_formed = isinstance(token, str) and token.startswith(services.INVITATION_PREFIX) and len(token) <= 200
    request.session[INVITATION_SESSION_KEY] = token if well_formed else ""  # "": a link, but no invitation
    response = redirect("invitation")
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def invitation_page(request: HttpRequest) -> HttpResponse:
    """The invitation opened in this browser (see invitation_link). Signed out: it stays in
    the session (it opens sign-up in invite-only mode) and the page offers sign-in or
    sign-up, which come back here. Accepting (POST) needs a signed-in user."""
    raw = request.session.get(INVITATION_SESSION_KEY)
    invitation = services.invitation_find(raw) if isinstance(raw, str) else None
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?next={reverse('invitation')}")
    if invitation is None:
        if request.method == "POST":
            messages.error(request, "There is no valid invitation open in this browser.")
            return redirect("invitation")
        opened = raw is not None
        return _invitation_response(request, {"invitation": None, "opened": opened}, status=404 if opened else 200)
    if not request.user.is_authenticated:
        here = reverse("invitation")
        return _invitation_response(
            request,
            {
                "invitation": invitation,
                "login_url": f"{reverse('login')}?next={here}",
                "signup_url": f"{reverse('account_signup')}?next={here}",
                "can_sign_up": AccountAdapter(request).is_open_for_signup(request),
            },
        )
    user = request_user(request)
    wrong_account = invitation.invitee_id is not None and invitation.invitee_id != user.pk
    if request.method == "POST" and not wrong_account:
        with form_errors(request):
            services.invitation_accept(raw=raw, user=user)  # type: ignore[arg-type]
            request.session.pop(INVITATION_SESSION_KEY, None)
            if invitation.project is not None:
                project = invitation.project
                messages.success(request, f"You are now {invitation.project_role_label} of {project.path}.")
                return redirect("project", project.team.name, project.name)
            messages.success(request, f"You joined {invitation.team.name}.")
            return redirect("team", invitation.team.name)
    return _invitation_response(request, {"invitation": invitation, "wrong_account": wrong_account})


def _invitation_response(request: HttpRequest, context: dict[str, object], status: int = 200) -> HttpResponse:
    # The site's Referrer-Policy (same-origin) stays: this address holds no secret, and with
    # no-referrer browsers send "Origin: null" on the form's POST, which CSRF refuses.
    response = render(request, "accounts/invitation.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _opened_invitation(request: HttpRequest) -> Invitation | None:
    raw = request.session.get(INVITATION_SESSION_KEY) if hasattr(request, "session") else None
    return services.invitation_find(raw) if isinstance(raw, str) else None


class InvitedSignupView(SignupView):  # type: ignore[misc]
    """allauth's sign-up, told about the invitation opened in this browser (if any): the
    form starts with the invited address (and a username made from it), and the page names
    the team or project the account is for. allauth still decides who may sign up."""

    def get_initial(self) -> dict[str, object]:
        initial: dict[str, object] = super().get_initial()
        invitation = _opened_invitation(self.request)
        if invitation is not None and invitation.email and not initial.get("email"):
            initial["email"] = invitation.email
            initial.setdefault("username", AccountAdapter(self.request).generate_unique_username([invitation.email]))
        return initial

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context: dict[str, object] = super().get_context_data(**kwargs)
        context["invitation"] = _opened_invitation(self.request)
        return context


signup = InvitedSignupView.as_view()


@login_not_required
def oidc_login(request: HttpRequest, provider_id: str) -> HttpResponse:
    """allauth's OpenID Connect login view, with a clear page (and a log line) when the
    provider's discovery document cannot be fetched instead of a server error."""
    try:
        response: HttpResponse = oidc_views.login(request, provider_id)
    except RequestException as exc:
        return sso_error_response(request, provider_id, exc, "discovery")
    return response
