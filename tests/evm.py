"""A local EVM chain on 127.0.0.1 for the tests: py-evm through eth-tester, served as Ethereum
JSON-RPC over HTTP (so that the node's adapter and ``sifa-verify --chain-rpc`` talk to it as to a
consortium chain's node). Each request goes through web3's own request and result handling of the
in-process chain; the answer is written back in JSON-RPC form (quantities and bytes as 0x hex).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3

# eth-tester's first account: the address of private key 1 (a well-known test key, never a real one).
COURT_KEY = "0x" + "00" * 31 + "01"
OTHER_KEY = "0x" + "00" * 31 + "02"


def _wire(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, HexBytes)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    return str(value)


@dataclass
class TestChain:
    __test__ = False  # not a pytest class

    server: ThreadingHTTPServer
    w3: Web3

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    @classmethod
    def start(cls) -> TestChain:
        w3 = Web3(EthereumTesterProvider())
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
                try:
                    with lock:
                        result = w3.manager.request_blocking(request["method"], request.get("params", []))
                    answer["result"] = _wire(result)
                except Exception as exc:  # a JSON-RPC error, as a chain node answers one
                    answer["error"] = {"code": -32000, "message": f"{type(exc).__name__}: {exc}"}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, name="test-evm", daemon=True).start()
        return cls(server, w3)

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
