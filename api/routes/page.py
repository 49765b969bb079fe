"""The public verification page (``/verify``): static HTML, JS and CSS shipped in the package.

The court's log keys are pinned into the page as it is served (its trust list): after a key
rotation, every key of the log's history with the checkpoint sizes it signs. The page hashes files
locally and checks proofs and signatures itself (api/static/verify.js).
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
from ledger.keys import follow, read_rotation

router = APIRouter(tags=["verification"])
ASSETS = {
    "verify.js": "text/javascript; charset=utf-8",
    "bytes.js": "text/javascript; charset=utf-8",  # shared with /service (service.js)
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
    trust = {"logs": [{"origin": c.origin, "name": c.name, "crypto": c.crypto, **key} for key in _keys(services)]}
    pinned = json.dumps(trust, ensure_ascii=False).replace("<", "\\u003c")  # safe inside <script>
    page = _static("verify.html").replace("__TRUST__", pinned).replace("__LABELS__", _labels())
    return HTMLResponse(page, headers=HEADERS)


@cache
def _labels() -> str:
    """The Chinese label of each field path (evidence.labels), for the disclosed fields a receipt shows."""
    return json.dumps(dict(LABELS), ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


def _keys(services: ServicesDep) -> list[dict[str, Any]]:
    """The log's keys, each with the checkpoint sizes it signs (docs/keys.md): the current key only,
    or every key of the log's key history, so receipts of every era verify on the page. A replaced
    key's checkpoint also needs the receipt's ``key_consistency`` proof there (verify.js)."""
    kept = services.log.store.checkpoint()
    history = None if kept is None else services.log.key_history(kept[0], kept[1])
    if history is None:
        return [{"key": services.signer.verifier.vkey(), "from_size": 0, "until_size": None}]
    rotations = sorted((read_rotation(leaf, index) for index, leaf, _ in history.entries), key=lambda r: r.index)
    return [{"key": k.vkey(), "from_size": k.first_size, "until_size": k.last_size}
            for k in follow([rotations[0].old], rotations)]  # fmt: skip


@router.get("/verify/{asset}", response_class=Response, openapi_extra=roles("public"), responses={200: {
    "description": "the page's script, style or icon", "content": {media.split(";")[0]: {"schema": {"type": "string"}}
                                                                   for media in ASSETS.values()}}})  # fmt: skip
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
