"""The built widget, served from the committed bundle in sdk/js/dist (no Node needed to run).

- `/sdk/v1/referral.js` (script tag) and `/sdk/v1/referral.mjs` (ES module): the current build
  of major version 1, cached 5 minutes (then revalidated by ETag), so shops get fixes quickly.
- `/sdk/v1/referral.<hash>.js` and `.mjs`: the same bytes under their content hash, cached for a
  year (`immutable`): pin one with its Subresource Integrity hash from `/sdk/v1/manifest.json`.

Every answer allows any origin (`Access-Control-Allow-Origin: *`): these are public files, and
a cross-origin ES module or an `integrity` check needs it; no credentials are involved.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

BUNDLE_DIR = Path(__file__).resolve().parent.parent.parent / "sdk" / "js" / "dist"
BUNDLES = {"referral.js": "text/javascript; charset=utf-8", "referral.mjs": "text/javascript; charset=utf-8"}
SHORT_CACHE = "public, max-age=300, stale-while-revalidate=86400"
LONG_CACHE = "public, max-age=31536000, immutable"
_HASHED = re.compile(r"^(?P<stem>[a-z]+)\.(?P<digest>[0-9a-f]{12})\.(?P<ext>m?js)$")
_PUBLIC = {
    "access-control-allow-origin": "*",
    "cross-origin-resource-policy": "cross-origin",
    "x-content-type-options": "nosniff",
}


@dataclass(frozen=True)
class Bundle:
    name: str  # referral.js
    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:12]

    @property
    def hashed_name(self) -> str:
        stem, _, ext = self.name.partition(".")
        return f"{stem}.{self.digest}.{ext}"

    @property
    def integrity(self) -> str:
        return "sha384-" + base64.b64encode(hashlib.sha384(self.body).digest()).decode()


@lru_cache(maxsize=4)
def load_bundles(directory: Path = BUNDLE_DIR) -> dict[str, Bundle]:
    """The bundles present on disk, read once per process."""
    found = {}
    for name, media_type in BUNDLES.items():
        path = directory / name
        if path.is_file():
            found[name] = Bundle(name=name, body=path.read_bytes(), media_type=media_type)
    return found


def _bundle_response(request: Request, bundle: Bundle, cache_control: str) -> Response:
    etag = f'"{bundle.digest}"'
    headers = {**_PUBLIC, "cache-control": cache_control, "etag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(bundle.body, media_type=bundle.media_type, headers=headers)


async def serve_bundle(request: Request) -> Response:
    name = request.path_params["name"]
    bundles = load_bundles()
    if name in bundles:
        return _bundle_response(request, bundles[name], SHORT_CACHE)
    hashed = _HASHED.match(name)
    bundle = bundles.get(f"{hashed['stem']}.{hashed['ext']}") if hashed else None
    if hashed is None or bundle is None or bundle.digest != hashed["digest"]:
        return PlainTextResponse("not found", status_code=404, headers=_PUBLIC)
    return _bundle_response(request, bundle, LONG_CACHE)


async def manifest(request: Request) -> JSONResponse:
    """Where each bundle's immutable copy lives, with its Subresource Integrity hash."""
    return JSONResponse(
        {name: {"url": f"/sdk/v1/{b.hashed_name}", "integrity": b.integrity} for name, b in load_bundles().items()},
        headers={**_PUBLIC, "cache-control": SHORT_CACHE},
    )


def routes() -> list[Route]:
    return [
        Route("/sdk/v1/manifest.json", manifest, methods=["GET", "HEAD"]),
        Route("/sdk/v1/{name}", serve_bundle, methods=["GET", "HEAD"]),
    ]
