"""``sifa monitor`` against a running node: growth is fine; a fork, a rollback, a stall alarm."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

from api.cli import main as sifa
from api.node import load_signer
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Note
from tests.nodes import Node


def _monitor(node: Node, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    trust = tmp_path / "trust.json"
    if not trust.exists():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert sifa(["trust-entry", str(node.data)]) == 0
        trust.write_text(json.dumps({"logs": [json.loads(out.getvalue())]}), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sifa(["monitor", node.base, "--trust", str(trust), "--state", str(tmp_path / "state.json"),
                     "--once", *extra])  # fmt: skip
    return code, json.loads(out.getvalue()) if out.getvalue() else {}, err.getvalue()


def test_monitor_follows_growth_and_reports_a_fork_with_both_signed_checkpoints(node: Node, tmp_path: Path) -> None:
    code, first, _ = _monitor(node, tmp_path)
    assert (code, first["ok"]) == (0, True)
    kept = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))["checkpoint"]
    size = Checkpoint.from_text(Note.from_text(kept).text).size
    for n in range(3):
        r = node.http.post("/v1/dossiers", headers=node.as_("clerk"),
                           json={"case_number": f"（2026）京0105民初{9100 + n}号", "case_type": "民事"})  # fmt: skip
        assert r.status_code == 201, r.text
    deadline, seen, details = time.monotonic() + 10, -1, []
    while True:  # until the sequencer has signed the growth and is done (the fork below needs a still log)
        code, grown, err = _monitor(node, tmp_path)
        assert code == 0 and grown["ok"], err
        details.append(grown["detail"])
        if (grown["size"] >= size + 3 and grown["size"] == seen) or time.monotonic() > deadline:
            break
        seen = grown["size"]
        time.sleep(0.1)
    assert grown["size"] >= size + 3 and any("consistently" in d for d in details)

    # The log's own key signs another history of the same size as the one the monitor holds.
    current = Checkpoint.from_text(Note.from_text(node.http.get("/v1/log/checkpoint").text).text)
    other = Checkpoint(current.origin, current.size, bytes(32))
    forged = sign_checkpoint(other, load_signer(node.data)).to_text()
    state = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    (tmp_path / "state.json").write_text(json.dumps({**state, "checkpoint": forged}), encoding="utf-8")
    code, alarm, err = _monitor(node, tmp_path)
    assert (code, alarm["ok"], alarm["alarm"]) == (1, False, "fork")
    assert alarm["evidence"] == {"earlier": forged, "later": node.http.get("/v1/log/checkpoint").text}
    assert "ALARM fork" in err

    bigger = sign_checkpoint(Checkpoint(current.origin, current.size + 100, bytes(32)), load_signer(node.data))
    (tmp_path / "state.json").write_text(json.dumps({**state, "checkpoint": bigger.to_text()}), encoding="utf-8")
    assert _monitor(node, tmp_path)[1]["alarm"] == "rolled_back"

    (tmp_path / "state.json").write_text(json.dumps({**state, "changed_at": 0}), encoding="utf-8")
    assert _monitor(node, tmp_path, "--stall", "60")[1]["alarm"] == "stalled"


def test_monitor_stops_on_sigterm_and_sigint(node: Node, tmp_path: Path) -> None:
    """A long-running ``sifa monitor`` ends with exit 0 on SIGTERM or SIGINT between rounds (its
    handler sets a flag its wait watches; no traceback, no lock taken in the handler)."""
    import os
    import signal
    import subprocess
    import sys

    _monitor(node, tmp_path)  # writes the trust file
    root = Path(__file__).resolve().parent.parent
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "monitor", node.base, "--trust",
                                 str(tmp_path / "trust.json"), "--state", str(tmp_path / "state.json"),
                                 "--interval", "60"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ})  # fmt: skip
        assert proc.stdout is not None and json.loads(proc.stdout.readline())["ok"]
        proc.send_signal(sig)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and time.monotonic() - sent < 2 and b"Traceback" not in err, err


def test_a_deeply_nested_state_file_or_log_answer_is_unreadable_input(node: Node, tmp_path: Path) -> None:
    """``[`` × 100000 recursed json.loads into a traceback: the monitor's state file, and a hostile log
    server's consistency proof, are unreadable input (exit 2, one line), never a traceback."""
    import http.server
    import threading

    from tests.servers import free_port

    (tmp_path / "state.json").write_text("[" * 100000, encoding="utf-8")
    code, _, err = _monitor(node, tmp_path)
    assert code == 2 and len(err.splitlines()) == 1 and "deeper than 64" in err, err

    signer = load_signer(node.data)
    origin = Checkpoint.from_text(Note.from_text(node.http.get("/v1/log/checkpoint").text).text).origin
    kept = sign_checkpoint(Checkpoint(origin, 1, bytes(32)), signer).to_text()
    later = sign_checkpoint(Checkpoint(origin, 2, bytes(32)), signer).to_text().encode()
    (tmp_path / "state.json").write_text(json.dumps({"checkpoint": kept, "seen_at": 0, "changed_at": 0}))

    class Hostile(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = later if self.path.endswith("/checkpoint") else b"[" * 100000
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hostile = Node(f"http://127.0.0.1:{port}", node.data, node.admin)
    try:
        code, _, err = _monitor(hostile, tmp_path)
    finally:
        hostile.http.close()
        server.shutdown()
        server.server_close()
    assert code == 2 and len(err.splitlines()) == 1 and "is unreadable" in err, err  # its key history or its proof


def test_a_log_whose_key_history_is_deeply_nested_is_an_input_error_not_a_crash(node: Node, tmp_path: Path) -> None:
    """A hostile log server: its real checkpoint, and for /v1/log/keys JSON nested 100 000 deep."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    with urllib.request.urlopen(f"{node.base}/v1/log/checkpoint", timeout=10) as answer:
        checkpoint = answer.read()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = checkpoint if self.path.endswith("/checkpoint") else b"[" * 100000 + b"]" * 100000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hostile = Node(f"http://127.0.0.1:{server.server_address[1]}", node.data, "")
        hostile.http.close()
        code, _, err = _monitor(hostile, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2 and "Traceback" not in err and "key history" in err, err
    assert len(err.strip().splitlines()) == 1
