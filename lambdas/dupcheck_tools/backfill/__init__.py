"""Backfill a catalog file (CSV / JSON Lines, local or s3://) into the record store.

What `python -m dupcheck backfill` and the notebook call: concurrent safe downloads, hashing in
a process pool, batched writes, resume by re-running (engine.py), and a failures file with one
line per failed row (failures.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from dupcheck.bootstrap import build_service, build_store
from dupcheck.core.catalog.gate import policy_of
from dupcheck.core.models import IMPORT_POLICIES, Marks, OnDuplicate
from dupcheck.core.ports import ImageFetcher, RecordStore
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill.engine import Backfill, BackfillOptions
from dupcheck_tools.backfill.failures import FailureLog, default_failures_path, explain_failures
from dupcheck_tools.backfill.gate import BackfillGate, duplicates_path_for
from dupcheck_tools.backfill.tally import BackfillSummary
from dupcheck_tools.catalog import CatalogReader, CatalogRow, Columns, local_catalog

log = logging.getLogger(__name__)

Target = Literal["local", "dynamodb"]

__all__ = [
    "Backfill", "BackfillOptions", "BackfillSummary", "FailureLog", "Target",
    "backfill_catalog", "default_failures_path", "failures_path_for", "target_settings",
]  # fmt: skip


def target_settings(
    target: Target, *, table: str | None = None, region: str | None = None,
    data_dir: str | os.PathLike[str] | None = None, **overrides: Any,
) -> Settings:  # fmt: skip
    """Settings from DUPCHECK_* variables, with the target's store (local = SQLite under the data
    dir, which the local server loads its index from; dynamodb = the table) and any overrides."""
    values: dict[str, Any] = {"store": "dynamodb" if target == "dynamodb" else "sqlite", **overrides}
    if table:
        values["table_name"] = table
    if region:
        values["aws_region"] = region
    if data_dir:
        values["data_dir"] = Path(data_dir)
    return Settings.from_env(**values)


def backfill_catalog(
    catalog: str | os.PathLike[str],
    *,
    target: Target = "local",
    table: str | None = None,
    region: str | None = None,
    failures: str | os.PathLike[str] | None = None,
    columns: Columns | None = None,
    image_base_url: str | None = None,
    options: BackfillOptions | None = None,
    settings: Settings | None = None,
    store: RecordStore | None = None,
    fetcher: ImageFetcher | None = None,
    on_duplicate: OnDuplicate | str | None = None,
    marks: Marks | str | None = None,
) -> BackfillSummary:
    """Backfill one catalog file (or s3:// URI) into the target store, each row through the duplicate
    gate by `on_duplicate` (None: DUPCHECK_ON_DUPLICATE; backfill/gate.py), a mark on the product read
    as `marks` says (None: DUPCHECK_MARKS). Raises CatalogError / SettingsError for usage problems."""
    settings = settings or target_settings(target, table=table, region=region)
    if marks:
        settings = settings.model_copy(update={"marks": Marks(marks).value})
    policy = policy_of(str(on_duplicate) if on_duplicate else None, OnDuplicate(settings.on_duplicate),
                       IMPORT_POLICIES)  # fmt: skip
    with local_catalog(catalog, region=region or settings.aws_region or None) as path:
        reader = CatalogReader(path, columns or Columns(), image_base_url)
        store = store or build_store(settings)
        failure_log = FailureLog(failures_path_for(catalog, path, failures))
        dry_run = (options or BackfillOptions()).dry_run
        gate = None
        if policy.rule.checks and not dry_run:
            # The check's service: the same store, its index (loaded here locally; OpenSearch on AWS).
            service = build_service(settings, store=store, fetcher=fetcher)
            gate = BackfillGate(service, policy, failure_log, duplicates_path_for(failure_log.path))
        try:
            engine = Backfill(settings, store, failure_log, fetcher=fetcher, options=options,
                              screen=gate.screen if gate else None, lost=gate.lost if gate else None)  # fmt: skip
            total = reader.count_rows() if (options or BackfillOptions()).progress else None
            summary = engine.run(_noting_phash(reader), total)
            summary.failure_report = explain_failures(failure_log, summary.rows)
            summary.on_duplicate = policy.value
            if gate is not None:
                summary.duplicates, summary.duplicates_file = gate.found, str(gate.path)
            return summary
        finally:
            failure_log.close()
            if gate is not None:
                gate.close()


def failures_path_for(
    catalog: str | os.PathLike[str], local_copy: Path, failures: str | os.PathLike[str] | None
) -> Path:
    """`failures` if given, else next to the catalog; for an s3:// catalog, in the working folder
    (not next to its temporary local copy)."""
    if failures:
        return Path(failures)
    if str(catalog).startswith("s3://"):
        return default_failures_path(Path.cwd() / local_copy.name)
    return default_failures_path(local_copy)


def _noting_phash(rows: Iterable[CatalogRow]) -> Iterator[CatalogRow]:
    """Say once, rather than ignore silently, that a prototype export's `phash` is not used."""
    noted = False
    for row in rows:
        if row.phash and not noted:
            noted = True
            log.warning(
                "the catalog's phash column (the prototype's 64-bit pHash) cannot be upgraded: every image is "
                "re-hashed; `python -m dupcheck migrate` also reports which pictures changed since"
            )
        yield row
