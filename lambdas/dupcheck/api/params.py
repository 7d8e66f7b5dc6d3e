"""The routes' query and path parameters: type, bounds and description, declared once (Powertools
validates them and writes them into the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from dupcheck.api.schemas import (
    CURSOR_PATTERN,
    IMAGE_URL_PATTERN,
    ImageUrl,
    ImportPolicy,
    ItemPolicy,
    MarksName,
    ModeName,
)
from dupcheck.api.strict import QueryFlag
from dupcheck.core.catalog.decisions import MAX_PAGE as MAX_DECISIONS
from dupcheck.core.catalog.kept_images import IMAGE_NAME_PATTERN
from dupcheck.core.catalog.lookups import MAX_URL_LENGTH
from dupcheck.core.catalog.records import MAX_PAGE
from dupcheck.core.ids import ID_PATTERN, MAX_ID_LENGTH
from dupcheck.core.jobs.scans import MAX_PAGE as MAX_SCANS
from dupcheck.core.models import (
    DEFAULT_MARKS,
    DEFAULT_POLICY,
    IMPORT_POLICIES,
    ITEM_POLICIES,
    MAX_TOP,
    Marks,
    policies_meaning,
)

TopParam = Annotated[int | None, Query(ge=1, le=MAX_TOP, description="How many matches (1-100, default 5).")]
MaxDistanceParam = Annotated[
    int | None, Query(ge=0, le=64, description="Drop matches whose hash distance (of 64 bits) is larger.")
]
# An id a URL path can hold (docs/api.md, ids): the router matches no other (400 names the character).
EntityIdParam = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="The item's entity_id.")
]
NewEntityIdParam = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="The entity_id to store "
              "it under (docs/api.md, ids).", json_schema_extra={"not": {"enum": [".", ".."]}})
]  # fmt: skip
ImageUrlParam = Annotated[
    ImageUrl, Query(min_length=1, max_length=MAX_URL_LENGTH, description="http(s) URL of the image.",
                    json_schema_extra={"pattern": IMAGE_URL_PATTERN})
]  # fmt: skip
PublishedUrlParam = Annotated[
    ImageUrl | None, Query(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": IMAGE_URL_PATTERN},
                           description="Where the catalog publishes the picture (kept, never fetched).")
]  # fmt: skip
OnDuplicateParam = Annotated[
    ItemPolicy | None,
    Query(description=f"The duplicate gate: {policies_meaning(ITEM_POLICIES)}; default DUPCHECK_ON_DUPLICATE, "
          f"{DEFAULT_POLICY.value} (docs/api.md, the gate)."),
]  # fmt: skip
ImportPolicyParam = Annotated[
    ImportPolicy | None,
    Query(description=f"The duplicate gate of every row: {policies_meaning(IMPORT_POLICIES)}; default "
          f"DUPCHECK_ON_DUPLICATE, {DEFAULT_POLICY.value} (docs/api.md, imports)."),
]  # fmt: skip
MarksParam = Annotated[
    MarksName | None,
    Query(description=f"What a mark that lies on the product itself means: {policies_meaning(Marks)}; default "
          f"DUPCHECK_MARKS, {DEFAULT_MARKS.value} (docs/api.md, marks). A mark across the backdrop or at the "
          "picture's edge is an overlay, a duplicate, either way."),
]  # fmt: skip
ModeParam = Annotated[
    ModeName | None,
    Query(description="import (default): store the rows; check: only check each row against the catalog "
          "(its verdict and best match, GET results_url), store nothing."),
]  # fmt: skip
DuplicatesOnlyParam = Annotated[
    QueryFlag | None, Query(description="true: only the rows found duplicates; false (the default): every checked "
                            "row. Exactly true or false.")
]  # fmt: skip
FormatParam = Annotated[
    Literal["json", "csv"] | None, Query(description="json (a page, default) or csv (every row, a file to download).")
]
SkuParam = Annotated[str | None, Query(max_length=256, description="The item's SKU.")]
LimitParam = Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Records per page (1-100, default 20).")]
CursorParam = Annotated[
    str | None, Query(min_length=2, max_length=4096, pattern=CURSOR_PATTERN,
                      description="next_cursor of the previous page; absent for the first.")
]  # fmt: skip
SearchParam = Annotated[
    str | None, Query(max_length=200, description="Keep records whose entity_id or SKU contains this, ignoring case.")
]
IncludeParam = Annotated[str | None, Query(pattern="^features$", description="`features`: add the stored views.")]
JobIdParam = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The import's job_id.")]
ImageBaseUrlParam = Annotated[
    ImageUrl | None, Query(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": IMAGE_URL_PATTERN},
                           description="The shop's media base URL: relative image paths (small_image) are "
                           "appended to it.")
]  # fmt: skip
IdColumnParam = Annotated[str | None, Query(min_length=1, max_length=100, description="The id column (entity_id).")]
SkuColumnParam = Annotated[str | None, Query(min_length=1, max_length=100, description="The SKU column (sku).")]
UrlColumnParam = Annotated[
    str | None, Query(min_length=1, max_length=100, description="The image URL column (image_url, else small_image).")
]
FailuresLimitParam = Annotated[int | None, Query(ge=1, le=1000, description="Failures per page (1-1000, default 100).")]
# Where a page of jobs or of failures goes on from: a job's created_at and id; a row number.
JobsCursorParam = Annotated[
    str | None, Query(pattern=r"^[0-9A-Za-z:.+-]{1,40}~[0-9a-f]{32}$",
                      description="next_cursor of the previous page; absent for the newest jobs.")
]  # fmt: skip
RowCursorParam = Annotated[
    str | None, Query(pattern=r"^[0-9]{1,10}$", description="next_cursor of the previous page; absent for the first.")
]
ImageNameParam = Annotated[str, Path(pattern=IMAGE_NAME_PATTERN, description="<sha256>.<ext> of the picture.")]
ScanIdParam = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The scan's scan_id.")]
ScansLimitParam = Annotated[int | None, Query(ge=1, le=MAX_SCANS, description="Scans (1-100, default 5).")]
DecisionIdParam = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The decision's decision_id.")]
DecisionsLimitParam = Annotated[
    int | None, Query(ge=1, le=MAX_DECISIONS, description=f"Decisions per page (1-{MAX_DECISIONS}, default 50).")
]
DecisionsCursorParam = Annotated[
    str | None, Query(pattern="^[0-9a-f]{32}$", description="`next_cursor` of the previous page.")
]
AskedForParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="The catalog item the picture is for: a match it "
        "was marked not a duplicate of (POST /duplicates/decisions) comes back `reviewed`.",
    ),
]
