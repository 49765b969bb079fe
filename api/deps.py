"""Dependency aliases for the routers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.node import NodeConfig
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer


@dataclass
class Services:
    """What the app builds in its lifespan and the handlers use."""

    config: NodeConfig
    log: MerkleLog
    signer: Ed25519Signer


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]
