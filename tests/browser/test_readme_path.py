"""Issue 16's "done when": README.md's path from a training script to ``production``, followed
step by step by two people in two browsers against a real ASGI server (uvicorn, websockets),
a real Celery worker and the example script run as the README runs it (the SDK, over HTTP).

admin creates a token on the token page, trains and registers ``digits-sgd`` v1 into a fresh
project, invites bob by e-mail from the project page; bob signs up through the link and joins;
admin opens the review request from the version page; bob comments with an @mention and
requests changes; admin registers v2 and pushes it; bob approves; admin merges. Each step
must appear in the other person's page live: the page that watches is never reloaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import Project, User
from registry.models import Alias, ModelVersion
from tests.browser.conftest import PASSWORD
from tests.browser.test_live import AsgiServer, asgi, never_reloaded, same_document, signed_in  # noqa: F401
from tests.celery_worker import celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
LIVE = 30_000  # ms: what a worker and a live update may take on a busy 2-core machine
DOCS = REPO / "docs"


def doc_shot(page: Page, name: str) -> None:
    """Refresh docs/screenshot-<name>.png, only when asked (ASSAY_SCREENSHOTS=1), as
    tests/browser/test_dashboard.py's test_docs_screenshots does."""
    if os.environ.get("ASSAY_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / f"screenshot-{name}.png"), full_page=True)


def run_example(base: str, token: str, home: Path, *extra: str) -> str:
    """README step 3 (and 7): ``python examples/sklearn_train.py --project admin/digits --register digits-sgd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {
        "ASSAY_URL": base,
        "ASSAY_TOKEN": token,
        "ASSAY_DIR": str(home / "assay"),
        "ASSAY_CONFIG_DIR": str(home / "config"),
        "PYTHONPATH": str(REPO / "sdk" / "src"),
    }
    command = [PYTHON, "examples/sklearn_train.py", "--project", "admin/digits", "--register", "digits-sgd", *extra]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"the example failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_readme_path_from_a_training_script_to_production_with_two_people(
    browser: Browser,
    asgi: AsgiServer,  # noqa: F811
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    base = asgi.url
    settings.PUBLIC_URL = base  # the links the API returns, and the local store's upload URLs
    # the worker publishes live events where this server's sockets listen
    monkeypatch.setenv("ASSAY_LIVE_PREFIX", settings.ASSAY_LIVE_PREFIX)
    monkeypatch.setenv("ASSAY_CHANNELS_PREFIX", settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"])
    monkeypatch.setenv("ASSAY_PUBLIC_URL", base)
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)  # README: createsuperuser

    with celery_worker(tmp_path):
        # 1-2. admin signs in and creates a write token on the token page
        admin = signed_in(browser, base, "admin")
        admin.goto(f"{base}/settings/tokens/")
        doc_shot(admin, "tokens")
        admin.get_by_label("Name").fill("laptop")
        expect(admin.get_by_label("write —", exact=False)).to_be_checked()
        admin.get_by_role("button", name="Create token").click()
        token = admin.get_by_test_id("new-token-value").inner_text().strip()

        # 3. train, log and register: a fresh project, digits-sgd v1, the version's page printed
        assert not Project.objects.filter(name="digits").exists()
        printed = run_example(base, token, tmp_path)
        found = re.search(r"registered digits-sgd v1 \(\w+\) — (\S+)", printed)
        assert found, printed
        version_url = found.group(1)
        assert version_url == f"{base}/admin/digits/models/digits-sgd/v1/"

        # 4. admin invites bob by e-mail from the project page; bob signs up through the link
        admin.goto(f"{base}/admin/digits/")
        if os.environ.get("ASSAY_SCREENSHOTS"):
            admin.goto(f"{base}/teams/admin/")
            doc_shot(admin, "personal-team")
            admin.goto(f"{base}/admin/digits/")
        admin.get_by_test_id("invite-people").click()
        admin.get_by_label("Username or e-mail").fill("bob@example.com")
        admin.get_by_label("Role on digits").select_option("maintainer")
        admin.get_by_role("button", name="Invite", exact=True).click()
        link = admin.get_by_test_id("invitation-url").inner_text().strip()
        doc_shot(admin, "access-invite")

        bob_context = browser.new_context(viewport={"width": 1280, "height": 900})
        bob = bob_context.new_page()
        bob.set_default_timeout(15_000)
        bob.goto(link)
        expect(bob.get_by_test_id("invitation-what")).to_contain_text("admin/digits as maintainer")
        bob.get_by_role("link", name="Create an account").click()
        expect(bob.get_by_test_id("signup-invitation")).to_contain_text("admin/digits")
        expect(bob.get_by_label("Email")).to_have_value("bob@example.com")
        expect(bob.get_by_label("Username")).to_have_value("bob")
        doc_shot(bob, "signup-invitation")
        bob.get_by_label("Password", exact=True).fill(PASSWORD)
        bob.get_by_label("Password (again)").fill(PASSWORD)
        bob.get_by_role("button", name="Sign Up").click()
        bob.get_by_role("button", name="Accept and join admin/digits").click()
        bob.wait_for_url(f"{base}/admin/digits/")
        bob.goto(f"{base}/notifications/")  # bob waits for work
        expect(bob.locator("html")).to_have_attribute("data-live", "live")
        same_document(bob)

        # 5. admin opens the review request from the version's page, the form filled in
        admin.goto(version_url)
        admin.get_by_role("link", name="Open review request").click()
        expect(admin.get_by_label("Title")).to_have_value("Move production to v1 of digits-sgd")
        expect(admin.get_by_label("Candidate version")).to_have_value("v1")
        admin.get_by_label("Reviewers", exact=False).fill("bob")
        doc_shot(admin, "review-new")
        admin.get_by_role("button", name="Open review request").click()
        expect(admin.get_by_test_id("request-title")).to_contain_text("Move production to v1 of digits-sgd")
        request_url = admin.url
        expect(admin.locator("html")).to_have_attribute("data-live", "live")
        same_document(admin)
        # ... which reaches bob's notifications page live
        requested = bob.get_by_test_id("notification").filter(has_text="digits-sgd")
        expect(requested).to_have_count(1, timeout=LIVE)
        never_reloaded(bob)

        # 6. bob comments with a mention, then requests changes; admin's page shows both live
        requested.get_by_role("link").click()
        bob.wait_for_url(re.compile(re.escape(request_url.split("?")[0])))
        bob.locator("#review-body").fill("Looks promising, @admin: is val/acc stable across seeds?")
        bob.get_by_test_id("comment-submit").click()
        thread = admin.get_by_test_id("thread").filter(has_text="is val/acc stable across seeds?")
        expect(thread).to_have_count(1, timeout=LIVE)
        expect(admin.get_by_test_id("live-toast")).to_contain_text("bob mentioned you", timeout=LIVE)
        bob.locator("#review-body").fill("Please try a larger learning rate.")
        bob.get_by_role("button", name="Request changes").click()
        changes = admin.locator("[data-testid=review][data-verdict=request_changes]")
        expect(changes).to_have_count(1, timeout=LIVE)
        expect(changes).to_contain_text("bob")
        never_reloaded(admin)
        doc_shot(admin, "review")

        # 7. admin trains again (v2) and pushes it; bob's page follows live
        expect(bob.locator("html")).to_have_attribute("data-live", "live")
        same_document(bob)
        printed = run_example(base, token, tmp_path, "--eta0", "0.02")
        assert "registered digits-sgd v2" in printed, printed
        admin.reload()  # admin's own page, to offer the version just registered
        admin.get_by_label("New candidate").select_option("2")
        admin.get_by_role("button", name="Push candidate").click()
        expect(admin.get_by_test_id("candidate")).to_have_text("v2")
        expect(bob.get_by_test_id("candidate")).to_have_text("v2", timeout=LIVE)
        expect(bob.get_by_test_id("timeline")).to_contain_text("v2", timeout=LIVE)
        v2 = ModelVersion.objects.get(repository__name="digits-sgd", number=2)
        expect(bob.locator("[data-testid=review-form] input[name=version_hash]")).to_have_value(
            v2.content_hash, timeout=LIVE
        )
        never_reloaded(bob)

        # 8. bob approves; admin's page shows the approval, then (checks passed) the merge button
        same_document(admin)
        bob.locator("#review-body").fill("Better. Approved.")
        bob.get_by_role("button", name="Approve").click()
        expect(bob.locator("[data-testid=review][data-verdict=approve]")).to_have_count(1)
        expect(bob.locator("html")).to_have_attribute("data-live", "live")
        same_document(bob)
        expect(admin.locator("[data-testid=review][data-verdict=approve]")).to_have_count(1, timeout=LIVE)
        merge = admin.get_by_test_id("merge")
        expect(merge).to_be_visible(timeout=60_000)
        never_reloaded(admin)
        expect(merge).to_have_text("Merge: move production to v2")
        merge.click()
        expect(admin.get_by_test_id("merge-box")).to_contain_text("Merged by admin")
        expect(bob.get_by_test_id("merge-box")).to_contain_text("Merged by admin", timeout=LIVE)
        never_reloaded(bob)

        # production moved, through the request
        alias = Alias.objects.select_related("version").get(repository__name="digits-sgd", name="production")
        assert alias.version.number == 2
        admin.goto(f"{base}/admin/digits/models/digits-sgd/")
        expect(admin.get_by_test_id("alias-move-review").first).to_contain_text("#1")
        # the suggested title followed the pushed candidate: the log says what moved
        expect(admin.get_by_test_id("alias-move").first).to_contain_text("Move production to v2 of digits-sgd")
        if os.environ.get("ASSAY_SCREENSHOTS"):  # a direct move of the protected alias: refused, with the offer
            admin.get_by_label("Alias", exact=True).fill("production")
            admin.get_by_label("Version", exact=True).select_option("1")
            admin.get_by_label("Why").fill("roll back")
            admin.get_by_role("button", name="Move alias").click()
            expect(admin.get_by_test_id("open-review-offer")).to_be_visible()
            doc_shot(admin, "model-protected-move")
        admin.context.close()
        bob_context.close()
