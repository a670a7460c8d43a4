"""The demo shop at /demo: what a merchant builds around the widget.

The page embeds the widget with one script tag from the API's other loopback name (so the
browser calls the API across origins, with CORS, as from a real shop); its sign-up form sends
`Referral.getAttribution()` along, and its server side reports the signup and the purchase with
the Python client (`referral-client`), like a merchant's backend would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from html import escape
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlencode

from referral_client import AsyncReferralClient, ReferralError, sign_customer
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.config import Settings
from app.demo.setup import REFERRER, read_keys

PAGE = Template((Path(__file__).parent / "page.html").read_text())
SIGNUP = Template((Path(__file__).parent / "signup.html").read_text())
COOKIE = "demo_customer"
LOCALES = ("en", "ar", "fa")


def _other_loopback(host: str) -> str:
    return {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}.get(host, host)


def _api_url(request: Request, *, for_browser: bool) -> str:
    """Where the page's widget finds the API (the other loopback name: another origin), and
    where the shop's server does (loopback, same process)."""
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    host = _other_loopback(request.url.hostname or "127.0.0.1") if for_browser else "127.0.0.1"
    return f"{request.url.scheme}://{host}:{port}"


def _seal(settings: Settings, customer: str) -> str:
    mac = hmac.new(settings.secret_key.encode(), f"demo-customer:{customer}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{customer}|{mac}"


def _signed_in(request: Request, settings: Settings) -> str | None:
    value = request.cookies.get(COOKIE, "")
    customer = value.partition("|")[0]
    return customer if customer and hmac.compare_digest(value, _seal(settings, customer)) else None


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form (what the page's forms post), without a multipart parser."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode(), max_num_fields=20).items()}


def _not_set_up() -> Response:
    return HTMLResponse("<p>Run <code>referral demo</code> (or <code>make run</code>) first.</p>", status_code=503)


def _client(request: Request, keys: dict[str, Any]) -> AsyncReferralClient:
    return AsyncReferralClient(_api_url(request, for_browser=False), keys["secret_key"], widget_secret=keys["widget_secret"])


def _back(request: Request, customer: str | None = None, **notes: str) -> Response:
    query = {k: v for k, v in {"lang": request.query_params.get("lang", ""), **notes}.items() if v}
    response = RedirectResponse("/demo/" + (f"?{urlencode(query)}" if query else ""), status_code=303)
    if customer is not None:
        settings: Settings = request.app.state.settings
        if customer:
            response.set_cookie(COOKIE, _seal(settings, customer), httponly=True, samesite="lax", path="/demo")
        else:
            response.delete_cookie(COOKIE, path="/demo")
    return response


async def page(request: Request) -> Response:
    keys = read_keys()
    if keys is None or "widget_secret" not in keys:
        return _not_set_up()
    settings: Settings = request.app.state.settings
    customer = _signed_in(request, settings)
    locale = request.query_params.get("lang", "en")
    locale = locale if locale in LOCALES else "en"
    api = _api_url(request, for_browser=True)
    notes = []
    if request.query_params.get("coupon"):
        notes.append(
            f"Welcome! Your coupon for 10% off your first order: <strong>{escape(request.query_params['coupon'])}</strong>"
        )
    if request.query_params.get("order"):
        notes.append(f"Thank you for order #{escape(request.query_params['order'])}.")
    if request.query_params.get("error"):
        notes.append(f"Something went wrong: {escape(request.query_params['error'])}")
    if customer:
        signed = sign_customer(keys["widget_secret"], customer)
        panel = (
            f'<div id="referral-panel" data-referral-panel data-customer-id="{escape(signed.customer_id)}" '
            f'data-timestamp="{signed.timestamp}" data-signature="{signed.signature}" data-locale="{locale}"></div>'
        )
        account = (
            f'<p>Signed in as <strong id="who">{escape(customer)}</strong>.</p>'
            f'<form method="post" action="buy?lang={locale}"><button type="submit" id="buy">Buy the T-shirt ($49.99)</button></form>'
        )
    else:
        panel = "<p>Sign up or sign in as Jane to see a share panel.</p>"
        account = SIGNUP.substitute(lang=locale)
    current = ' aria-current="page"'
    languages = " ".join(
        f'<a href="?lang={code}"{current if code == locale else ""} lang="{code}">{name}</a>'
        for code, name in (("en", "English"), ("ar", "العربية"), ("fa", "فارسی"))
    )
    body = PAGE.substitute(
        api=escape(api),
        publishable_key=escape(keys["publishable_key"]),
        notes="".join(f'<p class="note" role="status">{note}</p>' for note in notes),
        account=account,
        panel=panel,
        languages=languages,
        switch_label="Sign out" if customer == REFERRER else "Sign in as Jane, the demo referrer",
        switch_to="" if customer == REFERRER else REFERRER,
        lang=escape(locale),
    )
    return HTMLResponse(body, headers={"cache-control": "no-store"})


async def signup(request: Request) -> Response:
    keys = read_keys()
    if keys is None or "widget_secret" not in keys:
        return _not_set_up()
    form = await _form(request)
    try:
        attribution = json.loads(str(form.get("attribution") or "null"))
    except ValueError:
        attribution = None
    customer = f"shopper-{secrets.token_hex(4)}"
    email = str(form.get("email") or "").strip() or None
    async with _client(request, keys) as client:
        try:
            await client.upsert_customer(customer, email=email, name=str(form.get("name") or "").strip() or None)
            recorded = await client.record_action(
                type="SIGNUP",
                customer_external_id=customer,
                idempotency_key=f"signup-{customer}",
                attribution=attribution if isinstance(attribution, dict) else None,
                context={
                    "email": email,
                    "ip": request.client.host if request.client else None,
                    "user_agent": request.headers.get("user-agent"),
                },
            )
        except ReferralError as error:
            return _back(request, error=str(error))
    coupons = [r.coupon_code for r in recorded.rewards if r.coupon_code]
    return _back(request, customer, coupon=coupons[0] if coupons else "")


async def buy(request: Request) -> Response:
    keys = read_keys()
    if keys is None or "widget_secret" not in keys:
        return _not_set_up()
    customer = _signed_in(request, request.app.state.settings)
    if customer is None:
        return _back(request, error="sign up first")
    order = secrets.token_hex(3).upper()
    async with _client(request, keys) as client:
        try:
            await client.record_action(
                type="PURCHASE",
                customer_external_id=customer,
                idempotency_key=f"order-{order}",
                order_id=order,
                amount=4999,
                currency="USD",
                context={"ip": request.client.host if request.client else None, "user_agent": request.headers.get("user-agent")},
            )
        except ReferralError as error:
            return _back(request, error=str(error))
    return _back(request, order=order)


async def switch(request: Request) -> Response:
    form = await _form(request)
    return _back(request, REFERRER if form.get("as") == REFERRER else "")


def routes() -> list[Route]:
    return [
        Route("/demo", lambda request: RedirectResponse(str(request.url.replace(path="/demo/")), status_code=307)),
        Route("/demo/", page),
        Route("/demo/signup", signup, methods=["POST"]),
        Route("/demo/buy", buy, methods=["POST"]),
        Route("/demo/account", switch, methods=["POST"]),
    ]
