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

from dupcheck.adapters.local_index import KeyedHashRows, LocalHashIndex, entity_key
from dupcheck.core.service import DupcheckService
from dupcheck_tools.local.job_loop import Repeating

logger = logging.getLogger(__name__)

POLL_S = 0.5  # other processes' writes are searchable within this (the target is 2 s)


class IndexFollower:
    def __init__(
        self, store: KeyedHashRows, index: LocalHashIndex, hash_algos: Collection[str], poll_s: float = POLL_S
    ) -> None:
        self.store, self.index, self.hash_algos, self.poll_s = store, index, hash_algos, poll_s
        self.version = index.source_version if index.source_version is not None else store.latest_change()
        self._repeating = Repeating("dupcheck-index-follower", self.poll, [poll_s])

    @classmethod
    def for_service(cls, service: DupcheckService) -> IndexFollower | None:
        """A follower for a service on SQLite and the in-process index; None for anything else."""
        if isinstance(service.store, KeyedHashRows) and isinstance(service.index, LocalHashIndex):
            return cls(service.store, service.index, service.pipeline.reads)
        return None

    def start(self) -> None:
        self._repeating.start()  # a locked or vanished file: tried again at the next poll

    def stop(self) -> None:
        self._repeating.stop()

    def poll(self) -> int:
        """Apply every change after `version`; returns how many ids were applied."""
        applied = 0
        if not self.index.ready:  # the server started before its index (cli/serve.py): load it
            self._reload("loaded the index")
        while True:
            changes, oldest = self.store.changes_since(self.version)
            if oldest > self.version + 1:  # the log moved past us: some changes are gone
                logger.warning("index follower fell behind the change log: reloading the index")
                self._reload("reloaded the index")
                return applied
            if not changes:
                return applied
            ids = list(dict.fromkeys(entity_id for _, entity_id in changes))
            current = self.store.index_rows_for(ids, self.hash_algos)
            self.index.upsert_rows(current.values())
            for entity_id in ids:
                if entity_id not in current:
                    self.index.remove_key(entity_key(entity_id))
            self.version = changes[-1][0]
            applied += len(ids)

    def _reload(self, what: str) -> None:
        started = time.monotonic()
        version = self.store.latest_change()  # before the rows: a change in between is replayed
        keys, codes = self.store.index_codes(self.hash_algos, self.index.bits)
        count = self.index.load_codes(keys, codes, version=version)
        self.version = version
        logger.info("%s: %d records in %.1f s", what, count, time.monotonic() - started)
