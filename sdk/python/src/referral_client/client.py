"""The HTTP side: one POST per call with the secret key, retries on network errors only (a
server that answered is never asked again), typed errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from referral_client import operations, signing
from referral_client.errors import APIError, TransportError
from referral_client.operations import Request

P = ParamSpec("P")
T = TypeVar("T")
USER_AGENT = "referral-client/1.0.0"


class _Base:
    def __init__(
        self,
        api_url: str,
        secret_key: str,
        *,
        widget_secret: str | None = None,
        webhook_secret: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
    ) -> None:
        """`api_url` like "https://api.example"; `secret_key` "sk_..."; `widget_secret` "wsec_..."
        (for sign_customer); `webhook_secret` "whsec_..." (for verify_webhook). A network error
        is retried `retries` times, 0.25 s, then 0.5 s... apart."""
        self.url = api_url.rstrip("/") + "/graphql"
        self.headers = {"Authorization": f"Bearer {secret_key}", "User-Agent": USER_AGENT}
        self.widget_secret = widget_secret
        self.webhook_secret = webhook_secret
        self.timeout = timeout
        self.retries = retries

    def _body(self, request: Request[Any]) -> dict[str, Any]:
        return {"query": request.document, "variables": request.variables}

    @staticmethod
    def _result(request: Request[T], response: httpx.Response) -> T:
        try:
            body = response.json()
        except ValueError:
            raise APIError(f"HTTP_{response.status_code}", response.text[:200]) from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0]
            raise APIError((first.get("extensions") or {}).get("code", "ERROR"), first.get("message", ""))
        if response.status_code != 200 or not body.get("data"):
            raise APIError(f"HTTP_{response.status_code}", response.text[:200])
        return request.parse(body["data"][request.root])

    def _retry_delay(self, attempt: int, error: httpx.TransportError) -> float:
        """How long to wait before the next try after a network error; raises after the last."""
        if attempt == self.retries:
            raise TransportError(f"could not reach {self.url}: {error!r}") from error
        return 0.25 * 2**attempt

    def sign_customer(self, external_id: str, *, timestamp: int | None = None) -> signing.SignedCustomer:
        """The signed identity the widget's share panel needs (no API call)."""
        if not self.widget_secret:
            raise ValueError("pass widget_secret= to the client to sign customers")
        return signing.sign_customer(self.widget_secret, external_id, timestamp=timestamp)

    def verify_webhook(self, headers: Mapping[str, str], body: str | bytes, *, tolerance: int = 300) -> dict[str, Any]:
        """The event of a genuine webhook; raises WebhookVerificationError otherwise (no API call)."""
        if not self.webhook_secret:
            raise ValueError("pass webhook_secret= to the client to verify webhooks")
        return signing.verify_webhook(self.webhook_secret, headers, body, tolerance=tolerance)


def _sync(build: Callable[P, Request[T]]) -> Callable[Concatenate[ReferralClient, P], T]:
    def call(self: ReferralClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.execute(build(*args, **kwargs))

    call.__doc__ = build.__doc__
    return call


def _async(build: Callable[P, Request[T]]) -> Callable[Concatenate[AsyncReferralClient, P], Awaitable[T]]:
    async def call(self: AsyncReferralClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.execute(build(*args, **kwargs))

    call.__doc__ = build.__doc__
    return call


class ReferralClient(_Base):
    """For a synchronous backend (Django, Flask...). Use it as a context manager, or close()."""

    def __init__(self, api_url: str, secret_key: str, *, transport: httpx.BaseTransport | None = None, **options: Any) -> None:
        super().__init__(api_url, secret_key, **options)
        self._http = httpx.Client(headers=self.headers, timeout=self.timeout, transport=transport)

    def execute(self, request: Request[T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.post(self.url, json=self._body(request))
            except httpx.TransportError as error:
                time.sleep(self._retry_delay(attempt, error))
                continue
            return self._result(request, response)
        raise AssertionError("unreachable")

    record_action = _sync(operations.record_action)
    upsert_customer = _sync(operations.upsert_customer)
    issue_referral_code = _sync(operations.issue_referral_code)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ReferralClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncReferralClient(_Base):
    """For an asyncio backend (Starlette, FastAPI...). Use it as an async context manager, or aclose()."""

    def __init__(
        self, api_url: str, secret_key: str, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        super().__init__(api_url, secret_key, **options)
        self._http = httpx.AsyncClient(headers=self.headers, timeout=self.timeout, transport=transport)

    async def execute(self, request: Request[T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.post(self.url, json=self._body(request))
            except httpx.TransportError as error:
                await asyncio.sleep(self._retry_delay(attempt, error))
                continue
            return self._result(request, response)
        raise AssertionError("unreachable")

    record_action = _async(operations.record_action)
    upsert_customer = _async(operations.upsert_customer)
    issue_referral_code = _async(operations.issue_referral_code)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncReferralClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
