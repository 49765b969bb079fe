"""The public verification page (``/verify``): static HTML, JS and CSS shipped in the package.

The court's log key is pinned into the page as it is served (its trust list); the page hashes
files locally and checks proofs and signatures itself (api/static/verify.js).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.deps import ServicesDep, roles
from evidence.labels import LABELS
from ledger.errors import SifaError

router = APIRouter(tags=["verification"])
ASSETS = {
    "verify.js": "text/javascript; charset=utf-8",
    "gm.js": "text/javascript; charset=utf-8",
    "verify.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# The page talks only to its own node and runs only its own script.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}, "description": "the page"}}


@cache
def _static(name: str) -> str:
    return resources.files("api").joinpath("static", name).read_text(encoding="utf-8")


class AssetNotFoundError(SifaError):
    code = "not_found"


@router.get("/verify", response_class=HTMLResponse, responses=HTML, openapi_extra=roles("public"))
def page(services: ServicesDep) -> HTMLResponse:
    """核验页面: check a file (and optionally its receipt) in the browser; the file never leaves it."""
    c = services.config
    trust = {"logs": [{"origin": c.origin, "name": c.name, "crypto": c.crypto,
                       "key": services.signer.verifier.vkey()}]}  # fmt: skip
    pinned = json.dumps(trust, ensure_ascii=False).replace("<", "\\u003c")  # safe inside <script>
    page = _static("verify.html").replace("__TRUST__", pinned).replace("__LABELS__", _labels())
    return HTMLResponse(page, headers=HEADERS)


@cache
def _labels() -> str:
    """The Chinese label of each field path (evidence.labels), for the disclosed fields a receipt shows."""
    return json.dumps(dict(LABELS), ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


@router.get("/verify/{asset}", response_class=Response, openapi_extra=roles("public"), responses={200: {
    "description": "the page's script or style", "content": {"text/javascript": {"schema": {"type": "string"}},
                                                             "text/css": {"schema": {"type": "string"}}}}})  # fmt: skip
def asset(asset: str) -> Response:
    """The page's script and style."""
    media = ASSETS.get(asset)
    if media is None:
        raise AssetNotFoundError(f"no asset {asset!r}")
    return Response(_static(asset), media_type=media, headers={**HEADERS, "Cache-Control": "max-age=300"})


@router.get(
    "/favicon.ico",
    response_class=Response,
    openapi_extra=roles("public"),
    responses={200: {"description": "the icon", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}},
)
def favicon() -> Response:
    """The node's icon (SVG; browsers ask for /favicon.ico)."""
    return Response(
        _static("favicon.svg"), media_type="image/svg+xml", headers={**HEADERS, "Cache-Control": "max-age=86400"}
    )
