"""The node's one HTTP client (api/peers.send): https only, except on loopback; failures typed."""

from __future__ import annotations

import pytest

from api.peers import InsecurePeerUrlError, PeerUnavailableError, send
from tests.nodes import Node
from tests.servers import free_port


@pytest.mark.parametrize("url", ["http://example.org/witness", "ftp://127.0.0.1/x", "http:///x", "example.org"])
def test_plain_http_leaves_no_loopback_and_nothing_else_is_sent(url: str) -> None:
    with pytest.raises(InsecurePeerUrlError):
        send("GET", url, what="the peer")


def test_a_node_that_does_not_answer_is_peer_unavailable() -> None:
    with pytest.raises(PeerUnavailableError, match="does not answer"):
        send("GET", f"http://127.0.0.1:{free_port()}/v1/log/checkpoint", what="the peer", timeout=5)


def test_an_answer_of_any_status_streams_back(node: Node) -> None:
    answer = send("GET", f"{node.base}/v1/no-such-route", what="the peer")
    try:
        assert answer.status == 404 and answer.media_type.startswith("application/json")
        assert b'"code":"not_found"' in answer.read(1 << 16)
    finally:
        answer.close()
