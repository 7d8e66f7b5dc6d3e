"""The bodies of `/duplicates/scans` (a duplicate scan, its progress and what it found) and of
`/duplicates/decisions` (what a person decided about the report's groups)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dupcheck.api.known_names import StrictBody
from dupcheck.api.schemas import DecisionName, MarksName
from dupcheck.api.strict import JsonBool
from dupcheck.core.catalog.decisions import MAX_OTHERS
from dupcheck.core.choices import OneOf
from dupcheck.core.ids import ID_PATTERN, MAX_ID_LENGTH, id_problem
from dupcheck.core.models import Decision, ScanJob, ScanStatus

PHASE_NAMES = ("read", "pair", "thumbnails", "verify", "report")  # the engine's steps, in order
PhaseName = Annotated[str, OneOf(PHASE_NAMES)]


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
    status: Annotated[str, OneOf(ScanStatus)] = Field(
        description="queued, running, done (the report is published), failed (error says why) or cancelled."
    )
    phase: PhaseName | None = Field(
        description="The step running: read (the store), pair (candidates), thumbnails, verify (each record with "
        "candidates judged as find_similar would), report; null before the first."
    )
    step: int | None = Field(ge=1, description="The phase's number, of `steps`; null before the first.")
    steps: int = Field(ge=1, description="How many phases a scan goes through.")
    done: int = Field(ge=0, description="Records the phase is through, of total (every phase counts records).")
    total: int | None = Field(
        ge=0, description="Records the phase goes through: those read (an estimate while reading), then those "
        "compared; null when unknown. A done scan: its last phase, done = total.",
    )  # fmt: skip
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="Why the scan failed, or null.")
    marks: MarksName = Field(description="What a mark on the product means for the scan (docs/api.md, marks).")
    result: ScanResult | None = Field(description="What the scan found, once done.")
    status_url: str
    report_url: str | None = Field(description="GET it for the groups, once done.")

    @classmethod
    def of(cls, job: ScanJob, base_url: str) -> ScanOut:
        done = job.status.value == "done"
        return cls(
            scan_id=job.scan_id, status=job.status.value, phase=job.phase, done=job.done, total=job.total,  # type: ignore[arg-type]
            step=PHASE_NAMES.index(job.phase) + 1 if job.phase in PHASE_NAMES else None, steps=len(PHASE_NAMES),
            created_at=job.created_at, updated_at=job.updated_at, started_at=job.started_at,
            finished_at=job.finished_at, error=job.error, marks=job.marks.value,
            result=ScanResult.model_validate(job.result) if job.result is not None else None,
            status_url=f"{base_url}/duplicates/scans/{job.scan_id}",
            report_url=f"{base_url}/duplicates" if done else None,
        )  # fmt: skip


class ScanPage(BaseModel):
    """The newest duplicate scans first."""

    scans: list[ScanOut]


# -- decisions on the report's groups (core/catalog/decisions.py) --------------------------------------


def _addressable(value: str) -> str:
    if problem := id_problem(value):
        raise ValueError(problem)
    return value


# An entity_id, as POST /items takes it (the same pattern in the schema, the same check).
EntityId = Annotated[
    str,
    Field(
        min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra={"pattern": ID_PATTERN, "not": {"enum": [".", ".."]}}
    ),
    AfterValidator(_addressable),
]
Others = Annotated[
    list[EntityId],
    Field(min_length=1, max_length=MAX_OTHERS, json_schema_extra={"uniqueItems": True},
          description=f"The other records of the group the decision is about (1-{MAX_OTHERS}, each once, not item)."),
]  # fmt: skip


class KeepDecisionIn(StrictBody):
    """Keep `item`: the others are removed (`remove_others`: undo puts them back) or left, marked resolved."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": __doc__})

    decision: Literal["keep"]
    item: EntityId = Field(description="The record kept.")
    others: Others
    remove_others: JsonBool = Field(False, description="Remove the others from the catalog (undo puts them back).")


class NotDuplicateDecisionIn(StrictBody):
    """`item` and each of `others` are different pictures: the pairs are remembered as reviewed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": __doc__})

    decision: Literal["not_duplicate"]
    item: EntityId = Field(description="The record the others are not duplicates of.")
    others: Others


DecisionIn = KeepDecisionIn | NotDuplicateDecisionIn  # told apart by `decision` (the route's Body)


class DecisionOut(BaseModel):
    """A decision on a group of the duplicate report."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    decision_id: str
    decision: DecisionName
    item: str
    others: list[str]
    removed: list[str] = Field(description="The others a keep decision removed from the catalog ([] when left).")
    skus: dict[str, str] = Field(description="Each named record's SKU when decided (records gone then: absent).")
    created_at: str
    undone_at: str | None = Field(description="When it was undone (it then settles nothing), or null.")
    decision_url: str = Field(description="GET it for the decision as it is now.")
    undo_url: str = Field(description="POST to it to undo the decision.")

    @classmethod
    def of(cls, decision: Decision, base_url: str) -> DecisionOut:
        url = f"{base_url}/duplicates/decisions/{decision.decision_id}"
        return cls(**decision.to_dict(), decision_url=url, undo_url=f"{url}/undo")


class DecisionPage(BaseModel):
    """The newest decisions first."""

    decisions: list[DecisionOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null after the last.")


class UndoneOut(BaseModel):
    """An undone decision and what came back."""

    decision: DecisionOut
    restored: list[str] = Field(description="Records the decision removed, back in the catalog.")
    left_out: list[str] = Field(
        description="Records the decision removed whose id was registered again since: the newer record stays."
    )
