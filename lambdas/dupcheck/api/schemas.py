"""The API's request and response bodies: pydantic models, the source of the OpenAPI schemas.

Routes return these; Powertools validates each response against its model and publishes the
model in the OpenAPI document, so the document cannot drift from what is sent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_serializer

from dupcheck.api.known_names import StrictBody
from dupcheck.api.strict import Omittable
from dupcheck.core.catalog.gate import Registration
from dupcheck.core.catalog.lookups import MAX_URL_LENGTH
from dupcheck.core.catalog.products import ProductResult
from dupcheck.core.choices import OneOf
from dupcheck.core.ids import ID_PATTERN, MAX_ID_LENGTH, id_problem
from dupcheck.core.matching.edits import Carries, kinds_carrying
from dupcheck.core.models import (
    IMPORT_POLICIES,
    ITEM_POLICIES,
    DecisionKind,
    Edited,
    FindResult,
    HashRecord,
    Marks,
    Mode,
    Verdict,
    policies_meaning,
)

VerdictName = Annotated[str, OneOf(Verdict)]
ModeName = Annotated[str, OneOf(Mode)]  # an import's: core/models.py Mode
DecisionName = Annotated[str, OneOf(DecisionKind)]
ItemPolicy = Annotated[str, OneOf(ITEM_POLICIES)]  # the values as core/models.py GATE_RULES writes them
ImportPolicy = Annotated[str, OneOf(IMPORT_POLICIES)]
MarksName = Annotated[str, OneOf(Marks)]  # core/models.py MARKS_RULES

# What the contract promises to accept as an image URL: http(s), a host of dot-separated labels
# (or an IP address), an optional port, then anything without whitespace or control characters.
# The fetcher accepts a little more (IPv6 literals, upper-case schemes); it refuses what points
# somewhere it must not go (403) whatever the pattern says.
# (Spelled without \s: JSON Schema's \s is ECMAScript's, which differs from Python's.)
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"  # 1-65535
_HOST = r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*"
IMAGE_URL_PATTERN = rf"^https?://{_HOST}(:{_PORT})?([/?#][^ \x00-\x1f\x7f-\x9f]*)?$"
_IMAGE_URL = re.compile(IMAGE_URL_PATTERN)
# base64 (RFC 4648), optionally as an image data URL. (The service also takes parameters in the
# data URL and whitespace in the base64; the contract promises the plain form.)
PHOTO_DATA_PATTERN = r"^(data:image/[a-z0-9.+-]+;base64,)?([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def check_image_url(url: str) -> str:
    """The contract's image URL (IMAGE_URL_PATTERN, matched whole), or a ValueError (400)."""
    if not _IMAGE_URL.fullmatch(url):
        raise ValueError("must be an http(s) URL with a host name, without spaces or control characters")
    return url


ImageUrl = Annotated[str, AfterValidator(check_image_url)]


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable: invalid_request, not_found, image_too_large, ...")
    message: str = Field(description="What went wrong, in a sentence a person can act on.")


class ErrorBody(BaseModel):
    """Every error, whatever its status."""

    error: ErrorDetail


class QueryInfo(BaseModel):
    image_url: str | None = Field(description="The image_url queried; null for an uploaded image.")
    hash: str = Field(description="The query image's hash, hex.")
    algorithm: str = Field(description="The hash pipeline (hash_algo) the query and the catalog share.")


Share = Annotated[float, Field(ge=0, le=1)]


class PlainEdit(BaseModel):
    """Mirrored, or converted to grayscale: nothing more to say."""

    edit: Annotated[str, OneOf(kinds_carrying(Carries.NOTHING))]


class RotatedEdit(BaseModel):
    edit: Annotated[str, OneOf(kinds_carrying(Carries.DEGREES))]
    degrees: float = Field(description="About how far the query is turned, counter-clockwise positive.")


class SidesEdit(BaseModel):
    """cropped: the share of the catalog picture cut off each side; padded, framed: the share of
    the query's width or height that is a border the catalog picture does not have."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    edit: Annotated[str, OneOf(kinds_carrying(Carries.SIDES))]
    left: Share
    right: Share
    top: Share
    bottom: Share


class ToneEdit(BaseModel):
    edit: Annotated[str, OneOf(kinds_carrying(Carries.CHANGE))]
    change: float = Field(description="The relative change: +0.2 is 20% brighter (more contrast, more saturated).")


class MarkBox(BaseModel):
    """A box on a picture, as shares of its width (left, right) and height (top, bottom) from its
    top left corner: multiply by the picture's size in pixels to draw it."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    left: Share
    top: Share
    right: Share
    bottom: Share


class OverlayEdit(BaseModel):
    """A mark on the picture: text or a badge added (overlay); under marks=product, another print
    (printed), or a mark the pictures cannot place on or off the product (marked); text that
    replaced text at the same place, another title in the same template (retitled)."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    edit: Annotated[str, OneOf(kinds_carrying(Carries.PLACE))]
    where: str = Field(description='Where it sits: "top left", "top", "centre", "bottom right", ...')
    share: Share = Field(description="The share of the picture it covers.")
    box: MarkBox | None = Field(
        None, description="Where the mark lies on the picture that holds it: the edited one (see `edited`)."
    )
    original_box: MarkBox | None = Field(
        None,
        description="Where the same region lies on the other picture, without the mark; null where it lies beyond "
        "that picture's edge (on a border the copy added).",
    )


class RecolouredEdit(BaseModel):
    """The product in another colour (a similar picture, not the same)."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    edit: Annotated[str, OneOf(kinds_carrying(Carries.SHARE))]
    share: Share = Field(
        description="The share of the product (the picture less a plain backdrop) whose colour differs."
    )


EditOut = Annotated[
    PlainEdit | RotatedEdit | SidesEdit | ToneEdit | OverlayEdit | RecolouredEdit, Field(discriminator="edit")
]


class MatchOut(BaseModel):
    entity_id: str
    sku: str
    image_url: str
    distance: int = Field(ge=0, description="Hamming distance of the hashes (bits of the closer half, of 64).")
    match_percent: float = Field(
        ge=0, le=100,
        description="How alike, banded by verdict: duplicate 90-100, similar 60-89.9, different 0-59.9; matches "
        "come in non-increasing order of it (docs/api.md).",
    )  # fmt: skip
    verdict: VerdictName = Field(description="duplicate, similar or different (docs/api.md).")
    edits: list[EditOut] | None = Field(
        description="What turns one picture into the other (see `edited`), as far as verification can tell ([] for "
        "the same picture with no visible edit); null when nothing was lined up (a different picture)."
    )
    edited: Annotated[str, OneOf(Edited)] | None = Field(
        None,
        description="Which picture `edits` turn the other into: `query` (the catalog holds the original) or "
        "`catalog` (the catalog holds the copy: a crop, a badged or padded picture of yours); null with `edits`.",
    )
    edit_summary: str | None = Field(
        description='The edits in one line ("cropped (12% off the left) and mirrored"); null when there is nothing '
        "to say."
    )
    reviewed: bool = Field(
        False,
        description="Asked with `entity_id`: the pair (entity_id, this match) was marked not duplicates "
        "(POST /duplicates/decisions); it does not make `is_duplicate` true.",
    )


class FindResponse(BaseModel):
    query: QueryInfo
    is_duplicate: bool = Field(description="True when any match is a duplicate not `reviewed`.")
    matches: list[MatchOut] = Field(description="Best first.")

    @classmethod
    def of(cls, result: FindResult) -> FindResponse:
        return cls.model_validate(result.to_dict())


class ItemOut(BaseModel):
    """A catalog record. `features` (the verification views) only with `?include=features`."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    entity_id: str
    sku: str
    image_url: str
    hash: str = Field(description="The image's hash, hex.")
    hash_algo: str = Field(description="The pipeline that computed it.")
    updated_at: str = Field(description="When it was last written, ISO 8601 UTC.")
    features: dict[str, str] | None = Field(None, description="Present only with ?include=features.")

    @classmethod
    def of(cls, record: HashRecord, *, with_features: bool = False) -> ItemOut:
        data = record.to_dict()
        if not with_features:
            data.pop("features")
        return cls.model_validate(data)

    @model_serializer(mode="wrap")
    def _without_absent_features(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("features") is None:
            data.pop("features", None)
        return data


class RegisteredOut(ItemOut):
    """The stored record, and what the duplicate gate found (docs/api.md, the gate)."""

    model_config = ConfigDict(json_schema_extra={"description": __doc__})

    on_duplicate: ItemPolicy = Field(description=f"The policy applied: {policies_meaning(ITEM_POLICIES)}.")
    checked: bool = Field(description="Whether the picture was checked (false with allow).")
    is_duplicate: bool = Field(description="True when the catalog already held a duplicate of it.")
    duplicates: list[MatchOut] = Field(
        description="The catalog's duplicates of the picture, best first (find_similar's matches), its own "
        "entity_id left out; [] when none or not checked."
    )

    @classmethod
    def of_registration(cls, registration: Registration) -> RegisteredOut:
        data = registration.record.to_dict()
        data.pop("features")
        data.update(on_duplicate=registration.on_duplicate.value, checked=registration.checked,
                    is_duplicate=bool(registration.duplicates),
                    duplicates=[m.to_dict() for m in registration.duplicates])  # fmt: skip
        return cls.model_validate(data)


class ItemPage(BaseModel):
    """A page of the catalog (without the verification views)."""

    items: list[ItemOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null after the last one. A search reads a bounded "
        "part of the catalog per request, so a page may hold fewer items than `limit` (even none) and still "
        "have a next one."
    )


# A page cursor: unpadded base64url (every string of this shape is a position in the catalog).
CURSOR_PATTERN = r"^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$"


def _absent(value: Any) -> bool:
    """A report field the file leaves out (or null) stays out of the response: no null is added."""
    return value is None


class DuplicatePair(BaseModel):
    """Two records of a group the service calls the same picture, and how alike they are."""

    model_config = ConfigDict(extra="allow")

    a: str = Field(
        description="The record listed first: the one kept, or of two others the one the pictures show to be the "
        "original (else the first in the group's order)."
    )
    b: str
    verdict: VerdictName
    match_percent: float = Field(ge=0, le=100, description="The closer of the two directions' judgements.")
    distance: int | None = Field(
        None, exclude_if=_absent, ge=0, description="Bits apart, as find_similar's `distance`."
    )
    edit: str | list[str] | None = Field(
        None,
        exclude_if=_absent,
        description="What turns `a` into `b`, in one line, as a match's `edit_summary` (\"mirrored and cropped "
        '(8% off the left)", "no visible edit"), as `b`\'s check against `a` names it; where only `a`\'s check '
        "called them the same, its edits read backwards (a crop as padding); null when they cannot be (grayscale, "
        "text or a badge).",
    )
    edits: list[EditOut] | None = Field(
        None, exclude_if=_absent, description="The same edits with their parameters, as a match's `edits`."
    )
    reviewed: bool | None = Field(
        None, exclude_if=_absent,
        description="The pair was marked not duplicates (POST /duplicates/decisions): shown, not a new duplicate.",
    )  # fmt: skip


class SettledOut(BaseModel):
    decision_id: str
    decision: DecisionName
    item: str = Field(description="The decision's item: the record kept, or the one it is not a duplicate of.")
    outcome: str = Field(description="removed; left in the catalog, resolved; or not a duplicate.")


class DuplicateGroup(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[str] = Field(
        description="The entity_ids of the group, the one to keep first (see keep_rule); each the same picture as "
        "the one kept (see group_rule)."
    )
    keep: str | None = Field(None, exclude_if=_absent, description="The entity_id to keep: the first of `items`.")
    keep_by: Literal["pictures", "registered", "id"] | None = Field(
        None, exclude_if=_absent,
        description="What chose the record to keep: `pictures` when they show every other record to be an edit (of "
        "it, or of another record of the group); else `registered` or `id` decided for one of them at least.",
    )  # fmt: skip
    keep_reason: str | None = Field(
        None, exclude_if=_absent,
        description="Why it is the one to keep, in words: \"the original: the others are edits of it (copy-1 "
        'cropped, bf-copy in grayscale)", "registered first: the pictures do not tell which is the original".',
    )  # fmt: skip
    pairs: list[DuplicatePair] = Field(description="Every pair of the group's records called the same picture.")
    related: list[DuplicatePair] | None = Field(
        None, exclude_if=_absent,
        description="Pairs of a record of the group (`a`) and one outside it (`b`) called the same picture, where "
        "`b` is not the same picture as the record kept: shown beside the group, not in it.",
    )  # fmt: skip
    settled: dict[str, SettledOut] | None = Field(
        None, exclude_if=_absent,
        description="The records of the group (other than the one kept) a decision settled, each with it.",
    )  # fmt: skip
    decisions: list[str] | None = Field(None, exclude_if=_absent, description="The decision_ids settling it.")
    open: bool | None = Field(
        None, exclude_if=_absent, description="Whether a record of the group is not settled yet: a new duplicate."
    )


class DuplicateReport(BaseModel):
    """The catalog-wide duplicate report (`python -m dupcheck duplicates`), as it was written."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"description": __doc__})

    pipeline: str = Field(description="The hash pipeline of the run.")
    records: int = Field(ge=0, description="Records read from the store.")
    compared: int | None = Field(
        None, exclude_if=_absent, ge=0, description="Records compared (the others are in `skipped`)."
    )
    radius: int | None = Field(None, exclude_if=_absent, ge=0, description="Candidates: pairs within this many bits.")
    far_radius: int | None = Field(
        None, exclude_if=_absent, ge=0,
        description="And each record's nearest candidate within this many bits, beyond `radius` (0: none).",
    )  # fmt: skip
    keep_rule: str | None = Field(
        None, exclude_if=_absent, description="Which record of a group is listed first: the one to keep."
    )
    group_rule: str | None = Field(None, exclude_if=_absent, description="Which records make a group.")
    skipped: dict[str, Any] | None = Field(
        None, exclude_if=_absent,
        description="Records not compared (another pipeline, unreadable views): how many, and what to do.",
    )  # fmt: skip
    generated_at: str | None = Field(None, exclude_if=_absent, description="When it was written (UTC, ISO 8601).")
    groups: list[DuplicateGroup]
    open_groups: int | None = Field(
        None, exclude_if=_absent, ge=0, description="Groups with a record no decision settled (see `open`)."
    )
    elapsed_s: float = Field(ge=0, description="How long the run took, in seconds.")


class Health(BaseModel):
    status: Literal["ok", "starting"] = Field(
        description="`starting` while the local server loads its index (find_similar answers 503 until then)."
    )
    algorithm: str = Field(description="The hash pipeline new records are hashed with.")
    records: int = Field(ge=0, description="Records in the store (DynamoDB: its count of a few hours ago).")
    indexed: int = Field(ge=0, description="Hashes in the search index.")
    index_ready: bool = Field(description="Whether the index holds every record: searches are complete.")


class NewItem(StrictBody):
    """A catalog image to register: downloaded from image_url and hashed by the service."""

    entity_id: str = Field(
        min_length=1, max_length=MAX_ID_LENGTH,
        description="The catalog's id. Letters and digits of any script, space and - . _ ~ ( ) ' ! * : @ , ; "
        "= + & $ < > [ ] { } | ^; not . or .. (docs/api.md, ids).",
        json_schema_extra={"pattern": ID_PATTERN, "not": {"enum": [".", ".."]}},
    )  # fmt: skip
    sku: str = Field("", max_length=256)
    image_url: ImageUrl = Field(
        min_length=1, max_length=MAX_URL_LENGTH, description="http(s) URL of the image.",
        json_schema_extra={"pattern": IMAGE_URL_PATTERN},
    )  # fmt: skip
    on_duplicate: Omittable[ItemPolicy] = Field(
        None, description="The duplicate gate, as the on_duplicate query parameter; this one wins when both are given."
    )

    @field_validator("entity_id")
    @classmethod
    def _addressable(cls, value: str) -> str:
        if problem := id_problem(value):
            raise ValueError(problem)
        return value


class PhotoUpload(StrictBody):
    """An image sent as JSON, as browser camera apps do."""

    photoData: str = Field(  # noqa: N815 - the field name clients already send
        min_length=1,
        description='A data URL ("data:image/jpeg;base64,...") or bare base64.',
        json_schema_extra={"pattern": PHOTO_DATA_PATTERN},
    )


class ProductQuery(BaseModel):
    image_url: str | None = Field(description="The image_url queried; null for an uploaded image.")
    model: str = Field(description="The product embedding's model: vectors of another model are never compared.")


class SimilarProductOut(BaseModel):
    entity_id: str
    sku: str
    image_url: str
    similarity: float = Field(
        ge=-1, le=1, description="How alike the two pictures look: the cosine similarity of their product "
        "embeddings, 1 for the same look. Not a verdict: the same product from another angle, the same style "
        "in another colour and a look-alike item all score high (docs/api.md, similar products).",
    )  # fmt: skip


class SimilarProductsResponse(BaseModel):
    query: ProductQuery
    products: list[SimilarProductOut] = Field(description="Most alike first.")

    @classmethod
    def of(cls, result: ProductResult) -> SimilarProductsResponse:
        return cls.model_validate(result.to_dict())
