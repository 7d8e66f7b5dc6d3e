"""The composition root: the one place that turns settings into adapters and a service.

AWS adapters are imported only when settings ask for them, so the embedded mode never loads
boto3 or opensearch-py. Tests pass ready-made adapters as overrides; the tools build their
stores here too.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cache
from pathlib import Path

from threadpoolctl import threadpool_limits

from dupcheck.core.catalog.gate import Gate
from dupcheck.core.catalog.kept_images import KeptImageLifecycle, KeptImagesFetcher
from dupcheck.core.catalog.parts import CatalogParts, Observer
from dupcheck.core.catalog.products import Embedder, ProductSearch, default_model_path
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.catalog.writer import RecordWriter
from dupcheck.core.fingerprint.hashing import HashPipeline, get_pipeline
from dupcheck.core.jobs.import_runs import Dispatcher, RowImporter
from dupcheck.core.jobs.imports import ImportService
from dupcheck.core.jobs.scans import ScanService
from dupcheck.core.models import Marks, OnDuplicate
from dupcheck.core.pictures import imaging
from dupcheck.core.ports import (
    DuplicateDecisions,
    DuplicateReports,
    EmbeddingModel,
    HashIndex,
    ImageFetcher,
    ImportStarter,
    KeptImages,
    KeptImageUses,
    ProductIndex,
    RecordStore,
    ScanStarter,
    ThumbnailStore,
)
from dupcheck.core.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# A catalog is up to DUPCHECK_MAX_CATALOG_BYTES: give its download more time than an image's.
CATALOG_FETCH_DEADLINE_S = 300.0
IMPORTS_DB = "imports.sqlite3"
SCANS_DB = "scans.sqlite3"
DECISIONS_DB = "decisions.sqlite3"
# On AWS a scan says where it is every few seconds while it runs; one silent this long has
# stopped (the scan function failed past its queue's retries) and no longer holds the lock.
SCAN_STALLED_AFTER_S = 30 * 60


def one_blas_thread() -> None:
    """Limit numpy's BLAS (OpenBLAS in numpy's wheels) to one thread in this process. What the
    service multiplies are small matrices (verification's 24x24 windows, a few dozen at a time),
    for which a second BLAS thread gives nothing, and on a busy machine waits behind the other
    work: with OpenBLAS's default of a thread per core a new product's verification was no
    faster with the machine's other core idle, and took 2-3x as long with it busy
    (docs/lab/benchmarks.md). Requests run in parallel on their own threads (the local server) or
    processes (Lambda) instead. Called where a process starts serving (the Lambda handler's cold
    start, `python -m dupcheck`), never by the core: a library user's process keeps its own
    setting. threadpoolctl finds the BLAS numpy loaded (imported above, by core/fingerprint/hashing.py),
    whichever it is, and sets it at run time (OPENBLAS_NUM_THREADS works only before numpy is
    imported)."""
    threadpool_limits(limits=1, user_api="blas")


def require_aws_region(settings: Settings) -> None:
    """Refuse, in one sentence, to build an AWS adapter without a region (botocore's NoRegionError
    surfaces deep inside the first call, as a traceback). Lambda always sets AWS_REGION."""
    if settings.aws_region:
        return
    import boto3

    if not boto3.session.Session().region_name:
        raise SettingsError(
            "the DynamoDB store needs an AWS region: pass --region (for example --region eu-west-1), or set "
            "AWS_REGION or DUPCHECK_AWS_REGION"
        )


def configure_decoding(settings: Settings) -> None:
    """This process's decoding limits: what one image and all at once may take (core/pictures/imaging.py)."""
    imaging.configure(
        max_decode_bytes=settings.max_decode_mb * imaging.MB,
        total_bytes=settings.decode_budget_mb * imaging.MB,
        wait_s=settings.decode_wait_s,
    )


def build_store(settings: Settings) -> RecordStore:
    if settings.store == "dynamodb":
        if not settings.table_name:
            raise SettingsError("the DynamoDB store needs a table: DUPCHECK_TABLE_NAME (or --table)")
        require_aws_region(settings)
        from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore

        return DynamoDBRecordStore.from_settings(settings)
    from dupcheck.adapters.sqlite_store import SqliteRecordStore

    return SqliteRecordStore(settings.sqlite_path)


def build_gate(settings: Settings, store: RecordStore) -> Gate:
    """The duplicate gate's claims (core/catalog/gate.py): in the records' SQLite file, or on AWS the claims
    table written with the records table (without one, a check sees only what the index holds)."""
    if settings.store == "dynamodb":
        from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore

        if not settings.claims_table or not isinstance(store, DynamoDBRecordStore):
            log.warning("no claims table (DUPCHECK_CLAIMS_TABLE): concurrent writes of one picture are not guarded")
            return Gate()
        from dupcheck.adapters.dynamodb_claims import DynamoDBClaims

        return Gate(DynamoDBClaims.from_settings(settings, store))
    from dupcheck.adapters.sqlite_store import SqliteRecordStore

    if isinstance(store, SqliteRecordStore):
        from dupcheck.adapters.sqlite_claims import SqliteClaims

        return Gate(SqliteClaims(store))
    return Gate()


def build_writer(
    settings: Settings, store: RecordStore, *, thumbnails: ThumbnailStore | None, products: ProductIndex | None
) -> RecordWriter:
    """The write path of a batch tool (backfill, migrate, reindex: core/catalog/writer.py) into `store`: with
    the gate's claims, and locally the kept images; the index follows the store by itself."""
    kept = build_kept_image_lifecycle(settings, store) if settings.store == "sqlite" else None
    return RecordWriter(store, thumbnails=thumbnails, products=products, claims=build_gate(settings, store).claims,
                        kept=kept)  # fmt: skip


def build_thumbnails(settings: Settings) -> ThumbnailStore | None:
    """Where thumbnails live beside the records: a SQLite file in the data dir, or the S3 bucket
    of a DynamoDB deployment (None without one: no thumbnails are kept and the look-alike check
    is off, which is logged)."""
    if settings.store == "dynamodb":
        if not settings.thumbnail_bucket:
            log.warning("no thumbnail bucket (DUPCHECK_THUMBNAIL_BUCKET): the look-alike check is off")
            return None
        from dupcheck.adapters.s3_thumbnails import S3Thumbnails

        return S3Thumbnails.from_settings(settings)
    from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails

    return SqliteThumbnails(settings.thumbnails_path)


def build_index(
    settings: Settings, pipeline: HashPipeline, store: RecordStore | None = None, *, load: bool = True
) -> HashIndex:
    """The search index; the in-process one is loaded from `store` so it survives restarts.
    `load=False` leaves a SQLite-backed one to be loaded later (the server's follower loads it
    in the background, dupcheck_tools/local/sync.py), not ready until then."""
    if settings.index == "opensearch":
        from dupcheck.adapters.opensearch import OpenSearchHashIndex

        return OpenSearchHashIndex.from_settings(settings, bits=pipeline.index_bits, parts=pipeline.index_parts)
    from dupcheck.adapters.local_index import KeyedHashRows, LocalHashIndex

    if isinstance(store, KeyedHashRows):
        index = LocalHashIndex(pipeline.index_bits, parts=pipeline.index_parts, resolve_ids=store.ids_for_keys)
        index.follow(store, pipeline.reads)
        if not load:
            index.expect_load()
            return index
        version = store.latest_change()  # before the rows: a change in between is replayed, not lost
        index.load_codes(*store.index_codes(pipeline.reads, pipeline.index_bits), version=version)
        return index
    index = LocalHashIndex(pipeline.index_bits, parts=pipeline.index_parts)
    if store is not None:
        index.upsert_many(r for r in store.scan() if r.hash_algo in pipeline.reads)
    return index


def build_embedder(settings: Settings) -> Embedder | None:
    """The product model, where similar products are on: `auto` turns them on when onnxruntime
    and the model file are installed (`pip install -e ".[products]"`, then `python -m
    dupcheck_tools.product_model`; `make venv` does both), `on` refuses to start without them."""
    if settings.products == "off":
        return None
    path = settings.product_model or default_model_path()
    try:
        import onnxruntime  # noqa: F401 - only whether it is installed
    except ImportError:
        problem = 'onnxruntime is not installed: pip install -e ".[products]"'
    else:
        problem = "" if path.is_file() else f"no product model at {path}: python -m dupcheck_tools.product_model"
    if problem:
        if settings.products == "on":
            raise SettingsError(f"DUPCHECK_PRODUCTS=on, but {problem}")
        log.info("similar products are off: %s", problem)
        return None
    return Embedder(_onnx_model(path))


@cache
def _onnx_model(path: Path) -> EmbeddingModel:
    """One session per process and model file, however many services are built (each ~40 MB)."""
    from dupcheck.adapters.onnx_model import OnnxEmbeddingModel

    return OnnxEmbeddingModel(path)


def build_products(settings: Settings) -> ProductIndex:
    """Where product vectors live and are searched: `products.sqlite3` in the data dir, searched in
    process, or on AWS their OpenSearch index."""
    if settings.index == "opensearch":
        from dupcheck.adapters.opensearch import OpenSearchProductIndex

        return OpenSearchProductIndex.from_settings(settings)
    from dupcheck.adapters.local_products import LocalProductIndex

    return LocalProductIndex(settings.products_path)


def build_local_products(settings: Settings) -> tuple[Embedder, ProductIndex] | None:
    """The model and index of a process that makes product vectors as it hashes (register, backfill,
    import jobs, reindex): the embedded mode, with similar products on. On AWS the product sync
    function makes them from the table's stream, so the API and the tools load no model there."""
    if settings.store != "sqlite":
        return None
    embedder = build_embedder(settings)
    return (embedder, build_products(settings)) if embedder is not None else None


def build_product_search(settings: Settings, service: DupcheckService) -> ProductSearch | None:
    """`/similar_products` over the service's store and fetcher (None where similar products are off)."""
    embedder = service.parts.embedder if service.parts.embedder is not None else build_embedder(settings)
    if embedder is None:
        return None
    return ProductSearch(
        embedder=embedder, index=service.parts.products or build_products(settings), store=service.parts.store,
        fetch=service.lookups.fetch, max_pixels=service.parts.max_pixels, default_top=service.parts.default_top,
    )  # fmt: skip


def build_fetcher(settings: Settings) -> ImageFetcher:
    """The safe fetcher, answering the addresses of kept images from where they are kept."""
    from dupcheck.adapters.http_fetcher import HttpImageFetcher

    fetcher = HttpImageFetcher.from_settings(settings)
    images = build_kept_images(settings)
    return KeptImagesFetcher(fetcher, images) if images is not None else fetcher


def build_catalog_fetcher(settings: Settings) -> ImageFetcher:
    """The safe fetcher for an import's `catalog_url`: the same address checks, a catalog's limits."""
    from dupcheck.adapters.http_fetcher import HttpImageFetcher

    return HttpImageFetcher.from_settings(
        settings, max_bytes=settings.max_catalog_bytes, deadline=CATALOG_FETCH_DEADLINE_S
    )


def build_kept_images(settings: Settings) -> KeptImages | None:
    """Where uploaded pictures without an address are kept: the data dir, or on AWS the imports
    bucket (None when the deployment names none: such uploads then keep no picture)."""
    if settings.store == "dynamodb":
        if not settings.imports_bucket:
            return None
        from dupcheck.adapters.s3_files import S3KeptImages

        return S3KeptImages.from_settings(settings)
    from dupcheck.adapters.local_files import LocalKeptImages

    return LocalKeptImages(settings.data_dir / "images")


def build_kept_image_lifecycle(settings: Settings, store: RecordStore) -> KeptImageLifecycle | None:
    """Kept images and their life: deleted when no record of `store` names them any more (None
    where no picture is kept). Locally the service deletes them with their last record; on AWS
    the stream sync function does, and the API only keeps them and deletes one on request."""
    images = build_kept_images(settings)
    if images is None:
        return None
    uses: KeptImageUses | None = store if isinstance(store, KeptImageUses) else None
    claims = build_gate(settings, store).claims if settings.store == "dynamodb" else None
    if claims is not None:
        from dupcheck.adapters.dynamodb_claims import DynamoDBClaims, DynamoDBKeptUses
        from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore

        if isinstance(claims, DynamoDBClaims) and isinstance(store, DynamoDBRecordStore):
            uses = DynamoDBKeptUses(store, claims)  # exact uses and pins, guarded deletes
    return KeptImageLifecycle(images, uses)


class _WaitForTheServer:
    """Locally, jobs and scans are run by the server's workers, which find queued ones themselves
    (at start and every few seconds): one recorded anywhere else waits for them."""

    def start(self, job: object) -> None:
        pass


def imports_configured(settings: Settings) -> bool:
    """Whether this deployment runs import jobs: always locally; on AWS when it names their table."""
    return settings.store != "dynamodb" or bool(settings.imports_table)


def build_imports(settings: Settings, *, starter: ImportStarter | None = None) -> ImportService:
    """Import jobs: SQLite and files under the data dir (the local server passes its worker as
    `starter`), or on AWS the imports table, bucket and start queue."""
    if settings.store == "dynamodb":
        if not (settings.imports_table and settings.imports_bucket):
            raise SettingsError("imports on AWS need DUPCHECK_IMPORTS_TABLE and DUPCHECK_IMPORTS_BUCKET")
        from dupcheck.adapters.dynamodb_jobs import DynamoDBImportJobs
        from dupcheck.adapters.s3_files import S3CatalogFiles, S3ResultFiles
        from dupcheck.adapters.sqs_queues import SqsImportStarter

        return ImportService(
            jobs=DynamoDBImportJobs.from_settings(settings),
            catalogs=S3CatalogFiles.from_settings(settings),
            starter=starter or SqsImportStarter.from_settings(settings),
            max_catalog_bytes=settings.max_catalog_bytes,
            on_duplicate=OnDuplicate(settings.on_duplicate),
            marks=Marks(settings.marks),
            pictures=build_kept_image_lifecycle(settings, build_store(settings)),
            result_files=S3ResultFiles.from_settings(settings),  # a results CSV: a download link
        )
    from dupcheck.adapters.local_files import LocalCatalogFiles
    from dupcheck.adapters.sqlite_jobs import SqliteImportJobs

    return ImportService(
        jobs=SqliteImportJobs(settings.data_dir / IMPORTS_DB),
        catalogs=LocalCatalogFiles(settings.data_dir / "imports"),
        starter=starter or _WaitForTheServer(),
        max_catalog_bytes=settings.max_catalog_bytes,
        on_duplicate=OnDuplicate(settings.on_duplicate),
        marks=Marks(settings.marks),
        pictures=build_kept_image_lifecycle(settings, build_store(settings)),
    )


def build_reports(settings: Settings) -> DuplicateReports:
    """Where the duplicate report is published: locally DATA_DIR/duplicates (the server's scans
    and `python -m dupcheck duplicates` write it there), on AWS the imports bucket's `reports/`."""
    if settings.store == "dynamodb" and settings.imports_bucket:
        from dupcheck.adapters.s3_reports import S3DuplicateReports

        reports: DuplicateReports = S3DuplicateReports.from_settings(settings)
        return reports
    from dupcheck.adapters.report_file import REPORT_NAME, DuplicateReportFile

    return DuplicateReportFile(settings.data_dir / "duplicates" / REPORT_NAME)


def scans_configured(settings: Settings) -> bool:
    """Whether this deployment runs duplicate scans: always locally; on AWS when it names their queue."""
    return settings.store != "dynamodb" or bool(settings.imports_table and settings.scans_queue_url)


def build_scans(settings: Settings, *, starter: ScanStarter | None = None) -> ScanService:
    """Duplicate scans: `scans.sqlite3` in the data dir (the local server passes its scan worker as
    `starter`), or on AWS the imports' jobs table and the scans queue."""
    if settings.store == "dynamodb":
        if not (settings.imports_table and settings.scans_queue_url):
            raise SettingsError("duplicate scans on AWS need DUPCHECK_IMPORTS_TABLE and DUPCHECK_SCANS_QUEUE_URL")
        from dupcheck.adapters.dynamodb_scans import DynamoDBScanJobs
        from dupcheck.adapters.sqs_queues import SqsScanStarter

        return ScanService(jobs=DynamoDBScanJobs.from_settings(settings),
                           starter=starter or SqsScanStarter.from_settings(settings),
                           stalled_after_s=SCAN_STALLED_AFTER_S)  # fmt: skip
    from dupcheck.adapters.sqlite_scans import SqliteScanJobs

    return ScanService(jobs=SqliteScanJobs(settings.data_dir / SCANS_DB), starter=starter or _WaitForTheServer())


def build_decisions(settings: Settings) -> DuplicateDecisions | None:
    """The decisions on duplicate groups: `decisions.sqlite3` in the data dir, or on AWS their table
    (None when the deployment names none: the routes answer 503)."""
    if settings.store == "dynamodb":
        if not settings.decisions_table:
            return None
        from dupcheck.adapters.dynamodb_decisions import DynamoDBDuplicateDecisions

        return DynamoDBDuplicateDecisions.from_settings(settings)
    from dupcheck.adapters.sqlite_decisions import SqliteDuplicateDecisions

    return SqliteDuplicateDecisions(settings.data_dir / DECISIONS_DB)


def build_service(
    settings: Settings,
    *,
    store: RecordStore | None = None,
    index: HashIndex | None = None,
    fetcher: ImageFetcher | None = None,
    pipeline: HashPipeline | None = None,
    observe: Observer | None = None,
    load_index: bool = True,
    thumbnails: ThumbnailStore | None = None,
    embedder: Embedder | None = None,
    products: ProductIndex | None = None,
) -> DupcheckService:
    """The service. Locally it computes each registered picture's product vector too (where similar
    products are on); on AWS the product sync function does, from the table's stream, so the API
    function loads no model (docs/lab/similar-products.md)."""
    configure_decoding(settings)
    pipeline = pipeline or get_pipeline()
    store = store or build_store(settings)
    index = index or build_index(settings, pipeline, store, load=load_index)
    if embedder is None and (found := build_local_products(settings)) is not None:
        embedder, products = found[0], products or found[1]
    elif embedder is not None and products is None:
        products = build_products(settings)
    parts = CatalogParts(
        store=store,
        index=index,
        fetcher=fetcher or build_fetcher(settings),
        pipeline=pipeline,
        thumbnails=thumbnails if thumbnails is not None else build_thumbnails(settings),
        max_pixels=settings.max_image_pixels,
        default_top=settings.default_top,
        reports=build_reports(settings),
        decisions=build_decisions(settings),
        embedder=embedder,
        products=products,
        kept=build_kept_image_lifecycle(settings, store) if settings.store == "sqlite" else None,
        on_duplicate=OnDuplicate(settings.on_duplicate),
        marks=Marks(settings.marks),
        gate=build_gate(settings, store),
    )
    if observe is not None:
        parts.observe = observe
    return DupcheckService(parts)


def build_dispatcher(settings: Settings) -> Dispatcher:
    """The import dispatcher of the AWS deployment: catalogs from S3 (or their URL), rows to SQS."""
    from dupcheck.adapters.dynamodb_jobs import DynamoDBImportJobs
    from dupcheck.adapters.s3_files import S3CatalogFiles
    from dupcheck.adapters.sqs_queues import SqsImportStarter, SqsRowQueue

    return Dispatcher(
        jobs=DynamoDBImportJobs.from_settings(settings),
        catalogs=S3CatalogFiles.from_settings(settings),
        queue=SqsRowQueue.from_settings(settings),
        fetch_catalog=build_catalog_fetcher(settings).fetch,
        max_catalog_bytes=settings.max_catalog_bytes,
        continue_later=SqsImportStarter.from_settings(settings).continue_later,
        pictures=build_kept_image_lifecycle(settings, build_store(settings)),
    )


def build_row_importer(settings: Settings, service: DupcheckService) -> RowImporter:
    """What the import worker imports rows with: the service's write path (its store, thumbnails
    and gate claims; the index is the stream's to update), the safe fetcher, the pipeline."""
    configure_decoding(settings)
    return RowImporter(
        writer=dataclasses.replace(service.records.writer, index=None),
        fetcher=build_fetcher(settings),
        pipeline=get_pipeline(),
        max_pixels=settings.max_image_pixels,
    )
