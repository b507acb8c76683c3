"""The sender: delivers the outbox in the background, never on the tick's thread.

One thread per destination, each with its own SQLite connection to the ledger, so a receiver
that hangs holds up only its own deliveries. A thread sends its destination's pending
notifications oldest first, in order per model: while the oldest of a model waits for a retry,
the later ones of that model wait too (other models go on).

How an attempt ends: a 2xx is delivered (`notify.delivered`); a 5xx, a 429, a connection error
or a timeout is retried with backoff (doubling from AUTOPILOT_NOTIFY_RETRY_BACKOFF_SECONDS up
to AUTOPILOT_NOTIFY_RETRY_MAX_BACKOFF_SECONDS, or the receiver's `Retry-After`,
`notify.failed` with `will_retry`); any other status (4xx, a redirect) is not retried
(`notify.failed`, logged once at error level, with the status). A notification older than
AUTOPILOT_NOTIFY_MAX_AGE_SECONDS is dropped (`notify.dropped`). Every outcome is written to the
ledger before the next attempt, so a restart goes on where the last process stopped; a
notification the receiver got just before a crash is sent again, with the same id.

Signing (`sign`): with a secret, each request carries `X-Autopilot-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, `X-Autopilot-Timestamp` (Unix seconds, the
time of this attempt) and `X-Autopilot-Event-Id`; docs/notifications.md shows how a receiver
verifies them and refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from service import metrics
from service.errors import describe_error
from service.logs import get_logger
from service.notify.outbox import (
    ALERTER,
    DELIVERED,
    DROPPED,
    FAILED,
    PENDING,
    Deliveries,
    Pending,
    webhook_destination,
)

IDLE_SECONDS = 0.5  # how often an idle thread looks at the outbox
BODY_EXCERPT = 200  # of a receiver's error answer, into the log and the ledger
DISCORD_HOSTS = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
DISCORD_LIMIT = 2000
USER_AGENT = "zenml-autopilot-notify/1"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of `<timestamp>.<body>`."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Outcome:
    delivered: bool = False
    retry: bool = False
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


class Destination(Protocol):
    name: str

    def ready(self) -> bool:
        """False while it cannot send yet (the stack's alerter before the store connected)."""
        ...

    def send(self, pending: Pending) -> Outcome: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered, not followed: a POST must reach the URL configured."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Webhook:
    """A JSON POST of the payload. A Discord webhook gets `{"content": <text>}` instead,
    since Discord refuses a message without `content`."""

    def __init__(self, url: str, secret: bytes | None, timeout: float) -> None:
        self.url = url
        self.name = webhook_destination(url)
        self.secret = secret
        self.timeout = timeout
        parts = urlsplit(url)
        self.discord = parts.hostname in DISCORD_HOSTS and parts.path.startswith("/api/webhooks/")
        self._opener = urllib.request.build_opener(_NoRedirects())

    def ready(self) -> bool:
        return True

    def body(self, pending: Pending) -> bytes:
        if self.discord:
            text = str(json.loads(pending.body)["text"])[:DISCORD_LIMIT]
            return json.dumps({"content": text}, ensure_ascii=False).encode()
        return pending.body.encode()

    def send(self, pending: Pending) -> Outcome:
        body = self.body(pending)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Autopilot-Event": pending.event,
            "X-Autopilot-Event-Id": pending.id,
            "X-Autopilot-Timestamp": timestamp,
        }
        if self.secret is not None:
            headers["X-Autopilot-Signature"] = sign(self.secret, timestamp, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(BODY_EXCERPT)
                return Outcome(delivered=True, status=response.status)
        except urllib.error.HTTPError as answer:
            return _answered(answer)
        except TimeoutError:
            return Outcome(retry=True, error=f"no answer within {self.timeout:g} s")
        except (urllib.error.URLError, OSError) as error:  # refused, reset, DNS, TLS
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            if isinstance(reason, TimeoutError):
                return Outcome(retry=True, error=f"no answer within {self.timeout:g} s")
            cause = reason if isinstance(reason, BaseException) else error
            return Outcome(retry=True, error=describe_error(cause))


def _answered(answer: urllib.error.HTTPError) -> Outcome:
    """An HTTP status that is not a success: retried for 5xx and 429, not for the rest."""
    status = answer.code
    try:
        excerpt = answer.read(BODY_EXCERPT).decode(errors="replace")
    except OSError:
        excerpt = ""
    error = f"HTTP {status}" + (f": {' '.join(excerpt.split())}" if excerpt.strip() else "")
    retry = status >= 500 or status == 429
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed; configure the final URL"
    return Outcome(
        retry=retry, status=status, error=error, retry_after=_retry_after(answer.headers)
    )


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


class NoAlerter(Exception):
    """The stack has no alerter (or it cannot be loaded): not retried."""


class StackAlerter:
    """The stack's ZenML alerter (Slack, Discord, ...): `post(text)`, outside any step.
    `resolve` loads it from the store; it is loaded again after a failed post, so a changed
    component is picked up."""

    name = ALERTER

    def __init__(self, resolve: Callable[[], Callable[[str], bool]]) -> None:
        self._resolve = resolve
        self._post: Callable[[str], bool] | None = None
        # ZenML's client is created by the daemon's main thread: not used here before that.
        self.connected = threading.Event()

    def ready(self) -> bool:
        return self.connected.is_set()

    def send(self, pending: Pending) -> Outcome:
        text = str(json.loads(pending.body)["text"])
        try:
            if self._post is None:
                self._post = self._resolve()
            posted = self._post(text)
        except NoAlerter as error:
            return Outcome(error=str(error))
        except Exception as error:  # the store or the chat service did not answer
            self._post = None
            return Outcome(retry=True, error=describe_error(error))
        if posted:
            return Outcome(delivered=True)
        self._post = None
        return Outcome(retry=True, error="the alerter's post() returned False (see zenml.log)")


@dataclass(frozen=True)
class Policy:
    max_age_seconds: float
    backoff_seconds: float
    max_backoff_seconds: float

    def delay(self, attempts: int, retry_after: float | None) -> float:
        doubling = self.backoff_seconds * 2.0 ** max(0, attempts - 1)
        return float(min(max(doubling, retry_after or 0.0), self.max_backoff_seconds))


class Sender:
    """One worker thread per destination."""

    def __init__(
        self,
        ledger_path: Path,
        destinations: Sequence[Destination],
        policy: Policy,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.ledger_path = ledger_path
        self.policy = policy
        self.scrub = scrub
        self._stop = threading.Event()
        self._workers = [_Worker(self, destination) for destination in destinations]

    def start(self) -> Sender:
        self._drop_unconfigured()
        for worker in self._workers:
            worker.start()
        return self

    def store_connected(self) -> None:
        """The daemon connected to the store: the stack's alerter may be loaded now."""
        for worker in self._workers:
            if isinstance(worker.destination, StackAlerter):
                worker.destination.connected.set()
        self.wake()

    def wake(self) -> None:
        """Look at the outbox now (something was recorded)."""
        for worker in self._workers:
            worker.wake.set()

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop every thread, after up to `drain_seconds` for what is due now. A thread
        blocked on a receiver is left behind (they are daemon threads): what it was sending
        stays pending and is sent after the next start."""
        deadline = time.monotonic() + drain_seconds
        passes = {worker: worker.passes for worker in self._workers}
        self.wake()
        while time.monotonic() < deadline and not all(
            w.passes > passes[w] and w.settled for w in self._workers if w.is_alive()
        ):
            time.sleep(0.05)
        self._stop.set()
        self.wake()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout=max(0.1, deadline - time.monotonic()))

    def _drop_unconfigured(self) -> None:
        """Deliveries to a destination no longer configured can never go out: dropped."""
        store = Deliveries(self.ledger_path)
        try:
            configured = [worker.destination.name for worker in self._workers]
            for notification_id, event, destination in store.pending_elsewhere(configured):
                store.settle(destination, notification_id, DROPPED, 0, error="not configured")
                metrics.NOTIFICATIONS.labels(destination, DROPPED).inc()
                get_logger().warning(
                    "notify.dropped",
                    reason="destination_not_configured",
                    notification=event,
                    notification_id=notification_id,
                    destination=destination,
                )
        finally:
            store.close()


class _Worker(threading.Thread):
    def __init__(self, sender: Sender, destination: Destination) -> None:
        super().__init__(name=f"autopilot-notify-{destination.name}", daemon=True)
        self.sender = sender
        self.destination = destination
        self.wake = threading.Event()
        self.settled = False  # the last pass had nothing to send (all sent, or waiting)
        self.passes = 0
        self.log = get_logger().bind(destination=destination.name)

    def run(self) -> None:
        store = Deliveries(self.sender.ledger_path)
        try:
            while not self.sender._stop.is_set():
                if not self.destination.ready():
                    self.settled, self.passes = True, self.passes + 1
                    self.wake.wait(IDLE_SECONDS)
                    self.wake.clear()
                    continue
                try:
                    pause = self._pass(store)
                except Exception as error:  # the ledger busy or unreadable: try again later
                    self.log.error("notify.sender_error", error=describe_error(error))
                    pause = 5.0
                self.wake.wait(pause)
                self.wake.clear()
        finally:
            store.close()

    def _pass(self, store: Deliveries) -> float:
        """Send what is due, oldest first and in order per model; seconds until the next."""
        policy = self.sender.policy
        waiting: set[str] = set()  # models whose oldest notification waits for a retry
        pause, attempted = IDLE_SECONDS, False
        self._gauge(store)  # before sending too: a send may hang
        for pending in store.pending(self.destination.name):
            if self.sender._stop.is_set():
                break
            now = time.time()
            age = now - pending.created
            if age > policy.max_age_seconds:
                self._dropped(store, pending, age)
                continue
            if pending.order_key in waiting:
                continue
            if pending.not_before > now:
                waiting.add(pending.order_key)
                pause = min(pause, pending.not_before - now)
                continue
            attempted = True
            retry_in = self._attempt(store, pending)
            if retry_in is not None:
                waiting.add(pending.order_key)
                pause = min(pause, retry_in)
        self._gauge(store)
        self.settled = not attempted
        self.passes += 1
        return max(0.05, pause)

    def _gauge(self, store: Deliveries) -> None:
        depth = store.depth(self.destination.name)
        metrics.NOTIFICATION_OUTBOX.labels(self.destination.name).set(depth)

    def _attempt(self, store: Deliveries, pending: Pending) -> float | None:
        """One attempt; the seconds until its retry, or None when it is settled for good
        (delivered or failed)."""
        attempt = pending.attempts + 1
        outcome = self.destination.send(pending)
        error = self.sender.scrub(outcome.error) if outcome.error else None
        ids = {
            "notification": pending.event,
            "notification_id": pending.id,
            "automation": pending.automation,
            "sequence": pending.sequence,
            "attempt": attempt,
            "status": outcome.status,
        }
        name = self.destination.name
        if outcome.delivered:
            store.settle(name, pending.id, DELIVERED, attempt, status=outcome.status)
            metrics.NOTIFICATIONS.labels(name, DELIVERED).inc()
            self.log.info("notify.delivered", **ids)
            return None
        if not outcome.retry:
            store.settle(name, pending.id, FAILED, attempt, status=outcome.status, error=error)
            metrics.NOTIFICATIONS.labels(name, FAILED).inc()
            self.log.error("notify.failed", will_retry=False, error=error, **ids)
            return None
        delay = self.sender.policy.delay(attempt, outcome.retry_after)
        store.settle(
            name,
            pending.id,
            PENDING,
            attempt,
            not_before=time.time() + delay,
            status=outcome.status,
            error=error,
        )
        metrics.NOTIFICATIONS.labels(name, "attempt_failed").inc()
        log = self.log.warning if attempt == 1 else self.log.debug
        log("notify.failed", will_retry=True, retry_in_seconds=round(delay, 3), error=error, **ids)
        return delay

    def _dropped(self, store: Deliveries, pending: Pending, age: float) -> None:
        store.settle(self.destination.name, pending.id, DROPPED, pending.attempts)
        metrics.NOTIFICATIONS.labels(self.destination.name, DROPPED).inc()
        self.log.warning(
            "notify.dropped",
            reason="max_age",
            notification=pending.event,
            notification_id=pending.id,
            automation=pending.automation,
            age_seconds=round(age, 1),
            attempts=pending.attempts,
        )


__all__ = ["ALERTER", "NoAlerter", "Policy", "Sender", "StackAlerter", "Webhook", "sign"]
