"""One validated settings model, read from `DUPCHECK_*` environment variables.

Every environment variable name is derived here (`env_name`), and `infra/` reads the same
names, so a deployment can never set a variable the code does not read.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from dupcheck.core.choices import OneOf
from dupcheck.core.models import DEFAULT_MARKS, DEFAULT_POLICY, ITEM_POLICIES, Marks, policies_meaning

ENV_PREFIX = "DUPCHECK_"
# Settings that had another name: the old name is refused with the new one (one name everywhere).
RENAMED = {"allow_private_urls": "allow_loopback_urls"}

MB = 1024 * 1024


class SettingsError(ValueError):
    """Raised at start-up when the environment holds an invalid value."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Where things live
    store: Literal["sqlite", "dynamodb"] = Field("sqlite", description="Record store backend.")
    index: Literal["local", "opensearch"] = Field("local", description="Search index backend.")
    data_dir: Path = Field(Path("./data"), description="Folder of the embedded SQLite store.")

    # Safe fetching of untrusted image URLs
    allow_loopback_urls: bool = Field(
        False, description="Let the fetcher reach this machine (127.0.0.0/8, ::1): demos and tests only."
    )
    allowed_hosts: tuple[str, ...] = Field(
        (), description="Comma-separated host allow-list; empty allows every public host."
    )
    max_image_bytes: int = Field(20 * MB, gt=0, description="Largest download or upload, in bytes.")
    max_image_pixels: int = Field(
        40_000_000, gt=0, description="Largest decoded image (width*height): decompression-bomb guard."
    )
    max_decode_mb: int = Field(
        240, ge=16, description="Most memory one image's decoding may take, by its header (MB); a larger "
        "one is refused (413). With the pixel limit it keeps a request under 300 MB (docs/api.md, images).",
    )  # fmt: skip
    decode_budget_mb: int = Field(
        480, ge=16, description="Memory the decodings running at once may take (MB): a request beyond it "
        "waits, then is refused with 503 server_busy and Retry-After.",
    )  # fmt: skip
    decode_wait_s: float = Field(10.0, gt=0, description="Seconds a request waits for decoding memory.")
    connect_timeout: float = Field(3.0, gt=0, description="Seconds to connect to an image host.")
    read_timeout: float = Field(10.0, gt=0, description="Seconds between bytes from an image host.")
    fetch_deadline: float = Field(20.0, gt=0, description="Seconds for a whole download.")
    max_redirects: int = Field(5, ge=0, le=10, description="Redirects followed, each re-checked.")

    # API
    default_top: int = Field(5, ge=1, le=100, description="Matches returned when `top` is absent.")
    on_duplicate: Annotated[str, OneOf(ITEM_POLICIES)] = Field(
        DEFAULT_POLICY.value,
        description="The duplicate gate's policy where a call names none (every way in: the API, imports, the "
        f"command line, the notebook): {policies_meaning(ITEM_POLICIES)}.",
    )  # fmt: skip
    marks: Annotated[str, OneOf(Marks)] = Field(
        DEFAULT_MARKS.value,
        description=f"What a mark that lies on the product means where a call names none: {policies_meaning(Marks)}; "
        "a mark across the backdrop or at the picture's edge is an overlay either way.",
    )  # fmt: skip
    host: str = Field("127.0.0.1", description="Local server bind address.")
    port: int = Field(8000, ge=0, le=65535, description="Local server port.")
    api_key: SecretStr | None = Field(
        None, description="Local server: the key every route but /health, /openapi.json, /docs needs (x-api-key)."
    )
    server_names: tuple[str, ...] = Field(
        (), description="Local server: host names it answers to besides IP addresses and localhost."
    )
    server_threads: int = Field(8, ge=1, le=64, description="Local server: threads that answer requests.")
    server_connections: int = Field(
        200, ge=1, le=10_000, description="Local server: open connections at most (more wait to be accepted)."
    )
    server_connections_per_client: int = Field(
        16, ge=1, le=10_000, description="Local server: open connections from one client address at most (one "
        "more is answered 503).",
    )  # fmt: skip
    server_first_byte_deadline: float = Field(
        5.0, gt=0, description="Local server: seconds a new connection has to send its first byte; a silent one "
        "is closed then.",
    )  # fmt: skip
    server_header_deadline: float = Field(
        10.0, gt=0, description="Local server: seconds a request's headers have to arrive, from its first byte (408)."
    )
    server_request_deadline: float = Field(
        120.0,
        gt=0,
        description="Local server: seconds a whole request has to arrive, from its first byte (408).",
    )
    log_level: str = Field("INFO", description="Log level.")

    # Catalog imports (POST /imports)
    max_catalog_bytes: int = Field(
        100 * MB, gt=0, description="Largest catalog file an import takes (an upload, a catalog URL), in bytes."
    )
    catalog_budget_mb: int = Field(
        256, ge=16, description="Local server: memory the catalog bodies being read at once may take (MB; at least "
        "what the largest one takes): a request beyond it waits, then is refused with 503 server_busy.",
    )  # fmt: skip
    import_workers: int = Field(
        8, ge=1, le=64, description="Local server: downloads at once for the running import job."
    )
    import_hash_workers: int = Field(
        1, ge=-1, le=16, description="Local server: hashing processes of an import job (-1: in its download "
        "threads). One leaves the other cores to the API's own requests.",
    )  # fmt: skip
    import_hash_niceness: int = Field(
        10, ge=0, le=19, description="Local server: added to the nice value of an import's hashing process, so "
        "that requests get the CPU first (0: an equal share).",
    )  # fmt: skip

    # Similar products (docs/lab/similar-products.md)
    products: Literal["auto", "on", "off"] = Field(
        "auto", description="Similar products: auto (on where onnxruntime and the product model are installed), "
        "on (refuse to start without them), off.",
    )  # fmt: skip
    product_model: Path | None = Field(
        None, description="The product model file (default: the one `python -m dupcheck_tools.product_model` "
        "builds inside the package).",
    )  # fmt: skip
    opensearch_products_index: str = Field(
        "dupcheck-products", description="OpenSearch index of the product vectors (index=opensearch)."
    )

    # AWS
    table_name: str = Field("", description="DynamoDB table of hash records (store=dynamodb).")
    thumbnail_bucket: str = Field(
        "", description="S3 bucket of the thumbnails the look-alike check reads (store=dynamodb; empty: no check)."
    )
    opensearch_endpoint: str = Field("", description="OpenSearch domain endpoint (index=opensearch).")
    opensearch_index: str = Field("dupcheck-hashes", description="OpenSearch index name.")
    aws_region: str = Field("", description="AWS region; empty uses AWS_REGION.")
    opensearch_search_mode: Literal["approximate", "exact"] = Field(
        "approximate", description="HNSW k-NN, or exact script_score over every document (small catalogs)."
    )
    # HNSW values measured with faiss IndexBinaryHNSW, the engine OpenSearch uses (docs/lab/hnsw.md).
    opensearch_m: int = Field(32, ge=4, le=128, description="HNSW links per node.")
    opensearch_ef_construction: int = Field(128, ge=16, description="HNSW build-time search width.")
    opensearch_ef_search: int = Field(128, ge=16, description="HNSW query-time search width (at least k).")
    opensearch_timeout: float = Field(5.0, gt=0, description="Seconds per OpenSearch request.")
    opensearch_max_retries: int = Field(1, ge=0, le=5, description="OpenSearch client retries.")
    dynamodb_consistent_read: bool = Field(False, description="Strongly consistent DynamoDB reads.")
    dynamodb_max_attempts: int = Field(8, ge=1, le=20, description="Attempts for unprocessed batch items.")
    imports_table: str = Field("", description="DynamoDB table of import jobs (store=dynamodb).")
    imports_bucket: str = Field("", description="S3 bucket of import catalogs and kept images (store=dynamodb).")
    import_starts_queue_url: str = Field("", description="SQS queue that starts import jobs (the dispatcher's).")
    import_rows_queue_url: str = Field("", description="SQS queue of rows to import (the import worker's).")
    scans_queue_url: str = Field("", description="SQS queue that starts duplicate scans (the scan function's).")
    decisions_table: str = Field(
        "", description="DynamoDB table of the decisions on duplicate groups (store=dynamodb; empty: none)."
    )
    claims_table: str = Field(
        "", description="DynamoDB table of the duplicate gate's claims (store=dynamodb; empty: concurrent writes "
        "of one picture are not guarded, docs/api.md)."
    )  # fmt: skip

    @field_validator("allowed_hosts", "server_names", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(h.strip().lower().rstrip(".") for h in value.split(",") if h.strip())
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "dupcheck.sqlite3"

    @property
    def thumbnails_path(self) -> Path:
        return self.data_dir / "thumbnails.sqlite3"

    @property
    def products_path(self) -> Path:
        return self.data_dir / "products.sqlite3"

    @staticmethod
    def env_name(field: str) -> str:
        if field not in Settings.model_fields:
            raise KeyError(field)
        return ENV_PREFIX + field.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every `DUPCHECK_*` variable; unknown ones are an error, not silently ignored."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name not in cls.model_fields:
                raise SettingsError(unknown_setting(key))
            values[name] = raw
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise SettingsError(f"invalid settings: {problems}") from exc


def unknown_setting(key: str) -> str:
    """What to say of a `DUPCHECK_*` variable no setting has: the closest real name, if one is close."""
    # Compared without the prefix every name shares, which would make any two names look alike; a
    # name cut short (DUPCHECK_TABLE) is one of those it begins.
    given = key[len(ENV_PREFIX) :].lower()
    if given in RENAMED:
        return f"setting {key} was renamed {Settings.env_name(RENAMED[given])}: set that instead (same meaning)"
    close = [field for field in Settings.model_fields if field.startswith(given + "_")]
    close = close or difflib.get_close_matches(given, Settings.model_fields, n=1, cutoff=0.75)
    if len(close) > 1:
        return f"unknown setting {key}: did you mean one of {', '.join(map(Settings.env_name, close))}?"
    if close:
        return f"unknown setting {key}: did you mean {Settings.env_name(close[0])}?"
    return f"unknown setting {key}: the settings are listed in docs/configuration.md"
