"""The C2SP tlog-tiles read API, so standard clients can follow a court's log.

SPEC: c2sp.org/tlog-tiles  <prefix>/checkpoint, <prefix>/tile/<L>/<N>[.p/<W>],
<prefix>/tile/entries/<N>[.p/<W>]; N is split into 3-digit path elements,
all but the last prefixed with "x" (1234067 -> x001/x234/067).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from api.deps import ServicesDep, latest_checkpoint, roles
from ledger.errors import TreeSizeError
from ledger.tiles import TILE_WIDTH, tile_width

PUBLIC = roles("public")
router = APIRouter(prefix="/tlog", tags=["tlog-tiles"])
_INDEX = re.compile(r"((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([0-9]{1,3}))?")
IMMUTABLE = "public, max-age=31536000, immutable"


class TilePathError(TreeSizeError):
    code = "tile_not_found"


def parse_tile_path(path: str) -> tuple[int, int | None]:
    """(N, W or None) from ``x001/x234/067[.p/W]``. Raises TilePathError."""
    m = _INDEX.fullmatch(path)
    if not m:
        raise TilePathError(f"{path!r} is not a tile index path")
    digits = m.group(1).replace("x", "").replace("/", "") + m.group(2)
    width = int(m.group(3)) if m.group(3) else None
    if width is not None and not 1 <= width < TILE_WIDTH:
        raise TilePathError(f"partial tile width {width} is not 1..255")
    return int(digits), width


@router.get("/checkpoint", response_class=PlainTextResponse, openapi_extra=PUBLIC)
def checkpoint(services: ServicesDep) -> PlainTextResponse:
    """The latest signed checkpoint."""
    return PlainTextResponse(latest_checkpoint(services)[1], headers={"Cache-Control": "no-cache"})


def _served(width: int | None, available: int, what: str) -> int:
    wanted = TILE_WIDTH if width is None else width
    if available < wanted:
        raise TilePathError(f"{what} is not published at width {wanted}")
    return wanted


BINARY: dict[int | str, dict[str, Any]] = {200: {"description": "the tile's bytes (C2SP tlog-tiles)", "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}  # fmt: skip


@router.get("/tile/entries/{path:path}", response_class=Response, responses=BINARY, openapi_extra=PUBLIC)
def entries(path: str, services: ServicesDep) -> Response:
    """An entry bundle: uint16-length-prefixed entries."""
    index, width = parse_tile_path(path)
    size = latest_checkpoint(services)[0].size
    wanted = _served(width, tile_width(size, (0, index)), f"entry bundle {index}")
    start = index * TILE_WIDTH
    data = b"".join(len(e).to_bytes(2, "big") + e for e in services.log.entries(start, start + wanted))
    return Response(data, media_type="application/octet-stream", headers=_cache(width))


@router.get("/tile/{level}/{path:path}", response_class=Response, responses=BINARY, openapi_extra=PUBLIC)
def tile(level: int, path: str, services: ServicesDep) -> Response:
    """A hash tile: the concatenated hashes of one tile's bottom row."""
    if not 0 <= level <= 63:
        raise TilePathError(f"tile level {level} is not 0..63")
    index, width = parse_tile_path(path)
    size = latest_checkpoint(services)[0].size
    wanted = _served(width, tile_width(size, (level, index)), f"tile {level}/{index}")
    stored = services.log.store.read_tiles([(level, index)])[(level, index)]
    return Response(stored.bottom()[: wanted * 32], media_type="application/octet-stream", headers=_cache(width))


def _cache(width: int | None) -> dict[str, str]:
    return {"Cache-Control": IMMUTABLE if width is None else "no-cache"}
