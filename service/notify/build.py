"""The notification pieces of a daemon, from its settings: the outbox the tick records into,
the sender that delivers it, and the destinations both name."""

from __future__ import annotations

from collections.abc import Callable

from service.ledger import Ledger
from service.notify.events import DashboardLinks
from service.notify.outbox import ALERTER, Outbox, webhook_destination
from service.notify.sender import Destination, Policy, Sender, StackAlerter, Webhook
from service.redact import redact
from service.settings import Settings

AlerterResolver = Callable[[], Callable[[str], bool]]


def destination_names(settings: Settings) -> list[str]:
    names = [webhook_destination(url) for url in settings.notify_webhook_urls]
    return [*names, ALERTER] if settings.notify_alerter else names


def make_outbox(ledger: Ledger, settings: Settings, links: DashboardLinks | None = None) -> Outbox:
    return Outbox(
        ledger,
        destination_names(settings),
        settings.notify_event_names,
        {a.name: a.notify_events for a in settings.automations if a.notify_events is not None},
        links=links,
        scrub=redact,
    )


def make_sender(settings: Settings, alerter: AlerterResolver | None = None) -> Sender:
    """The sender for these settings; `alerter` loads the stack's alerter's `post` (it is only
    called from the alerter's own thread)."""
    secret = settings.webhook_secret()
    destinations: list[Destination] = [
        Webhook(url, secret.encode() if secret else None, settings.notify_timeout_seconds)
        for url in settings.notify_webhook_urls
    ]
    if settings.notify_alerter and alerter is not None:
        destinations.append(StackAlerter(alerter))
    policy = Policy(
        max_age_seconds=settings.notify_max_age_seconds,
        backoff_seconds=settings.notify_retry_backoff_seconds,
        max_backoff_seconds=settings.notify_retry_max_backoff_seconds,
    )
    return Sender(settings.ledger_path, destinations, policy, scrub=redact)
