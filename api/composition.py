"""The composition root: ``open_node(settings)`` is the only place a node's services are built.

``sifa serve`` (the app's lifespan, either sequencer mode), ``sifa seal``, ``sifa audit`` and
``sifa retrieve`` all open the node here, so they cannot drift apart. Each store is entered on
one ``ExitStack`` as it opens: a step that fails later closes what came before it, and leaving
the block closes everything in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from api.node import (
    COURTS,
    NONCES_DB,
    WITNESS_DB,
    NodeConfig,
    events_env,
    load_config,
    load_leaf_secret,
    load_signer,
    load_trust_file,
    load_witness_signer,
    log_hasher,
    open_blob_store,
    open_tree_store,
    principals_env,
    private_file,
)
from api.peers import NonceStore, PeerGate, client_tls
from api.principals import Caller, Principals
from api.settings import Settings
from api.tsa import Stamping
from api.witnessing import Witnessing
from dossier.application import DossierApp
from dossier.courts import CourtRegistry
from dossier.sealer import Sealer, Stop
from ledger.gm import SM2Signer
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.store import TreeStore
from ledger.trust import Trust
from ledger.witness import Witness
from ledger.witness_sqlite import SQLiteWitnessState
from storage.blobstore import BlobStore

if TYPE_CHECKING:
    from api.chain import Anchoring


@dataclass
class Services:
    """A node's services, as ``open_node`` built them; the app's handlers use them."""

    config: NodeConfig
    settings: Settings
    log: MerkleLog
    signer: Ed25519Signer | SM2Signer  # of the node's suite (ledger.suite): SM2 on a 国密 node
    dossiers: DossierApp
    sealer: Sealer
    principals: Principals
    blobs: BlobStore
    courts: CourtRegistry
    witness: Witness | None = None  # this node cosigns other logs (SIFA_WITNESS_LOGS)
    peers: Trust | None = None
    gate: PeerGate = field(default_factory=lambda: PeerGate(None, ""))  # no peers: every signed request is refused
    witnessing: Witnessing | None = None  # this log's checkpoints go to witnesses (SIFA_WITNESSES)
    stamping: Stamping | None = None  # trusted time for this log's checkpoints (SIFA_TSA_URLS, docs/time.md)
    anchoring: Anchoring | None = None  # this log's checkpoints written to an EVM chain (SIFA_CHAIN_*)
    lookups: dict[str, asyncio.Future[Caller]] = field(default_factory=dict)  # credential reads under way, by token

    @property
    def tree(self) -> TreeStore:
        return self.log.store


@contextlib.contextmanager
def open_node(settings: Settings, *, tree: TreeStore | None = None) -> Iterator[Services]:
    """Every service of the node in ``settings.data_dir``, closed again on the way out.

    ``tree``: the node's tree store, already open (``sifa seal`` takes the sequencer lock on it
    first); it stays open. Raises NodeError (no node, a missing key, an unreadable trust file) or a
    store's own error; whatever was opened before is closed again first."""
    data = settings.data_dir
    config = load_config(data)
    signer = load_signer(data)
    asked = load_trust_file(settings.witnesses) if settings.witnesses else None
    peers = load_trust_file(settings.peers) if settings.peers else None
    logs = load_trust_file(settings.witness_logs).logs if settings.witness_logs else None
    with contextlib.ExitStack() as stack:
        if tree is None:
            tree = open_tree_store(data, settings.database_url)
            stack.callback(tree.close)
        blobs = open_blob_store(data, settings)
        stack.callback(blobs.close)
        courts = CourtRegistry.from_file(data / COURTS)
        dossiers = DossierApp(events_env(data, settings), blobs, courts, config.court)
        stack.callback(dossiers.close)
        merkle = MerkleLog(tree, log_hasher(data))  # SM3 on a 国密 node
        sealer = Sealer(dossiers, merkle, signer, secret=load_leaf_secret(data), batch=settings.seal_batch,
                        witnesses=asked.witnesses if asked else (),
                        quorum=asked.quorum if asked else 0)  # fmt: skip
        witnessing = Witnessing(merkle, asked, tls=client_tls(settings.tls_ca)) if asked is not None else None
        tsas = settings.tsa_list()
        stamping = Stamping(merkle, tsas, tls=client_tls(settings.tls_ca)) if tsas else None
        anchoring = None
        if settings.chain_rpc_url:  # web3 is loaded only by a node that anchors
            from api.chain import Anchoring, chain_anchor

            anchoring = Anchoring(merkle, chain_anchor(settings))
        people = Principals(principals_env(data, settings))
        stack.callback(people.close)
        witness = None
        if logs is not None:
            witness_state = SQLiteWitnessState(private_file(data / WITNESS_DB))
            stack.callback(witness_state.close)
            witness = Witness(load_witness_signer(data), logs, witness_state)
        nonces = NonceStore(private_file(data / NONCES_DB))
        stack.callback(nonces.close)
        gate = PeerGate(peers, config.origin, settings.peer_window_seconds, nonces)
        yield Services(config, settings, merkle, signer, dossiers, sealer, people, blobs, courts, witness, peers, gate,
                       witnessing, stamping=stamping, anchoring=anchoring)  # fmt: skip


def start_companions(node: Services, stop: Stop) -> list[threading.Thread]:
    """The threads that run beside the sequencer, whichever process runs it, until ``stop``: the log's
    new checkpoints to its witnesses (SIFA_WITNESSES), trusted time for them (SIFA_TSA_URLS), their
    anchor on an EVM chain (SIFA_CHAIN_*), the fixity sweep (SIFA_FIXITY_*), publishing the log to a
    bucket (SIFA_PUBLISH_BUCKET). The ones configured; started."""
    from api.maintenance import start_fixity

    settings, threads = node.settings, []
    if node.witnessing is not None:
        threads.append(threading.Thread(target=node.witnessing.run, args=(stop, settings.witness_interval_seconds),
                                        name="sifa-witnessing", daemon=True))  # fmt: skip
    if node.stamping is not None:
        threads.append(threading.Thread(target=node.stamping.run, args=(stop, settings.tsa_interval_seconds),
                                        name="sifa-tsa", daemon=True))  # fmt: skip
    if node.anchoring is not None:
        threads.append(threading.Thread(target=node.anchoring.run, args=(stop, settings.chain_interval_seconds),
                                        name="sifa-chain", daemon=True))  # fmt: skip
    if settings.publish_bucket:  # static reads: the log's tiles to a bucket (api/publish.py)
        from api.publish import publisher_for

        threads.append(threading.Thread(target=publisher_for(settings, node.log).run, name="sifa-publish",
                                        daemon=True, args=(stop, settings.publish_interval_seconds)))  # fmt: skip
    for thread in threads:
        thread.start()
    fixity = start_fixity(settings, node.dossiers, node.blobs, stop, signer=node.signer,
                          peers=node.peers)  # scheduled upkeep: by the log's one sequencer  # fmt: skip
    return [*threads, *([fixity] if fixity is not None else [])]
