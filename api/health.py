"""``GET /healthz``: is the node sealing? Cheap enough to be polled (a handful of one-row reads).

The sequencer may be another process (``sifa seal``): what it does is read from the stores —
whether some process holds the log's sequencer lock, the event it cannot seal (its stall), when
it last committed a checkpoint — and from the sequencer this node started, if any (starting up,
given up). 200 when the node seals; 503 when it does not (docs/operations.md): no sequencer, a
stalled one, or one that holds the lock yet seals nothing — events have waited longer than the
seal lag bound (``SIFA_SEAL_LAG_SECONDS``) and no checkpoint was committed within it (a stopped
sequencer, a full disk failing every batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from eventsourcing.persistence import Notification
from pydantic import BaseModel, Field

from dossier.application import DossierApp
from ledger.store import TreeStore

EXACT_UP_TO = 100  # events waiting are counted one by one up to this many, then estimated
STARTING = 30.0  # seconds from the node's start its sequencer may take to take its lock before it counts as dead

SequencerState = Literal["sealing", "starting", "stalled", "dead"]


class StalledEvent(BaseModel):
    dossier: str
    version: int
    notification_id: int
    reason: str = Field(description="why it cannot be sealed")
    since: str = Field(description="when the sequencer first met it (UTC)")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    sequencer: SequencerState = Field(description="sealing: a sequencer holds the log's lock; starting: ours has "
                                      "just started; stalled: sealing stopped at an event it cannot seal (see "
                                      "stalled); dead: none runs")  # fmt: skip
    events_waiting: int = Field(description="stored events not yet sealed (counted up to 100, estimated beyond)")
    tree_size: int
    checkpoint_age_seconds: float | None = Field(description="since the newest checkpoint was committed (None: none "
                                                 "yet); grows on an idle node, where nothing waits")  # fmt: skip
    stalled: StalledEvent | None = None
    problems: list[str] = Field(default_factory=list, description="what is wrong, for people")


def health(store: TreeStore, app: DossierApp, *, started: Callable[[], float | None],
           gave_up: Callable[[], bool], seal_lag: float = 60.0) -> Health:  # fmt: skip
    """The node's health. ``started``: when this node started its sequencer first (monotonic time;
    restarts do not renew the grace), None when it runs none; ``gave_up``: the node could not keep
    its sequencer alive; ``seal_lag``: seconds events may wait with no new checkpoint."""
    status = store.sequencer_status()
    state = store.state()
    newest = app.recorder.max_notification_id() or 0
    cursor = int(state.cursor or 0)
    waiting = max(0, newest - cursor)
    oldest: float | None = None  # when the oldest event waiting was recorded (time.time())
    if waiting > 0:  # positions may have gaps (rolled-back transactions): count what is there
        found = app.recorder.select_notifications(start=cursor, limit=EXACT_UP_TO, inclusive_of_start=False)
        waiting = len(found) if len(found) < EXACT_UP_TO else waiting
        if found:
            oldest = _recorded_at(app, found[0])
    problems: list[str] = []
    stalled = None
    since = started()
    sequencer: SequencerState
    if status.alive:
        sequencer = "sealing"
    elif not gave_up() and since is not None and time.monotonic() - since < STARTING:
        sequencer = "starting"
    else:
        sequencer = "dead"
        problems.append("no sequencer holds the log's lock: nothing is sealed" +
                        (" (the node gave up restarting it)" if gave_up() else ""))  # fmt: skip
    if status.stall is not None:
        about = status.stall.about
        position = status.stall.position
        stalled = StalledEvent(dossier=str(about.get("dossier", "")), version=int(about.get("version", 0)),
                               notification_id=int(about.get("notification_id", position if position.isdigit() else 0)),
                               reason=status.stall.reason, since=status.stall.since)  # fmt: skip
        sequencer = "stalled"
        if "dossier" not in about:  # sealing refused as a whole (api/forkguard.py), at no event
            problems.append(f"sealing refused: {stalled.reason}")
        else:
            problems.append(f"event {stalled.version} of dossier {stalled.dossier} (position "
                            f"{stalled.notification_id}) cannot be sealed: {stalled.reason}; nothing after it is "
                            "sealed")  # fmt: skip
    age = None if status.checkpointed_at is None else round(max(0.0, time.time() - status.checkpointed_at), 3)
    if stalled is None and oldest is not None:
        waited = time.time() - oldest
        if waited > seal_lag and (age is None or age > seal_lag):
            checkpoint = "no checkpoint yet" if age is None else f"the newest checkpoint is {age:.0f} s old"
            problems.append(f"{waiting} event(s) wait, the oldest for {waited:.0f} s, and {checkpoint} (bound: "
                            f"{seal_lag:g} s, SIFA_SEAL_LAG_SECONDS): nothing is sealed — a stopped or failing "
                            "sequencer (a full disk?); see its log")  # fmt: skip
    return Health(status="degraded" if problems else "ok", sequencer=sequencer, events_waiting=waiting,
                  tree_size=state.size, checkpoint_age_seconds=age, stalled=stalled, problems=problems)  # fmt: skip


def _recorded_at(app: DossierApp, notification: Notification) -> float | None:
    """When an event was recorded (its own timestamp, decrypted: one small event per poll)."""
    try:
        stamp = getattr(app.mapper.to_domain_event(notification), "timestamp", None)
    except Exception:  # an event that cannot be read is the sequencer's stall to report, not this probe's
        return None
    return stamp.timestamp() if isinstance(stamp, datetime) else None
