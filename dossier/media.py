"""A file's media type, taken from its first bytes and checked against the one declared.

Recognised from the content: PDF, OFD, JPEG, PNG, GIF, MP3, MP4, DOCX and plain text (UTF-8). The
first ``HEAD`` bytes decide; the stream then flows on untouched (nothing is held but the head).

- Declared ``application/octet-stream`` (or nothing): the type found is recorded (so a PDF sent
  without a Content-Type still gets its page count); nothing found: octet-stream it stays.
- Declared one of the recognised types: the content must be that type, or the upload is refused
  (``media_type_mismatch``, nothing stored). OFD and DOCX are ZIP files: a ZIP whose first entry
  does not say which is taken as either; a text file may be declared as any text type.
- Declared any other type (``image/tiff``, ``audio/wav``, …): recorded as declared, unless the
  content is recognised as one of the binary types above — a PDF declared ``image/tiff`` is refused —
  or the content is text (markup, script: SVG, HTML) declared as an image, audio, video, font or model
  type, which a browser would show or play: refused, so no script is ever recorded as a picture.
"""

from __future__ import annotations

from collections.abc import Iterator

from dossier.errors import DossierError

HEAD = 4096
PDF, OFD, JPEG, PNG, GIF = "application/pdf", "application/ofd", "image/jpeg", "image/png", "image/gif"
MP3, MP4, TEXT = "audio/mpeg", "video/mp4", "text/plain"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ZIP = "application/zip"
RECOGNISED = (PDF, OFD, JPEG, PNG, GIF, MP3, MP4, DOCX, TEXT)
BINARY = (PDF, OFD, JPEG, PNG, GIF, MP3, MP4, DOCX, ZIP)
# Declared types that are never text: text content declared as one of these is refused.
NOT_TEXT = ("image/", "audio/", "video/", "font/", "model/")
UNKNOWN = "application/octet-stream"
# Types a text file may be declared as (text/html and SVG stay text: served only as attachments).
TEXT_TYPES = ("application/json", "application/xml", "image/svg+xml", "application/xhtml+xml")
ALIASES = {"audio/mp3": MP3, "image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF}


class MediaTypeMismatchError(DossierError):
    """The content is not of the declared media type."""

    code = "media_type_mismatch"


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show, or None."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[4:8] == b"ftyp":
        return MP4
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return MP3
    if head.startswith(b"PK\x03\x04"):
        # SPEC: APPNOTE.TXT 4.3.7: the first local file header; its name at offset 30, length at 26.
        n = int.from_bytes(head[26:28], "little")
        first = head[30 : 30 + n]
        if first == b"OFD.xml":
            return OFD
        if first == b"[Content_Types].xml" or first.startswith(b"word/"):
            return DOCX
        return ZIP
    if _text(head):
        return TEXT
    return None


def _text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    for cut in range(4):  # the head may end inside a character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(c.isprintable() or c in "\t\n\r\f\ufeff" for c in text)
    return False


def resolve(declared: str, found: str | None) -> str:
    """The media type to record for content ``found`` declared as ``declared``. Raises MediaTypeMismatchError."""
    declared = ALIASES.get(declared, declared)
    if declared == UNKNOWN:
        return found if found is not None and found != ZIP else UNKNOWN
    if found == declared:
        return declared
    if found == ZIP and declared in (OFD, DOCX, ZIP):
        return declared
    if found == TEXT and (declared.startswith("text/") or declared in TEXT_TYPES):
        return declared
    if declared in RECOGNISED or found in BINARY or (found == TEXT and declared.startswith(NOT_TEXT)):
        what = "content that is not recognised" if found is None else f"{found} content"
        raise MediaTypeMismatchError(f"declared {declared}, but the file holds {what}", declared=declared,
                                     found=found)  # fmt: skip
    return declared


def typed(chunks: Iterator[bytes], declared: str) -> tuple[str, Iterator[bytes]]:
    """The media type to record for a stream, and the stream itself, whole. Declared octet-stream:
    the head is read now, to learn the type. Declared a type: the stream checks its head as it is
    read (so the upload's other checks come first), raising MediaTypeMismatchError from within it."""
    declared = ALIASES.get(declared, declared)
    if declared != UNKNOWN:
        return declared, _checked(chunks, declared)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= HEAD:
            break
    media = resolve(declared, sniff(head[:HEAD]))

    def whole() -> Iterator[bytes]:
        if head:
            yield head
        yield from chunks

    return media, whole()


def _checked(chunks: Iterator[bytes], declared: str) -> Iterator[bytes]:
    head: bytes | None = b""
    for chunk in chunks:
        if head is None:
            yield chunk
            continue
        head += chunk
        if len(head) >= HEAD:
            resolve(declared, sniff(head[:HEAD]))
            yield head
            head = None
    if head is not None:
        resolve(declared, sniff(head))
        if head:
            yield head
