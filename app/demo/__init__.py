"""The demo shop of `make run`: a merchant, a program and a shop page at /demo that embeds the
widget exactly as a merchant would. Development only: nothing is mounted in production, and
its dependency (the Python client in sdk/python) is only imported outside production."""

from __future__ import annotations

from starlette.routing import Route

from app.config import Settings


def routes(settings: Settings) -> list[Route]:
    if settings.is_production:
        return []
    from app.demo import shop

    return shop.routes()
