"""The event log and its webhooks.

``record_event`` appends an event and one outbox row per enabled webhook, inside the caller's
transaction when given one: recording never talks to the network and never fails because a
webhook is down. ``deliver_pending`` (called by the scheduler every tick) sends due outbox rows
with exponential backoff (30 s doubling, capped at one hour, ``MAX_ATTEMPTS`` tries).

Payload: like an SNS HTTP(S) notification, since Image Builder publishes image state changes to
SNS: ``{"Type": "Notification", "MessageId", "TopicArn", "Subject", "Message", "Timestamp"}``
where ``Message`` is a JSON string. For image state changes ``detail`` is the Image JSON (what
Image Builder's SNS message carries: arn, name, version, type, platform, state {status, reason},
imageRecipe, infrastructureConfiguration, outputResources, dateCreated, ...); ``arn`` is filled
in from ``resource_arn`` when missing. With a secret, ``X-Kiln-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the raw body. ``MessageId`` is stable per (event, webhook), so retries can be
de-duplicated by receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION

MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
IN_FLIGHT = timedelta(minutes=5)  # a row being sent is hidden this long from other deliverers
TOPIC_NAME = "kiln-events"
SIGNATURE_HEADER = "X-Kiln-Signature"


def record_event(kind: str, resource_arn: str, detail: dict[str, Any], db: Any = None) -> int:
    """Append an event (and its pending webhook deliveries); returns the event id."""
    if db is None:
        from kiln.db.engine import session

        with session() as own:
            return record_event(kind, resource_arn, detail, own)
    from sqlalchemy import select

    from kiln.db.tables.schedule import Event, Webhook, WebhookDelivery

    now = utcnow()
    event = Event(time=now, kind=kind, arn=resource_arn, detail=json.loads(json.dumps(detail, default=str)))
    db.add(event)
    db.flush()
    for webhook_id in db.scalars(select(Webhook.id).where(Webhook.enabled.is_(True))):
        db.add(WebhookDelivery(event_id=event.id, webhook_id=webhook_id, attempts=0,
                               next_attempt_at=now, status="PENDING"))
    return int(event.id)


def _event_dict(event: Any) -> dict[str, Any]:
    return {"id": event.id, "time": event.time, "kind": event.kind, "arn": event.arn, "detail": event.detail}


def list_events(since_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Events with id greater than ``since_id``, oldest first."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.schedule import Event

    with session() as db:
        rows = db.scalars(select(Event).where(Event.id > since_id).order_by(Event.id).limit(limit))
        return [_event_dict(row) for row in rows]


def add_webhook(url: str, secret: str | None = None) -> dict[str, Any]:
    from urllib.parse import urlparse

    from kiln.db.engine import session
    from kiln.db.tables.schedule import Webhook

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"webhook URL {url!r} must be http:// or https://", location="url")
    with session() as db:
        hook = Webhook(url=url, secret=secret or None, enabled=True, created_at=utcnow())
        db.add(hook)
        db.flush()
        return _webhook_dict(hook)


def _webhook_dict(hook: Any) -> dict[str, Any]:
    return {"id": hook.id, "url": hook.url, "signed": bool(hook.secret), "enabled": hook.enabled,
            "createdAt": hook.created_at}


def list_webhooks() -> list[dict[str, Any]]:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.schedule import Webhook

    with session() as db:
        return [_webhook_dict(h) for h in db.scalars(select(Webhook).order_by(Webhook.id))]


def remove_webhook(webhook_id: int) -> None:
    from kiln.db.engine import session
    from kiln.db.tables.schedule import Webhook

    with session() as db:
        hook = db.get(Webhook, webhook_id)
        if hook is None:
            raise NotFound(f"webhook {webhook_id} does not exist", hint="see `kiln events webhook list`")
        db.delete(hook)


def topic_arn(resource_arn: str) -> str:
    """The event's topic: ``kiln-events`` of the account and region its resource ARN names (the
    default account's for an event about no ARN), so no event is published as another account's."""
    parts = resource_arn.split(":")
    if len(parts) > 5 and parts[0] == "arn" and parts[4]:
        return f"arn:aws:sns:{parts[3] or DEFAULT_REGION}:{parts[4]}:{TOPIC_NAME}"
    return f"arn:aws:sns:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{TOPIC_NAME}"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(event: dict[str, Any], webhook_id: int) -> bytes:
    message = dict(event["detail"])
    message.setdefault("arn", event["arn"])
    time: datetime = event["time"]
    body = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"kiln-event/{event['id']}/{webhook_id}")),
        "TopicArn": topic_arn(event["arn"] or ""),
        "Subject": event["kind"],
        "Message": json.dumps(message, default=str),
        "Timestamp": time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return json.dumps(body).encode()


def _send(url: str, body: bytes, secret: str | None, message_id: str, topic: str, timeout: float) -> None:
    import urllib.request

    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-topic-arn": topic,
        "User-Agent": "kiln-webhooks",
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # direct, never via a proxy
    with opener.open(request, timeout=timeout) as response:
        response.read()


def backoff(attempts: int) -> timedelta:
    """Delay after ``attempts`` failed tries: 30 s, 60 s, 120 s, ... at most one hour."""
    return min(MAX_DELAY, BASE_DELAY * (2 ** max(0, attempts - 1)))


def deliver_pending(now: datetime | None = None, limit: int = 50, timeout: float = 5.0) -> dict[str, int]:
    """Send due webhook deliveries once; returns counts of delivered, retrying and failed."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.schedule import Event, Webhook, WebhookDelivery

    now = now or utcnow()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    with session() as db:  # take due rows out of sight of other deliverers while we send
        rows = db.execute(
            select(WebhookDelivery, Event, Webhook)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.status == "PENDING", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id)
            .limit(limit)
        ).all()
        work = []
        for delivery, event, hook in rows:
            delivery.next_attempt_at = now + IN_FLIGHT
            work.append((delivery.id, _event_dict(event), hook.id, hook.url, hook.secret, hook.enabled))
    for delivery_id, event, hook_id, url, secret, enabled in work:
        error: str | None = None
        if not enabled:
            error = "webhook disabled"
        else:
            body = payload(event, hook_id)
            sent = json.loads(body)
            try:
                _send(url, body, secret, sent["MessageId"], sent["TopicArn"], timeout)
            except Exception as failure:  # any network or HTTP error is retried later
                error = f"{type(failure).__name__}: {failure}"[:1000]
        with session() as db:
            delivery = db.get(WebhookDelivery, delivery_id)
            if delivery is None:
                continue
            delivery.attempts += 1
            if error is None:
                delivery.status, delivery.delivered_at, delivery.last_error = "DELIVERED", now, None
                counts["delivered"] += 1
            elif delivery.attempts >= MAX_ATTEMPTS:
                delivery.status, delivery.last_error = "FAILED", error
                counts["failed"] += 1
            else:
                delivery.last_error = error
                delivery.next_attempt_at = now + backoff(delivery.attempts)
                counts["retrying"] += 1
    return counts


class BackgroundDelivery:
    """A scheduler hook: runs ``deliver_pending`` in a thread so slow webhooks never delay ticks."""

    def __init__(self) -> None:
        import threading

        self._thread: threading.Thread | None = None

    def __call__(self) -> None:
        import threading

        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._deliver, name="kiln-webhooks", daemon=True)
        self._thread.start()

    @staticmethod
    def _deliver() -> None:
        import logging

        try:
            deliver_pending()
        except Exception:
            logging.getLogger("kiln.events").exception("webhook delivery failed")

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def deliveries(event_id: int | None = None) -> list[dict[str, Any]]:
    """Outbox rows (for inspection and tests)."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.schedule import WebhookDelivery

    with session() as db:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if event_id is not None:
            query = query.where(WebhookDelivery.event_id == event_id)
        return [
            {"id": d.id, "eventId": d.event_id, "webhookId": d.webhook_id, "attempts": d.attempts,
             "status": d.status, "nextAttemptAt": d.next_attempt_at, "lastError": d.last_error}
            for d in db.scalars(query)
        ]
