"""Node settings: environment variables prefixed ``SIFA_``, read at start-up only."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
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
    # Uploads (raw, form, package import) one principal may have in flight at once: the next is answered
    # 429 (too_many_uploads). Their bodies are consumed by threads of their own, apart from every other
    # request's, at most one a connection (max_connections).
    max_uploads_per_principal: int = Field(default=4, ge=1)
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
    # A sequencer whose witnesses have cosigned more of its log than it holds (a node restored from an
    # older backup) refuses to seal (api/forkguard.py); true: an operator's decision to seal anyway,
    # forking the published log (docs/administration.md).
    seal_behind_witnesses: bool = False
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
    # Fixity (dossier/fixity.py): the sequencer re-hashes every kept file every fixity_interval_seconds
    # (0: never), reading at most fixity_bytes_per_second; a corrupt or missing file is repaired from
    # its dossier's archive package or from fixity_repair_from (a `sifa backup` dir), and the repair
    # recorded as a FileRepaired event.
    fixity_interval_seconds: float = Field(default=7 * 86400.0, ge=0)
    fixity_bytes_per_second: int = Field(default=16 << 20, ge=0)
    fixity_repair_from: Path | None = None
    # Also ask the peer courts a dossier was transferred to (SIFA_PEERS) for a file none of the
    # above has (api/peer_repair.py); false: never ask a peer.
    fixity_repair_from_peers: bool = True
    # After each sweep, blobs no event names (an import or upload that failed part-way) and stored
    # longer ago than this are deleted (either blob store; on S3 an hour later, docs/administration.md; 0: never).
    fixity_collect_after_seconds: float = Field(default=86400.0, ge=0)
    # Static reads (api/publish.py): the sequencer publishes the log's tiles, entry bundles and
    # checkpoint to this bucket on the S3 endpoint below (tlog-tiles layout, under publish_prefix)
    # every publish_interval_seconds. Empty: not published.
    publish_bucket: str = ""
    publish_prefix: str = ""
    publish_interval_seconds: float = Field(default=1.0, gt=0)
    # Empty: content-addressed files under data_dir/blobs; else an S3/MinIO endpoint (host:port).
    s3_endpoint: str = ""
    s3_bucket: str = "sifa-blobs"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = True
    s3_region: str = "us-east-1"
    # The node's public address (https://court.example), printed on 存证证书 (QR code and 核验地址,
    # docs/certificate.md). Empty: certificates print no link and no QR code (the request's Host
    # header is the client's to choose, never printed).
    public_url: str = ""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("SIFA_PUBLIC_URL is http(s)://host[:port][/path], without query or fragment")
        return value.rstrip("/")
