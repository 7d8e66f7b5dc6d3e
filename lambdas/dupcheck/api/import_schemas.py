"""The bodies of the import routes (`/imports`) and of kept images (`/images`): pydantic models,
the source of their OpenAPI schemas (as schemas.py is for the others)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from dupcheck.api.known_names import StrictBody, body_fields, refuse_unknown_fields
from dupcheck.api.schemas import IMAGE_URL_PATTERN, ImageUrl, ImportPolicy, MarksName, MatchOut, ModeName
from dupcheck.api.strict import JsonTrue
from dupcheck.core.catalog.lookups import MAX_URL_LENGTH
from dupcheck.core.choices import OneOf
from dupcheck.core.ids import MAX_ID_LENGTH
from dupcheck.core.jobs.imports import MAX_ITEMS
from dupcheck.core.models import ImportJob, JobStatus, Outcome, RowResult, Source, UploadTarget

StatusName = Annotated[str, OneOf(JobStatus)]


class ImportItem(StrictBody):
    """One catalog row. Its checks are a catalog's: a row that cannot be imported (an id no URL
    can carry, an address that is not http(s)) becomes a failure of the job, with its reason."""

    entity_id: str = Field(description=f"1 to {MAX_ID_LENGTH} characters (docs/api.md, ids)")
    sku: str = Field("", max_length=256)
    image_url: str = Field(description=f"http(s), at most {MAX_URL_LENGTH} characters")


class CatalogUrlImport(BaseModel):
    """A catalog (CSV or JSON Lines, maybe gzipped) the service downloads through its safe fetcher."""

    model_config = ConfigDict(extra="forbid", strict=True)

    catalog_url: ImageUrl = Field(
        min_length=1, max_length=MAX_URL_LENGTH, description="http(s) URL of the catalog file.",
        json_schema_extra={"pattern": IMAGE_URL_PATTERN},
    )  # fmt: skip


class ItemsImport(BaseModel):
    """Rows sent in the request: 1 to 1,000 (a larger catalog is a file)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[ImportItem] = Field(min_length=1, max_length=MAX_ITEMS)


class UploadImport(BaseModel):
    """A catalog too large for a request: the answer says where to upload it (`upload`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    upload: JsonTrue


# A field none of the three has is refused as itself (each would refuse it differently).
_IMPORT_FIELDS = body_fields(CatalogUrlImport, ItemsImport, UploadImport)
ImportRequest = Annotated[
    CatalogUrlImport | ItemsImport | UploadImport, Field(union_mode="left_to_right"),
    BeforeValidator(lambda data: refuse_unknown_fields(data, _IMPORT_FIELDS)),
]  # fmt: skip
IMPORT_REQUEST = TypeAdapter(ImportRequest)


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` written in place: what a request body in the OpenAPI
    document needs (a `#/$defs/...` reference would point at the document's root)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


class UploadOut(BaseModel):
    """Where to send the catalog: PUT the file to `url` (this API: with the key), or POST a
    multipart form to `url` (S3) with every field of `fields` and then the file as `file`."""

    url: str
    method: Literal["PUT", "POST"]
    fields: dict[str, str] = Field(description="Form fields to send before the file (POST only).")
    expires_at: str = Field(description="The upload must start before this moment (ISO 8601 UTC).")
    max_bytes: int = Field(ge=1, description="The largest catalog the upload takes.")

    @classmethod
    def of(cls, target: UploadTarget) -> UploadOut:
        return cls(url=target.url, method=target.method, fields=dict(target.fields),  # type: ignore[arg-type]
                   expires_at=target.expires_at, max_bytes=target.max_bytes)  # fmt: skip


class ImportOut(BaseModel):
    """An import job and its progress."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    job_id: str
    status: StatusName = Field(description="awaiting_upload, queued, running, done, failed or cancelled.")
    source: Annotated[str, OneOf(Source)]
    catalog_url: str | None = Field(description="The catalog's address, for a catalog_url import.")
    rows: int | None = Field(ge=0, description="Rows in the catalog; null until it has been read.")
    done: int = Field(ge=0, description="Rows stored: downloaded and hashed, or a new SKU for the same picture.")
    skipped: int = Field(ge=0, description="Rows already stored unchanged: nothing downloaded.")
    failed: int = Field(ge=0, description="Rows not stored; GET failures_url says why.")
    replaced: int = Field(ge=0, description="Rows a later row of the same entity_id replaces (that one is "
                          "imported); GET failures_url lists them, code replaced.")  # fmt: skip
    after_cancel: int | None = Field(ge=0, description="Of done, the rows stored after the cancel was answered: "
                                     "they had been hashed before it (the local server; null on AWS).")  # fmt: skip
    duplicates: int = Field(
        ge=0, description="Rows found duplicates (of a catalog item, or of another row of the file), whatever "
        "their outcome; results_url?duplicates_only=true lists them.",
    )  # fmt: skip
    mode: ModeName = Field(description="import (rows are stored) or check (only checked).")
    on_duplicate: ImportPolicy = Field(description="The duplicate gate of the job's rows (docs/api.md, imports).")
    marks: MarksName = Field(description="What a mark on the product means for the job's rows (docs/api.md, marks).")
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    rows_per_s: float | None = Field(ge=0, description="Rows finished per second since the job started.")
    eta_s: float | None = Field(ge=0, description="Seconds left at that rate, while running.")
    error: str | None = Field(description="Why the job failed (the catalog could not be read), or null.")
    status_url: str
    failures_url: str
    results_url: str = Field(description="The checked rows: a check job's every row, an import's duplicates.")
    upload: UploadOut | None = Field(None, description="For upload: true, where to send the catalog.")

    @classmethod
    def of(cls, job: ImportJob, base_url: str, upload: UploadTarget | None = None) -> ImportOut:
        now = datetime.now(UTC)
        status_url = f"{base_url}/imports/{job.job_id}"
        return cls(
            job_id=job.job_id, status=job.status.value, source=job.source.value, catalog_url=job.catalog_url,
            rows=job.rows, done=job.done, skipped=job.skipped, failed=job.failed, replaced=job.replaced,
            after_cancel=job.after_cancel, duplicates=job.duplicates, mode=job.options.mode.value,
            on_duplicate=job.options.on_duplicate.value, marks=job.options.marks.value, created_at=job.created_at,
            results_url=f"{status_url}/results",
            updated_at=job.updated_at, started_at=job.started_at, finished_at=job.finished_at,
            rows_per_s=job.rows_per_s(now), eta_s=job.eta_s(now), error=job.error, status_url=status_url,
            failures_url=f"{status_url}/failures", upload=UploadOut.of(upload) if upload else None,
        )  # fmt: skip


class ImportPage(BaseModel):
    """Recent import jobs, newest first."""

    imports: list[ImportOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older jobs; null after the oldest.")


class FailureOut(BaseModel):
    row: int = Field(ge=1, description="The catalog's data row, from 1.")
    entity_id: str
    image_url: str
    code: str = Field(
        description="The backfill's failure codes (upstream_error, invalid_image, missing_image_url...), "
        "or replaced: a later row of the same entity_id is imported instead."
    )
    message: str

    @classmethod
    def of(cls, result: RowResult) -> FailureOut:
        return cls(row=result.row, entity_id=result.entity_id, image_url=result.image_url, code=result.code,
                   message=result.message)  # fmt: skip


class FailurePage(BaseModel):
    """The rows of an import that were not imported (failed or replaced), in catalog order."""

    failures: list[FailureOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null after the last.")


class ResultOut(BaseModel):
    """A checked row: its verdict, what it duplicates, its best catalog match (with its edits)."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    row: int = Field(ge=1, description="The catalog's data row, from 1.")
    entity_id: str
    image_url: str
    outcome: Annotated[str, OneOf(Outcome)] = Field(
        description="done (stored; in a check job: checked), skipped (on_duplicate=skip: left out), failed "
        "(code says why; duplicate_image: on_duplicate=reject)."
    )
    verdict: Literal["duplicate", "similar", "new"] | None = Field(
        description="duplicate (of duplicate_of), similar (the best match is alike, not the same picture), new; "
        "null for a row that could not be checked."
    )
    duplicate_of: str | None = Field(description="The catalog item's (or the earlier row's) entity_id.")
    duplicate_of_row: int | None = Field(description="When it duplicates an earlier row of the same file: its number.")
    match: MatchOut | None = Field(description="The best catalog match, as find_similar gives it.")
    code: str
    message: str

    @classmethod
    def of(cls, result: RowResult) -> ResultOut:
        return cls(row=result.row, entity_id=result.entity_id, image_url=result.image_url,
                   outcome=result.outcome.value, verdict=result.verdict or None,  # type: ignore[arg-type]
                   duplicate_of=result.duplicate_of or None, duplicate_of_row=result.duplicate_row or None,
                   match=MatchOut.model_validate(result.match) if result.match else None, code=result.code,
                   message=result.message)  # fmt: skip


class ResultPage(BaseModel):
    """Checked rows in catalog order: a check job's every row, an import's duplicates."""

    results: list[ResultOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null after the last.")


class KeptImageOut(BaseModel):
    """A picture the service keeps: `image_url` is where the API serves it (with the key)."""

    name: str = Field(description="<sha256>.<ext>: the picture's content names it.")
    image_url: str
