"""Hashing in worker processes: each builds its pipeline once and turns image bytes into records.

Hashing is CPU-bound and Python threads share one core, so backfill hashes in a process pool
while its download threads wait on the network. A worker needs only the pipeline (no store,
index or fetcher): `build_entry` is the same function the API's register uses.

This module sits outside the `backfill` package on purpose: a spawned process imports the
package of the function it runs, and `backfill` brings the stores and pydantic settings, which
doubled a worker's start (the first hashes of every run wait for it).
"""

from __future__ import annotations

import os
from typing import Any

from dupcheck.core.catalog.products import Embedder
from dupcheck.core.catalog.records import build_entry
from dupcheck.core.errors import DupcheckError
from dupcheck.core.fingerprint.hashing import HashPipeline, get_pipeline
from dupcheck.core.pictures import imaging
from dupcheck_tools.worker_process import start_worker

Outcome = tuple[str, Any]  # ("ok", Entry: the record, thumbnail, product vector) or ("error", (code, message))

_pipeline: HashPipeline | None = None
_embedder: Embedder | None = None
_max_pixels = 0


def init_worker(algo: str, max_pixels: int, niceness: int = 0, product_model: str | None = None) -> None:
    """Runs once per hashing process; `niceness` lowers its CPU priority (BackfillOptions.hash_niceness);
    `product_model`, the model file that makes each picture's product vector too (similar products)."""
    global _pipeline, _embedder, _max_pixels
    start_worker()
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    _pipeline, _max_pixels = get_pipeline(algo), max_pixels
    if product_model is not None:
        from dupcheck.adapters.onnx_model import OnnxEmbeddingModel

        _embedder = Embedder(OnnxEmbeddingModel(product_model))


def hash_row(
    pipeline: HashPipeline, max_pixels: int, entity_id: str, sku: str, image_url: str, data: bytes,
    embedder: Embedder | None = None,
) -> Outcome:  # fmt: skip
    """One row's record and thumbnail, or its failure (never raises: one bad image must not end a run).
    Background work: it waits for decoding memory as long as requests hold it (core/pictures/imaging.py)."""
    try:
        with imaging.patient():
            entry = build_entry(pipeline, data, entity_id=entity_id, sku=sku, image_url=image_url,
                                max_pixels=max_pixels, embedder=embedder)  # fmt: skip
        return "ok", entry
    except DupcheckError as exc:
        return "error", (exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - reported as this row's failure, never a crash
        return "error", ("internal_error", f"{type(exc).__name__}: {exc}")


def ready() -> None:
    """A no-op job: submitting one per worker at the start has the pool start them all at once."""


def hash_in_worker(jobs: list[tuple[str, str, str, bytes]]) -> list[Outcome]:
    """The job a pool process runs (with the pipeline `init_worker` built): a few rows'
    (entity_id, sku, image_url, image bytes), an outcome each, in order."""
    assert _pipeline is not None, "init_worker did not run"
    return [hash_row(_pipeline, _max_pixels, *job, embedder=_embedder) for job in jobs]
