"""Headers of a file served for download: RFC 6266 Content-Disposition, no sniffing, active types inert.

The file name goes in twice (RFC 6266 §4.3): ``filename*=UTF-8''…`` (RFC 8187) with the name as
recorded, and ``filename="…"`` with an ASCII stand-in for the rare client that reads only that.
``X-Content-Type-Options: nosniff`` keeps a browser from taking a file for anything but its
recorded type. A type that runs in a browser (HTML, SVG, XML, JavaScript) is only ever an
attachment, under a sandboxing Content-Security-Policy, never shown inline from the court's origin.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

# Types a browser would run (scripts in the page, in SVG, in XHTML/XML): downloaded, never shown.
ACTIVE = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                    "text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript",
                    "application/x-shockwave-flash", "multipart/x-mixed-replace"})  # fmt: skip
# Types shown inline (a clerk opens a PDF in the browser); everything else is an attachment.
INLINE = frozenset({"application/pdf", "image/jpeg", "image/png", "image/gif", "text/plain", "audio/mpeg",
                    "video/mp4"})  # fmt: skip


def ascii_name(name: str) -> str:
    """An ASCII stand-in for ``name`` (for ``filename=``): accents dropped, others as ``_``, no quotes."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    out = "".join(c if c.isalnum() or c in "._- ()[]" else "_" for c in folded).strip(" .")
    _, dot, ext = name.rpartition(".")
    if not out.strip("_") and dot and ext.isascii() and ext.isalnum():
        return f"file.{ext}"
    return out or "file"


def disposition(name: str, media_type: str) -> str:
    """The Content-Disposition of a file ``name`` of ``media_type`` (RFC 6266, RFC 8187)."""
    media = media_type.split(";")[0].strip().lower()
    kind = "inline" if media in INLINE else "attachment"
    return f"{kind}; filename=\"{ascii_name(name)}\"; filename*=UTF-8''{quote(name, safe='')}"


def download_headers(name: str, media_type: str, size: int | None = None) -> dict[str, str]:
    """Every header a download carries besides its type: disposition, nosniff, a sandbox for active types."""
    headers = {"Content-Disposition": disposition(name, media_type), "X-Content-Type-Options": "nosniff"}
    if media_type.split(";")[0].strip().lower() in ACTIVE or media_type.split(";")[0].strip().lower() not in INLINE:
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    if size is not None:
        headers["Content-Length"] = str(size)
    return headers
