"""The service's parts: the ports and settings its use cases (lookups.py, records.py, service.py's
registration) share. One instance for all of them, so the id locks and the gate are one too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dupcheck.core.catalog.gate import Gate
from dupcheck.core.catalog.writer import new_locks
from dupcheck.core.fingerprint.hashing import HashPipeline
from dupcheck.core.models import DEFAULT_MARKS, DEFAULT_POLICY, Marks, OnDuplicate
from dupcheck.core.ports import (
    DuplicateDecisions,
    DuplicateReports,
    HashIndex,
    ImageFetcher,
    RecordStore,
    ThumbnailStore,
)

if TYPE_CHECKING:
    from dupcheck.core.catalog.kept_images import KeptImageLifecycle
    from dupcheck.core.catalog.products import Embedder
    from dupcheck.core.ports import ProductIndex

# Metric names the service reports through its observer (Powertools Metrics on Lambda).
METRIC_HASHES = "HashesComputed"
METRIC_MATCHES = "MatchesFound"
METRIC_FETCH_FAILURES = "FetchFailures"
METRIC_INDEX_LATENCY = "IndexLatencyMs"
METRIC_THUMBNAIL_FAILURES = "ThumbnailReadFailures"

log = logging.getLogger("dupcheck.core.catalog.service")  # the service's one log, whichever use case writes

Observer = Callable[[str, float], None]


def _ignore(_name: str, _value: float) -> None:
    pass


@dataclass
class CatalogParts:
    """What the use cases work with: the catalog's ports, the settings they apply, the gate and the id locks."""

    store: RecordStore
    index: HashIndex
    fetcher: ImageFetcher
    pipeline: HashPipeline
    max_pixels: int
    default_top: int = 5
    observe: Observer = _ignore
    reports: DuplicateReports | None = None  # None: no duplicate report is published here
    decisions: DuplicateDecisions | None = None  # decisions on the report's groups (core/catalog/decisions.py)
    thumbnails: ThumbnailStore | None = None  # None: none kept, the look-alike check is off
    # Similar products (core/catalog/products.py): each registered picture's vector, kept beside its record.
    # None: off, or made elsewhere (on AWS, the product sync function, from the table's stream).
    embedder: Embedder | None = None
    products: ProductIndex | None = None
    # Locally, kept images go with the last record that names them (core/catalog/kept_images.py); on AWS
    # the stream sync function does that, so None there.
    kept: KeptImageLifecycle | None = None
    on_duplicate: OnDuplicate = DEFAULT_POLICY  # the gate's policy when a call names none (the settings')
    marks: Marks = DEFAULT_MARKS  # what a mark on the product means when a call names none (the settings')
    gate: Gate = field(default_factory=Gate)  # the claims of writes in flight (core/catalog/gate.py)
    # The id locks every write and remove of this process takes (core/catalog/writer.py).
    locks: tuple[threading.Lock, ...] = field(default_factory=new_locks, init=False, repr=False)
