"""AWS calls as account management makes them: each one through the token bucket, retried when the
failure passes (``kiln.aws.retry``), failing as one kiln error naming the call; Describe calls read
every page; mutating calls honour ``DryRun``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kiln.aws.errors import AwsError, as_kiln_error, error_code
from kiln.aws.retry import Backoff, with_retries
from kiln.aws.throttle import TokenBucket


def _label(service: str, name: str) -> str:
    return f"{service} " + "".join(part.title() for part in name.split("_"))


class Api:
    """One client behind the shared bucket."""

    def __init__(self, client: Any, service: str, bucket: TokenBucket, backoff: Backoff = Backoff()) -> None:
        self.client = client
        self.service = service
        self.bucket = bucket
        self.backoff = backoff

    def _paced(self, name: str, params: dict[str, Any]) -> Any:
        def once() -> Any:
            self.bucket.take()
            return getattr(self.client, name)(**params)

        return with_retries(once, self.backoff)

    def call(self, name: str, location: str | None = None, **params: Any) -> Any:
        try:
            return self._paced(name, params)
        except Exception as error:
            raise as_kiln_error(error, _label(self.service, name), location) from None

    def pages(self, name: str, key: str, **params: Any) -> Iterator[Any]:
        """Every item under ``key`` of every page (NextToken / Marker followed to the end)."""
        model = self.client.meta.service_model.operation_model(
            self.client.meta.method_to_api_mapping[name])
        members = model.input_shape.members if model.input_shape else {}
        token_in = "NextToken" if "NextToken" in members else "Marker" if "Marker" in members else None
        token_out = "NextToken" if token_in == "NextToken" else "NextMarker"
        while True:
            page = self.call(name, **params)
            yield from page.get(key) or []
            token = page.get(token_out) if token_in else None
            if not token:
                return
            params = {**params, token_in: token}  # type: ignore[dict-item]

    def mutate(self, name: str, location: str, *, dry_run: bool, **params: Any) -> bool:
        """The call; with ``dry_run`` AWS only checks it may (DryRun=true): True when it would succeed."""
        if not dry_run:
            self.call(name, location, **params)
            return True
        try:
            self._paced(name, {**params, "DryRun": True})
        except Exception as error:
            if error_code(error) == "DryRunOperation":
                return True
            raise as_kiln_error(error, _label(self.service, name), location) from None
        raise AwsError(f"{_label(self.service, name)}: the endpoint acted despite DryRun", location=location)
