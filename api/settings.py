"""Node settings: environment variables prefixed ``SIFA_``, read at start-up only."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the node keeps its data and which backends it uses."""

    model_config = SettingsConfigDict(env_prefix="SIFA_")

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(default=8260, ge=1, le=65535)
    # Empty: the embedded SQLite tree store under data_dir; else a PostgreSQL conninfo.
    database_url: str = ""
    # Largest document accepted by an upload, in bytes (413 beyond).
    max_upload_bytes: int = 4 << 30
    # Largest dossier package accepted as a request body (POST /v1/received).
    max_package_bytes: int = 1 << 40
    # Largest body of every other route (JSON), in bytes: refused (413) by Content-Length before it is
    # read, and as it streams. Uploads and packages have their own limits above.
    max_json_bytes: int = 1 << 20
    # The edge (api/edge.py, api/server.py). A request's line and headers must arrive within
    # header_timeout_seconds of the connection opening (or of the request's first byte) and hold at
    # most max_header_bytes; a request body may pause at most body_timeout_seconds between chunks; an
    # idle kept-alive connection is closed after keep_alive_seconds. Beyond max_connections open
    # connections a request is answered 503 (server_busy) and its connection closed.
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 64 << 10
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: int = 5
    max_connections: int = 4096
    # HTTPS (docs/transfer.md): the node's certificate chain and key (PEM); both set, it serves only
    # HTTPS. tls_ca: the CA bundle (PEM) peer nodes' and witnesses' certificates are verified
    # against; unset, the system's store.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    # uvicorn's per-request access log line (every dossier read is an event regardless).
    access_log: bool = True
    # Sequencer: events per sealed batch and the longest wait between batches.
    # "process": the sequencer runs as its own process (`sifa seal`), in parallel with the API
    # (Python threads take turns); "thread": inside the API process (tests, tiny nodes).
    sequencer: Literal["process", "thread"] = "process"
    seal_batch: int = 1000
    seal_interval_seconds: float = 0.05
    # /healthz is degraded (503) when an event has waited longer than this, in seconds, and no
    # checkpoint was committed within it (docs/operations.md).
    seal_lag_seconds: float = Field(default=60.0, gt=0)
    # Witnessing (docs/witness.md). witness_logs: a trust file naming the logs this node cosigns as a
    # witness (it then serves POST /witness/add-checkpoint). witnesses: a trust file naming the
    # witnesses (with their "url") this node's own checkpoints are sent to, and the quorum.
    witness_logs: Path | None = None
    witnesses: Path | None = None
    witness_interval_seconds: float = 1.0
    # Trusted time (docs/time.md): RFC 3161 timestamp authorities, comma-separated, tried in turn for a
    # token over the latest checkpoint, a round every tsa_interval_seconds while the log grows. Empty: none.
    tsa_urls: str = ""
    tsa_interval_seconds: float = Field(default=60.0, gt=0)

    # Anchoring on an EVM chain (docs/anchoring.md): the chain node's JSON-RPC URL, the anchor contract
    # (`sifa anchor-deploy`), the file holding the court account's private key (0x hex), and how often
    # the latest checkpoint is written when the log has grown. Empty URL: no chain anchor.
    chain_rpc_url: str = ""
    chain_contract: str = ""
    chain_key_file: Path | None = None
    chain_interval_seconds: float = Field(default=300.0, gt=0)

    def tsa_list(self) -> list[str]:
        return [u.strip() for u in self.tsa_urls.split(",") if u.strip()]

    # Peer courts (docs/transfer.md): a trust file naming their log keys and node "url"s; their
    # signed requests are accepted, their packages verified against it. peer_window_seconds: how far
    # a signed request's time may be from this node's clock (and how long its nonce is remembered).
    peers: Path | None = None
    peer_window_seconds: int = 300
    # Empty: content-addressed files under data_dir/blobs; else an S3/MinIO endpoint (host:port).
    s3_endpoint: str = ""
    s3_bucket: str = "sifa-blobs"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = True
    s3_region: str = "us-east-1"
