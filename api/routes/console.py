"""The console (``/console``): a page for clerks, judges, archivists, lawyers and parties.

Static HTML, JS and CSS shipped in the package (no build step), under the same strict policy as the
verification page: it runs only its own script and talks only to its own node. The credential is
kept in the tab's sessionStorage, never in a cookie, so no other site can act with it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.deps import roles
from api.routes.page import HEADERS, HTML, AssetNotFoundError, _static

router = APIRouter(tags=["console"])
ASSETS = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
# Downloads are handed to the browser as blob: URLs of the fetched bytes.
CONSOLE_HEADERS = {**HEADERS, "Content-Security-Policy": HEADERS["Content-Security-Policy"] + "; worker-src 'none'"}


@router.get("/console", response_class=HTMLResponse, responses=HTML, openapi_extra=roles("public"))
def console() -> HTMLResponse:
    """电子卷宗 console: sign in with a credential, find, open, upload, download, admit (docs/api.md)."""
    return HTMLResponse(_static("console.html"), headers=CONSOLE_HEADERS)


_ASSET = {"schema": {"type": "string"}}


@router.get(
    "/console/{asset}",
    response_class=Response,
    openapi_extra=roles("public"),
    responses={
        200: {
            "description": "the console's script or style",
            "content": {"text/javascript": _ASSET, "text/css": _ASSET},
        }
    },
)
def console_asset(asset: str) -> Response:
    """The console's script and style."""
    media = ASSETS.get(asset)
    if media is None:
        raise AssetNotFoundError(f"no asset {asset!r}")
    return Response(_static(asset), media_type=media, headers={**CONSOLE_HEADERS, "Cache-Control": "max-age=300"})
