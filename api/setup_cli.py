"""``sifa trust-file``, ``sifa courts add|list``, ``sifa peers add|list``: setting a node up without hand-editing JSON.

- ``sifa trust-file DATA_DIR [--witnesses T.json] [--out F]`` writes the trust file a lawyer uses as is
  (docs/trust.md): this court's log key, and the witnesses and quorum its checkpoints are cosigned by
  (``--witnesses``, else ``SIFA_WITNESSES``), checked by the verifier's own parser before it is written.
- ``sifa courts list|add --data-dir D`` reads and extends the court registry (``courts.json``):
  code, name, level, parent and 代字 (designator), each checked; a running node reads it at start.
- ``sifa peers list|add --peers F`` reads and extends the peers file (``SIFA_PEERS``): another court's
  entry as its ``sifa trust-entry`` printed it, with the URL of its node.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from api.node import COURT_CODE, COURTS, NodeError, load_config, load_signer
from api.settings import Settings
from dossier.courts import LEVELS, Court, CourtRegistry
from ledger.trust import parse_trust

COMMANDS = ("trust-file", "courts", "peers")


def add_parsers(sub: Any) -> None:
    tf = sub.add_parser("trust-file", help="write the trust file a lawyer's verifier uses (logs, witnesses, quorum)")
    tf.add_argument("data_dir", type=Path)
    tf.add_argument("--witnesses", type=Path, help="the witnesses' trust file (default: SIFA_WITNESSES)")
    tf.add_argument("--out", type=Path, help="where to write it (default: stdout)")
    courts = sub.add_parser("courts", help="list or add the courts this node knows (courts.json)")
    cs = courts.add_subparsers(dest="action", required=True)
    cl = cs.add_parser("list", help="print the court registry")
    cl.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    ca = cs.add_parser("add", help="add a court (a superior, a peer) to the registry")
    ca.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    ca.add_argument("--code", required=True, help="court code, e.g. 1101-0200")
    ca.add_argument("--name", required=True, help="e.g. 北京市第三中级人民法院")
    ca.add_argument("--level", required=True, choices=LEVELS)
    ca.add_argument("--parent", help="the superior court's code")
    ca.add_argument("--designator", help="its 代字 in case numbers, e.g. 京03")
    peers = sub.add_parser("peers", help="list or add the peer courts this node talks to (SIFA_PEERS file)")
    ps = peers.add_subparsers(dest="action", required=True)
    pl = ps.add_parser("list", help="print the peers file")
    pl.add_argument("--peers", type=Path, help="the peers file (default: SIFA_PEERS)")
    pa = ps.add_parser("add", help="add a peer court from the entry its `sifa trust-entry` printed")
    pa.add_argument("entry", help="the entry: a JSON file, or - for stdin")
    pa.add_argument("--url", required=True, help="its node's base URL, e.g. https://sifa.court-1101-0200.cn")
    pa.add_argument("--peers", type=Path, help="the peers file (default: SIFA_PEERS); created if missing")


def run(args: argparse.Namespace) -> int:
    if args.command == "trust-file":
        return _trust_file(args)
    if args.command == "courts":
        return _courts(args)
    return _peers(args)


def _write(path: Path, doc: dict[str, Any], mode: int) -> None:
    try:
        data = (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")  # before any file is made
    except UnicodeEncodeError:
        raise NodeError("a value holds a lone surrogate, which is not text; nothing was written") from None
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # never a half-written file, whatever happens
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``. Raises NodeError (not JSON, not an object), OSError."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise NodeError(f"{path} is not JSON ({what}): {str(exc)[:100]}") from None
    if not isinstance(doc, dict):
        raise NodeError(f"{path} is not a JSON object ({what})")
    return doc


def _trust_file(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    doc: dict[str, Any] = {"format": "sifa-trust/1", "logs": [
        {"origin": config.origin, "name": config.name, "key": load_signer(args.data_dir).verifier.vkey()}]}  # fmt: skip
    source = args.witnesses or Settings(data_dir=args.data_dir).witnesses
    if source is not None:
        witnesses = _read_json(Path(source), "a witnesses trust file")
        try:
            doc["witnesses"] = [{k: w[k] for k in ("name", "key") if k in w} for w in witnesses.get("witnesses", [])]
            doc["quorum"] = witnesses.get("quorum", 0)
            parse_trust(doc)  # the lawyer's verifier reads it exactly so
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NodeError(f"the witnesses file does not make a valid trust file: {exc}") from None
    try:
        parse_trust(doc)
    except (ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"the witnesses file does not make a valid trust file: {exc}") from None
    if args.out is None:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _write(args.out, doc, 0o644)  # public keys only: a lawyer is meant to have it
        n = len(doc.get("witnesses", []))
        print(f"sifa: trust file for {config.origin} written to {args.out} ({n} witnesses, quorum "
              f"{doc.get('quorum', 0)})", file=sys.stderr)  # fmt: skip
    return 0


def _courts(args: argparse.Namespace) -> int:
    data = args.data_dir or Settings().data_dir
    path = data / COURTS
    registry = CourtRegistry.from_file(path)  # a file that is not a registry: invalid_input, exit 2
    if args.action == "list":
        for c in registry:
            print(
                f"{c.code}\t{c.level}\t{c.designator or '-'}\t{c.name}" + (f"\t(上级 {c.parent})" if c.parent else "")
            )
        return 0
    if not COURT_CODE.fullmatch(args.code):
        raise NodeError(f"court code {args.code!r} is not of the form 1101-0105")
    raw = _read_json(path, "the court registry")
    if args.code in registry:
        raise NodeError(f"court {args.code} is already in {path}; nothing was changed")
    if args.parent == args.code:
        raise NodeError(f"court {args.code} cannot be its own parent")
    if args.parent is not None and args.parent not in registry:
        raise NodeError(f"parent {args.parent} is not in {path}: add it first")
    entry = {"code": args.code, "name": args.name.strip(), "level": args.level, "parent": args.parent}
    if args.designator:
        entry["designator"] = args.designator
    try:
        CourtRegistry([*registry, Court(**entry)])  # every rule the node checks at start
    except Exception as exc:
        raise NodeError(f"not added: {exc}") from None
    raw["courts"].append(entry)
    _write(path, raw, 0o600)
    print(f"sifa: court {args.code} ({entry['name']}) added to {path}; restart the node to use it", file=sys.stderr)
    return 0


def _peers_path(args: argparse.Namespace) -> Path:
    path = args.peers or Settings().peers
    if path is None:
        raise NodeError("name the peers file: --peers FILE or SIFA_PEERS")
    return Path(path)


def _peers(args: argparse.Namespace) -> int:
    path = _peers_path(args)
    doc: dict[str, Any] = _read_json(path, "a peers trust file") if path.exists() else {"logs": []}
    if path.exists():
        try:
            parse_trust(doc)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NodeError(f"{path} is not a peers trust file: {str(exc)[:100]}") from None
    if args.action == "list":
        for e in doc.get("logs", []):
            print(f"{e.get('origin', e['key'].split('+')[0])}\t{e.get('url', '-')}\t{e.get('name', '')}")
        return 0
    text = sys.stdin.read() if args.entry == "-" else Path(args.entry).read_text(encoding="utf-8")
    try:
        entry = json.loads(text)
        key = entry["key"]
    except (ValueError, KeyError, TypeError):
        raise NodeError("the entry is not the JSON `sifa trust-entry` prints (origin, name, key)") from None
    if any(e.get("key") == key for e in doc.get("logs", [])):
        raise NodeError(f"{entry.get('origin', key)} is already a peer in {path}; nothing was changed")
    url = args.url.rstrip("/")
    if not url.startswith(("https://", "http://127.", "http://localhost", "http://[::1]")):
        raise NodeError(f"{url} is not https:// (plain http only on loopback)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises)
    except ValueError:
        raise NodeError(f"{url!r} is not a URL") from None
    if not parts.hostname or not url.isascii() or not url.isprintable() or " " in url or parts.query or parts.fragment:
        raise NodeError(f"{url!r} is not a node's base URL (https://host[:port][/path], no spaces)")
    doc.setdefault("logs", []).append({k: entry[k] for k in ("origin", "name", "key") if k in entry} | {"url": url})
    try:
        parse_trust(doc)
    except (ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"not added: {exc}") from None
    _write(path, doc, 0o600)
    print(f"sifa: peer {entry.get('origin', key)} at {url} added to {path}; restart the node to use it",
          file=sys.stderr)  # fmt: skip
    return 0


def write_credential(path: Path, token: str) -> None:
    """The administrator's credential in a new file only its owner reads (0600); never over another file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
