"""The bodies of `/duplicates/scans`: a duplicate scan, its progress and what it found."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dupcheck.core.scans import ScanJob

PhaseName = Literal["read", "pair", "thumbnails", "verify", "report"]


class ScanResult(BaseModel):
    """What a finished scan found: the report `GET /duplicates` now answers, in counts."""

    records: int = Field(ge=0, description="Records read from the store.")
    compared: int = Field(ge=0, description="Records compared (the others are of another pipeline: see skipped).")
    groups: int = Field(ge=0, description="Groups of records holding the same picture.")
    duplicates: int = Field(ge=0, description="Records in a group but not the one to keep.")
    pairs: int = Field(ge=0, description="Pairs called duplicate inside the groups.")
    related: int = Field(ge=0, description="Duplicate pairs listed beside a group rather than in it.")
    elapsed_s: float = Field(
        ge=0, description="Seconds of the run that finished the scan (of a resumed scan, its last part)."
    )
    skipped: str | None = Field(description="Why some records were not compared and what to do; null when none.")


class ScanOut(BaseModel):
    """A duplicate scan and its progress."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    scan_id: str
    status: Literal["queued", "running", "done", "failed", "cancelled"] = Field(
        description="queued, running, done (the report is published), failed (error says why) or cancelled."
    )
    phase: PhaseName | None = Field(
        description="The step running: read (the store), pair (candidates), thumbnails, verify (each record with "
        "candidates judged as find_similar would), report; null before the first."
    )
    done: int = Field(ge=0, description="How far the phase is, of total.")
    total: int | None = Field(ge=0, description="What the phase goes through (records, hashes); null when unknown.")
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="Why the scan failed, or null.")
    result: ScanResult | None = Field(description="What the scan found, once done.")
    status_url: str
    report_url: str | None = Field(description="GET it for the groups, once done.")

    @classmethod
    def of(cls, job: ScanJob, base_url: str) -> ScanOut:
        done = job.status.value == "done"
        return cls(
            scan_id=job.scan_id, status=job.status.value, phase=job.phase, done=job.done, total=job.total,  # type: ignore[arg-type]
            created_at=job.created_at, updated_at=job.updated_at, started_at=job.started_at,
            finished_at=job.finished_at, error=job.error,
            result=ScanResult.model_validate(job.result) if job.result is not None else None,
            status_url=f"{base_url}/duplicates/scans/{job.scan_id}",
            report_url=f"{base_url}/duplicates" if done else None,
        )  # fmt: skip


class ScanPage(BaseModel):
    """The newest duplicate scans first."""

    scans: list[ScanOut]
