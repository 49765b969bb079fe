"""Every way the tests start a court node, in one module: ``init`` (``sifa init``), ``trust_entry``,
``Serve`` (``sifa serve`` as its own process on 127.0.0.1, for multi-node and crash tests),
``in_thread`` (an app served by uvicorn in a thread of the test process), ``serving`` (a node in a
thread with a principal of each role) and the module-scoped ``node`` fixture the API tests share
(conftest.py registers it); and ``run_verify``, the lawyer's ``sifa-verify --json`` on a receipt."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2
import psycopg
import pytest
import uvicorn

from api.app import create_app
from api.cli import main as sifa
from api.settings import Settings
from ledger.note import Ed25519Signer
from ledger.postgres import SEQUENCER_LOCK
from ledger.receipt import Receipt
from tests.servers import free_port, wait_for_port
from verifier.cli import main as sifa_verify

ROOT = Path(__file__).resolve().parent.parent
# Three courts of one chain of appeal, for multi-node tests (start_peer_nodes).
LOW, MID, HIGH = "1101-0105", "1101-0200", "1100-0000"
COURTS = [
    {"code": LOW, "name": "北京市朝阳区人民法院", "level": "基层", "parent": MID},
    {"code": MID, "name": "北京市第三中级人民法院", "level": "中级", "parent": HIGH},
    {"code": HIGH, "name": "北京市高级人民法院", "level": "高级", "parent": None},
]


def init(data: Path, court: str = "1101-0105", name: str = "北京市朝阳区人民法院", crypto: str = "sha256") -> str:
    """``sifa init`` (of the ``crypto`` suite); returns the administrator's credential."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sifa(["init", str(data), "--court", court, "--name", name, "--crypto", crypto]) == 0
    return out.getvalue().strip()


def trust_entry(data: Path, *witness: str) -> dict[str, Any]:
    """``sifa trust-entry``: the node's log (or ``--witness``) entry for a trust file."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sifa(["trust-entry", str(data), *witness]) == 0
    entry: dict[str, Any] = json.loads(out.getvalue())
    return entry


class Serve:
    """``sifa serve`` on ``data`` in its own process group; ``stop`` ends it and its sequencer."""

    def __init__(self, data: Path, port: int | None = None, *, log: Path | None = None, wait: bool = True,
                 **env: str) -> None:  # fmt: skip
        """``log``: where its stderr goes (else nowhere); ``wait``: return once it listens."""
        self.port = port or free_port()
        settings = {"SIFA_DATA_DIR": str(data), "SIFA_PORT": str(self.port), "SIFA_ACCESS_LOG": "false", **env}
        with open(log or os.devnull, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env={**os.environ,
                                         **settings}, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            if wait:
                wait_for_port(self.port, timeout=60)
        except BaseException:
            self.stop()
            raise

    def sealing(self, timeout: float = 60) -> dict[str, Any]:
        """/healthz's body once a sequencer holds the log's lock and nothing waits."""
        deadline = time.monotonic() + timeout
        with httpx2.Client(base_url=self.url, timeout=10) as http:
            while True:
                with contextlib.suppress(httpx2.TransportError):
                    body: dict[str, Any] = http.get("/healthz").json()
                    if body["sequencer"] == "sealing" and body["events_waiting"] == 0:
                        return body
                assert time.monotonic() < deadline, "the node does not seal"
                time.sleep(0.05)

    def sequencer(self, timeout: float = 30) -> int:
        """The pid of its ``sifa seal`` child, once it runs."""
        deadline = time.monotonic() + timeout
        while not (found := children(self.proc.pid)):
            assert time.monotonic() < deadline, "sifa serve started no sequencer"
            time.sleep(0.05)
        return found[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in task.read_text().split()]
    return [c for c in found if alive(c)]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited and not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def open_files(under: Path) -> list[str]:
    """Every file under ``under`` some process holds open, as ``pid: path`` (Linux /proc)."""
    root = str(under.resolve())
    held = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target == root or target.startswith(root + "/"):
                held.append(f"{fd.parent.parent.name}: {target}")
    return held


@dataclass
class PeerNode:
    code: str
    data: Path
    serve: Serve
    admin: str  # the administrator's credential
    peers: Path  # its SIFA_PEERS trust file


def start_peer_nodes(root: Path, courts: list[dict[str, Any]]) -> dict[str, PeerNode]:
    """Each court of ``courts`` (code, name, level, parent, optionally crypto) as its own ``sifa serve`` under ``root``:
    all share one court registry and each trusts the others as peers (log keys and URLs). If one
    fails to start, those started are stopped. The caller stops them."""
    admins = {c["code"]: init(root / c["code"], c["code"], c["name"], c.get("crypto", "sha256")) for c in courts}
    courts = [{k: v for k, v in c.items() if k != "crypto"} for c in courts]  # a node's suite, not the registry's
    ports = {code: free_port() for code in admins}
    for code in admins:
        (root / code / "courts.json").write_text(json.dumps({"courts": courts}, ensure_ascii=False))
    entries = {code: {**trust_entry(root / code), "url": f"http://127.0.0.1:{ports[code]}"} for code in admins}
    nodes: dict[str, PeerNode] = {}
    try:
        for code in admins:
            peers = root / f"peers-{code}.json"
            others = [e for c, e in entries.items() if c != code]
            peers.write_text(json.dumps({"format": "sifa-trust/1", "logs": others}, ensure_ascii=False))
            serve = Serve(root / code, ports[code], SIFA_PEERS=str(peers))
            nodes[code] = PeerNode(code, root / code, serve, admins[code], peers)
    except BaseException:
        for n in nodes.values():
            n.serve.stop()
        raise
    return nodes


@contextlib.contextmanager
def clerks_at(nodes: dict[str, PeerNode]) -> Iterator[dict[str, tuple[httpx2.Client, dict[str, str]]]]:
    """For each started node, a client at its URL and a new clerk's Authorization header; at the end the
    clients are closed and the nodes stopped."""
    out: dict[str, tuple[httpx2.Client, dict[str, str]]] = {}
    try:
        for code, n in nodes.items():
            http = httpx2.Client(base_url=n.serve.url, timeout=120)
            out[code] = (http, {})
            r = http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                          headers={"Authorization": f"Bearer {n.admin}"})  # fmt: skip
            assert r.status_code == 201, r.text
            out[code] = (http, {"Authorization": f"Bearer {r.json()['token']}"})
        yield out
    finally:
        for http, _ in out.values():
            http.close()
        for n in nodes.values():
            n.serve.stop()


class Writer:
    """Light write load on a node: a thread per dossier registering evidence (one event each) with
    a pause between requests, until the ``with`` block ends; ``acked`` counts the 2xx answers, and
    ``failed`` the others (a node stopping under it answers none)."""

    def __init__(self, url: str, token: str, dossiers: list[str], *, pause: float = 0.02) -> None:
        self.url, self.pause, self.acked, self.failed = url, pause, 0, 0
        self.auth, self.dossiers = {"Authorization": f"Bearer {token}"}, dossiers
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(d,), daemon=True) for d in self.dossiers]

    @classmethod
    def clerk(cls, url: str, admin: str, *, clients: int = 2, first: int = 900) -> tuple[str, list[str]]:
        """A clerk's credential, issued by the administrator, and ``clients`` dossiers it opened."""
        with httpx2.Client(base_url=url, timeout=30) as http:
            r = http.post("/v1/principals", headers={"Authorization": f"Bearer {admin}"},
                          json={"name": "书记员", "role": "clerk"})  # fmt: skip
            assert r.status_code == 201, r.text
            token = r.json()["token"]
            dossiers = []
            for n in range(clients):
                r = http.post("/v1/dossiers", headers={"Authorization": f"Bearer {token}"}, json={
                    "case_number": f"（2026）京0105民初{first + n}号", "case_type": "民事"})  # fmt: skip
                assert r.status_code == 201, r.text
                dossiers.append(r.json()["dossier"])
        return token, dossiers

    @classmethod
    def on(cls, url: str, admin: str, *, clients: int = 2) -> Writer:
        return cls(url, *cls.clerk(url, admin, clients=clients))

    def __enter__(self) -> Writer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _client(self, dossier: str) -> None:
        with httpx2.Client(base_url=self.url, headers=self.auth, timeout=10) as http:
            i = 0
            while not self._stop.wait(self.pause):
                i += 1
                try:
                    r = http.post(f"/v1/dossiers/{dossier}/evidence", json={
                        "sha256": hashlib.sha256(f"{dossier}/{i}".encode()).hexdigest(), "size": i,
                        "name": f"证据{i}.pdf", "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                except httpx2.TransportError:
                    r = None
                with self._lock:
                    if r is not None and r.status_code // 100 == 2:
                        self.acked += 1
                    else:
                        self.failed += 1


ROLES = ("administrator", "clerk", "judge", "archivist", "lawyer", "party")
# The intermediate court, as a peer the node trusts (its signed requests, its packages).
PEER = Ed25519Signer("sifa.court/1101-0200", bytes(range(7, 39)))


class Node:
    def __init__(self, base: str, data: Path, admin: str) -> None:
        self.base, self.data, self.admin = base, data, admin
        self.http = httpx2.Client(base_url=base, timeout=30)
        self.tokens: dict[str, str] = {"administrator": admin}
        self.ids: dict[str, str] = {}
        self.app: Any = None  # what serves it, when in this process (``serving``)

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextlib.contextmanager
def in_thread(app: Any, port: int) -> Iterator[uvicorn.Server]:
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread of this process, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def serving(data: Path, admin: str, *, port: int | None = None, roles: tuple[str, ...] = ROLES[1:],
            wrap: Any = None, **settings: Any) -> Iterator[Node]:  # fmt: skip
    """The node of ``data`` (made by ``init``; ``admin`` its credential) served in a thread on ``port`` (a
    free one) of 127.0.0.1 with ``settings``, one principal of each of ``roles``; ``wrap`` wraps the app
    (``Node.app`` is what is served)."""
    port = port or free_port()
    app = create_app(Settings(data_dir=data, port=port, **settings))
    served = wrap(app) if wrap is not None else app
    with in_thread(served, port):
        n = Node(f"http://127.0.0.1:{port}", data, admin)
        n.app = served
        for role in roles:
            r = n.http.post("/v1/principals", json={"name": f"{role} 测试", "role": role},
                            headers=n.as_("administrator"))  # fmt: skip
            assert r.status_code == 201, r.text
            n.tokens[role], n.ids[role] = r.json()["token"], r.json()["id"]
        try:
            yield n
        finally:
            n.http.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("node") / "data"
    admin = init(data)
    courts = json.loads((data / "courts.json").read_text(encoding="utf-8"))
    courts["courts"].append({"code": "1101-0200", "name": "北京市第三中级人民法院", "level": "中级", "parent": None})
    (data / "courts.json").write_text(json.dumps(courts, ensure_ascii=False), encoding="utf-8")
    peers = data / "peers.json"
    peers.write_text(json.dumps({"logs": [{"key": PEER.verifier.vkey(), "url": "http://127.0.0.1:9"}]}))
    port = free_port()
    with serving(data, admin, port=port, max_upload_bytes=20 << 20, seal_interval_seconds=0.01, peers=peers,
                 public_url=f"http://127.0.0.1:{port}") as n:  # fmt: skip
        yield n


def run_verify(folder: Path, receipt: Receipt | dict[str, Any], trust: Path, capsys: pytest.CaptureFixture[str],
               *extra: str) -> tuple[int, dict[str, Any], str]:  # fmt: skip
    """``sifa-verify --receipt R --trust T --json [extra]`` in this process, ``receipt`` written to
    ``folder``: its exit code, its JSON result ({} when it printed none) and its stderr (no traceback)."""
    path = folder / "receipt.json"
    doc = receipt.to_dict() if isinstance(receipt, Receipt) else receipt
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code = sifa_verify(["--receipt", str(path), "--trust", str(trust), "--json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out) if out else {}, err


# Which process seals a log on PostgreSQL: the client port of the connection holding the lock, and
# the process that has that socket open.
HOLDER = (
    "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
    f" AND l.granted AND l.classid = {SEQUENCER_LOCK >> 32} AND l.objid = {SEQUENCER_LOCK & 0xFFFFFFFF}"
)


def holders(dsn: str) -> list[int]:
    """The client ports of the connections holding the sequencer lock (one, or none)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute(HOLDER).fetchall()]


def owns_port(pid: int, port: int) -> bool:
    """Whether process ``pid`` has the TCP socket whose local port is ``port`` open (Linux /proc)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


def sealing_sequencer(dsn: str, pids: list[int]) -> int | None:
    """The pid among ``pids`` whose connection holds the log's sequencer lock (None: none of them)."""
    for port in holders(dsn):
        for pid in pids:
            if owns_port(pid, port):
                return pid
    return None
