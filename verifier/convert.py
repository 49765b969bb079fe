"""``sifa-verify compact`` and ``sifa-verify expand``: a receipt from JSON to its compact form and back.

    sifa-verify compact RECEIPT.json [-o RECEIPT.bin]
    sifa-verify expand RECEIPT.bin [-o RECEIPT.json]

The compact form (docs/receipt.md, ``ledger.compact_receipt``) carries the same proof in about 2 KB,
small enough for one QR code; ``sifa-verify --receipt`` reads either. Nothing is lost: ``expand``
gives back the JSON receipt ``compact`` was given (the same fields, the same bytes as the node
writes them). ``compact`` refuses a receipt whose stated terms are not the ones its checkpoint and
leaf give: the compact form states none, so it would silently drop what the JSON claims — verify
that receipt as it is. Neither checks a signature: they convert, ``sifa-verify`` verifies.

Exit codes: 0 written, 2 usage or unreadable input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ledger.compact_receipt import MAGIC, from_compact, to_compact
from ledger.errors import MalformedError
from ledger.receipt import Receipt


class ConvertError(Exception):
    """Unreadable input or an unwritable output: exit 2."""


def _read(path: Path) -> bytes:
    from verifier.cli import InputError
    from verifier.cli import _read as bounded  # one bounded reader for every receipt the verifier opens

    try:
        return bounded(path, "receipt")
    except InputError as exc:
        raise ConvertError(str(exc)) from exc


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        if sys.stdout.isatty() and data.startswith(MAGIC):
            raise ConvertError("the compact receipt is binary: give -o FILE, or redirect the output")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise ConvertError(f"cannot write {out}: {exc.strerror}") from exc


def compact(receipt_path: Path, out: Path | None) -> int:
    """Write the compact form of a JSON receipt. Raises ConvertError."""
    raw = _read(receipt_path)
    if raw.startswith(MAGIC):
        raise ConvertError(f"receipt {receipt_path} is compact already")
    try:
        data = to_compact(Receipt.from_json(raw))
    except MalformedError as exc:
        raise ConvertError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    _write(data, out)
    print(f"sifa-verify: compact receipt of {len(data)} bytes (the JSON: {len(raw)})"
          + (f"; written to {out}" if out is not None else ""), file=sys.stderr)  # fmt: skip
    return 0


def expand(receipt_path: Path, out: Path | None) -> int:
    """Write the JSON receipt a compact one carries. Raises ConvertError."""
    raw = _read(receipt_path)
    try:
        text = from_compact(raw).to_json().encode()
    except MalformedError as exc:
        raise ConvertError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    _write(text, out)
    if out is not None:
        print(f"sifa-verify: JSON receipt written to {out}", file=sys.stderr)
    return 0


def main(command: str, argv: list[str]) -> int:
    """``sifa-verify compact|expand …``."""
    what = {"compact": ("a JSON receipt", "its compact form"), "expand": ("a compact receipt", "the JSON receipt")}
    given, made = what[command]
    p = argparse.ArgumentParser(prog=f"sifa-verify {command}", description=f"write {made} of {given}")
    p.add_argument("receipt", type=Path, help=given)
    p.add_argument("-o", "--output", type=Path, help=f"where to write {made} (default: stdout)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        return (compact if command == "compact" else expand)(args.receipt, args.output)
    except ConvertError as exc:
        print(f"sifa-verify: {exc}", file=sys.stderr)
        return 2
