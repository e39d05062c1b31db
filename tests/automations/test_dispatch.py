"""The dispatcher (automations.services.dispatch) in-process, against a real receiver on
loopback: batch claims under a lease, lease expiry, the coalesced wake-ups and their race
with a finishing dispatcher, kept-alive connections, and the SSRF check per target."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Project
from automations import outbound, services
from automations.models import Attempt, Delivery, Webhook
from config.celery import app as celery_app
from tests.automations.conftest import SECRET
from tests.automations.receiver import receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue name of this test's own: the Redis wake-up and timer keys are per queue."""
    name = f"test-dispatch-{uuid.uuid4().hex[:10]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = name
    yield name
    services._redis().delete(services._key("kick"), services._key("timer"))
    celery_app.conf.task_default_queue = previous


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch, queue: str) -> list[str]:
    """Dispatch tasks sent (recorded, not queued: no worker in these tests)."""
    sent: list[str] = []
    task = celery_app.tasks[services.DISPATCH_TASK]
    monkeypatch.setattr(task, "delay", lambda *a, **k: sent.append("delay"))
    monkeypatch.setattr(task, "apply_async", lambda *a, **k: sent.append(f"timer {k.get('countdown', 0):.0f}"))
    return sent


def webhook(project: Project, url: str, **extra: Any) -> Webhook:
    return Webhook.objects.create(project=project, name="h", url=url, secret=SECRET, events=["run.finished"], **extra)


def pending(hook: Webhook, n: int) -> list[Delivery]:
    return [Delivery.objects.create(webhook=hook, event="run.finished", payload={"n": i}) for i in range(n)]


def test_a_batch_is_claimed_at_once_under_a_lease_and_not_claimed_again_until_it_ends(
    project: Project, settings: Any
) -> None:
    settings.WEBHOOK_LEASE_SECONDS = 60
    hook = webhook(project, "http://127.0.0.1:9/hook")
    made = pending(hook, 5)
    lease_end = services._lease_end()
    # when a dispatcher claims 3 of them, with SKIP LOCKED (rows another one holds are passed over)
    with CaptureQueriesContext(connection) as queries:
        first = services._claim(3, lease_end=lease_end)
    assert any("FOR UPDATE OF" in q["sql"] and "SKIP LOCKED" in q["sql"] for q in queries.captured_queries)
    # then each has attempt number 1 and the lease; the next claim takes only the other two
    assert [n for _, n in first] == [1, 1, 1]
    second = services._claim(10, lease_end=services._lease_end())
    assert {d.id for d, _ in first}.isdisjoint(d.id for d, _ in second)
    assert len(second) == 2
    assert services._claim(10, lease_end=services._lease_end()) == []
    claimed = Delivery.objects.get(pk=first[0][0].id)
    assert (claimed.attempts, claimed.next_attempt_at) == (1, lease_end)
    # when the lease of the first claim runs out (its dispatcher was killed)
    Delivery.objects.filter(pk__in=[d.id for d, _ in first]).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    # then another claim takes them again, same ids, as attempt 2
    again = services._claim(10, lease_end=services._lease_end())
    assert sorted((d.id, n) for d, n in again) == sorted((d.id, 2) for d, _ in first)
    assert {d.pk for d in made} == {d.id for d, _ in first} | {d.id for d, _ in second}


def test_a_disabled_webhooks_pending_deliveries_are_skipped_by_the_claim(project: Project) -> None:
    off = webhook(project, "http://127.0.0.1:9/hook", enabled=False)
    (delivery,) = pending(off, 1)
    assert services._claim(10, lease_end=services._lease_end()) == []
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("skipped", 0)


def test_a_dispatch_sends_batches_concurrently_over_kept_alive_connections_and_logs_each_attempt(
    project: Project, settings: Any, allow_loopback: None, sent_tasks: list[str]
) -> None:
    settings.WEBHOOK_BATCH = 8
    with receiver(keep_alive=True) as rx:
        hook = webhook(project, rx.url)
        made = pending(hook, 20)
        assert services.dispatch() == 20
    # every delivery once, by its id, logged as one successful attempt
    assert sorted(r.headers["x-assay-delivery"] for r in rx.requests) == sorted(d.pk for d in made)
    assert set(Delivery.objects.values_list("state", "attempts")) == {("delivered", 1)}
    assert Attempt.objects.filter(ok=True, number=1, status_code=200).count() == 20
    # over fewer connections than requests (8 per batch at most, reused within it)
    connections = {r.peer for r in rx.requests}
    assert len(connections) <= 3 * 8
    assert len(connections) < len(rx.requests)
    # nothing left pending: no timer was set
    assert sent_tasks == []


def test_a_failed_attempt_waits_for_its_backoff_and_a_timer_is_set_for_it(
    project: Project, settings: Any, allow_loopback: None, sent_tasks: list[str]
) -> None:
    settings.WEBHOOK_RETRY_BASE_MS = 30_000
    with receiver([(500, {}), (200, {})]) as rx:
        hook = webhook(project, rx.url)
        (delivery,) = pending(hook, 1)
        assert services.dispatch() == 1
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts) == ("pending", 1)
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 28 < wait <= 30
        assert sent_tasks == ["timer 30"] or sent_tasks == ["timer 29"]
        # not due yet: a dispatch now sends nothing
        assert services.dispatch() == 0
        # once due, the same delivery is sent again as attempt 2
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert services.dispatch() == 1
    assert [r.headers["x-assay-delivery"] for r in rx.requests] == [delivery.pk, delivery.pk]
    assert list(delivery.attempt_log.values_list("number", "status_code")) == [(1, 500), (2, 200)]


def test_a_lease_too_short_for_the_request_gives_the_delivery_back_unsent(
    project: Project, settings: Any, allow_loopback: None, sent_tasks: list[str]
) -> None:
    settings.WEBHOOK_LEASE_SECONDS = 1
    with receiver() as rx:
        hook = webhook(project, rx.url)
        (delivery,) = pending(hook, 1)
        lease_end = services._lease_end()
        services._send_and_record(services._claim(1, lease_end=lease_end), lease_end=lease_end)
        assert rx.requests == []
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at <= timezone.now()
    assert not Attempt.objects.exists()


def test_one_wake_up_per_transaction_and_one_per_burst_of_commits(
    project: Project, django_capture_on_commit_callbacks: Any, sent_tasks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = webhook(project, "http://127.0.0.1:9/hook")
    asked: list[str] = []
    client = services._redis()

    def counted() -> Any:
        asked.append("SET")
        return client

    monkeypatch.setattr(services, "_redis", counted)
    # a transaction queueing three deliveries registers one wake-up
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for i in range(3):
            services._queue([hook.pk], "run.finished", {"n": i})
    assert len(callbacks) == 1
    assert (sent_tasks, asked) == (["delay"], ["SET"])
    # further commits while the wake-up key is set (a dispatcher is awake) send nothing, and
    # within the kick window this process does not even ask Redis again
    for i in range(5):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services._queue([hook.pk], "run.finished", {"n": i})
        assert len(callbacks) == 1
    assert (sent_tasks, asked) == (["delay"], ["SET"])
    # past the window it asks again; the key is still set: nothing sent
    services._awake_seen_at[services._key("kick")] -= services._kick_window()
    with django_capture_on_commit_callbacks(execute=True):
        services._queue([hook.pk], "run.finished", {"n": 7})
    assert (sent_tasks, asked) == (["delay"], ["SET", "SET"])
    # once the dispatcher let go of the key, the next commit past the window wakes one again
    services._release()
    services._awake_seen_at[services._key("kick")] -= services._kick_window()
    with django_capture_on_commit_callbacks(execute=True):
        services._queue([hook.pk], "run.finished", {"n": 9})
    assert sent_tasks == ["delay", "delay"]


def test_a_commit_skipping_the_wake_up_within_the_window_is_sent_by_the_dispatchers_last_look(
    project: Project,
    settings: Any,
    allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    sent_tasks: list[str],
) -> None:
    settings.WEBHOOK_KICK_WINDOW_MS = 400
    with receiver() as rx:
        hook = webhook(project, rx.url)
        services.kick()  # this process saw the key set (it set it): a dispatcher is woken
        assert sent_tasks == ["delay"]
        linger = services._linger
        late: list[str] = []

        def commit_then_linger() -> None:
            # the dispatcher found nothing due and deleted the key; then, within the window,
            # this process commits and sends no wake-up (it does not ask Redis: it saw the key
            # set a moment ago)
            assert services._redis().get(services._key("kick")) is None
            if not late:
                with django_capture_on_commit_callbacks(execute=True):
                    late.extend(services._queue([hook.pk], "run.finished", {"late": True}))
                assert sent_tasks == ["delay"]
                assert services._redis().get(services._key("kick")) is None
            linger()

        monkeypatch.setattr(services, "_linger", commit_then_linger)
        # when the dispatcher runs with nothing due at first
        assert services.dispatch() == 1
    # then its look a window after the delete sent the delivery nobody woke it for
    assert len(late) == 1
    assert [r.headers["x-assay-delivery"] for r in rx.requests] == late
    assert Delivery.objects.get(pk=late[0]).state == "delivered"
    assert sent_tasks == ["delay"]


def test_a_commit_landing_while_the_dispatcher_finishes_is_sent_by_its_last_pass(
    project: Project,
    settings: Any,
    allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    sent_tasks: list[str],
) -> None:
    with receiver() as rx:
        hook = webhook(project, rx.url)
        services.kick()  # the dispatcher about to run was woken: the key is set
        assert sent_tasks == ["delay"]
        release = services._release
        late: list[str] = []

        def commit_then_release() -> None:
            # the race: a commit after the dispatcher's last claim found nothing, just before
            # it deletes the key; the commit sees the key set and sends no wake-up
            if late:  # the second time the dispatcher lets go of the key: no race
                release()
                return
            with django_capture_on_commit_callbacks(execute=True):
                late.extend(services._queue([hook.pk], "run.finished", {"late": True}))
            assert sent_tasks == ["delay"]
            release()

        monkeypatch.setattr(services, "_release", commit_then_release)
        # when the dispatcher runs with nothing due at first
        assert services.dispatch() == 1
    # then its pass after deleting the key sent the late delivery
    assert [r.headers["x-assay-delivery"] for r in rx.requests] == [late[0]]
    assert Delivery.objects.get(pk=late[0]).state == "delivered"
    assert sent_tasks == ["delay"]


def test_a_kept_alive_connection_is_not_reused_for_another_host_on_the_same_address(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two names resolving to the receiver's loopback address, one of them allow-listed
    settings.WEBHOOK_ALLOW = ["allowed.example"]
    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("allowed.example", "evil.example"):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with receiver(keep_alive=True) as rx:
        session = outbound.Session()
        try:
            for _ in range(3):
                assert session.post(f"http://allowed.example:{rx.port}/hook", b"{}", {}).status == 200
            assert session.opened == 1  # one connection, kept alive
            # when the other name is posted to in the same session (an idle connection to the
            # very address and port is open), it is checked on its own and refused
            with pytest.raises(outbound.Refused, match=r"evil\.example resolves to 127\.0\.0\.1"):
                session.post(f"http://evil.example:{rx.port}/hook", b"{}", {})
            # and so is the address itself, written as a literal
            with pytest.raises(outbound.Refused, match=r"127\.0\.0\.1 is a loopback"):
                session.post(f"http://127.0.0.1:{rx.port}/hook", b"{}", {})
        finally:
            session.close()
    assert len(rx.requests) == 3
    assert {r.headers["host"] for r in rx.requests} == {f"allowed.example:{rx.port}"}


def test_in_a_batch_a_forbidden_target_is_refused_while_an_allowed_one_is_sent(
    project: Project, settings: Any, monkeypatch: pytest.MonkeyPatch, sent_tasks: list[str]
) -> None:
    settings.WEBHOOK_ALLOW = ["allowed.example"]
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real("127.0.0.1" if host.endswith(".example") else host, port, *a, **k),
    )
    with receiver(keep_alive=True) as rx:
        good = webhook(project, f"http://allowed.example:{rx.port}/hook")
        bad = webhook(project, f"http://evil.example:{rx.port}/hook")
        sent = pending(good, 3)
        refused = pending(bad, 3)
        assert services.dispatch() == 6
    assert sorted(r.headers["x-assay-delivery"] for r in rx.requests) == sorted(d.pk for d in sent)
    for delivery in refused:
        delivery.refresh_from_db()
        assert delivery.state == "failed"  # a refusal is final
        assert delivery.attempt_log.get().error.startswith("refused: evil.example resolves to 127.0.0.1")


def test_an_answer_with_nul_bytes_is_logged_with_them_replaced(
    project: Project, allow_loopback: None, sent_tasks: list[str]
) -> None:
    # PostgreSQL text holds no NUL: logged as is, the batch's log would fail and be sent again
    with receiver(answer_body=b"ok\x00\x00done") as rx:
        hook = webhook(project, rx.url)
        (delivery,) = pending(hook, 1)
        assert services.dispatch() == 1
    assert len(rx.requests) == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert Attempt.objects.get(delivery=delivery).response_excerpt == "ok\ufffd\ufffddone"
