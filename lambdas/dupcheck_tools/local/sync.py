"""The local server's index follows writes other processes make to the same SQLite file.

`python -m dupcheck add`, `remove` or `backfill` against a running server's data dir write to
SQLite only; without this the server's in-process index would not see them until a restart.
Every POLL_S the follower reads the store's change log (adapters/sqlite_store.py) after the
version the index reflects, and applies each changed id as it now is in the store: upserted
when it holds a record of the index's pipeline, removed otherwise. Applying the server's own
writes again changes nothing, so the log needs no owner. A follower that fell behind the log's
oldest entry reloads the whole index. A server starts with its index not loaded (cli/serve.py),
so it answers at once: the follower's first poll loads it (/health says `index_ready`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from dupcheck.adapters.local_index import KeyedHashRows, LocalHashIndex
from dupcheck.core.catalog.service import DupcheckService
from dupcheck_tools.local.job_loop import Repeating

logger = logging.getLogger(__name__)

POLL_S = 0.5  # other processes' writes are searchable within this (the target is 2 s)


class IndexFollower:
    def __init__(self, store: KeyedHashRows, index: LocalHashIndex, hash_algos: Collection[str],
                 poll_s: float = POLL_S) -> None:  # fmt: skip
        self.store, self.index, self.hash_algos, self.poll_s = store, index, hash_algos, poll_s
        index.follow(store, hash_algos)
        if index.source_version is None and index.ready:
            index.source_version = store.latest_change()
        self._repeating = Repeating("dupcheck-index-follower", self.poll, [poll_s])

    @property
    def version(self) -> int:
        return self.index.source_version or 0

    @classmethod
    def for_service(cls, service: DupcheckService) -> IndexFollower | None:
        """A follower for a service on SQLite and the in-process index; None for anything else."""
        if isinstance(service.parts.store, KeyedHashRows) and isinstance(service.parts.index, LocalHashIndex):
            return cls(service.parts.store, service.parts.index, service.parts.pipeline.reads)
        return None

    def start(self) -> None:
        self._repeating.start()  # a locked or vanished file: tried again at the next poll

    def stop(self) -> None:
        self._repeating.stop()

    def poll(self) -> int:
        """Apply every change after the index's version (LocalHashIndex.catch_up, which loads the index
        first when the server started before it); how many ids."""
        loading, started = not self.index.ready, time.monotonic()
        applied = self.index.catch_up()
        if loading and self.index.ready:
            logger.info("loaded the index: %d records in %.1f s", self.index.count(), time.monotonic() - started)
        return applied
