"""Value objects shared by every layer: hashes, stored records, index hits and results."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

# The most matches one query may ask for (the API's `top`, a product search's): a bound on a query's work.
MAX_TOP = 100


class OnDuplicate(StrEnum):
    """The duplicate gate's policy: what a write does with a picture the catalog already holds.
    Its values and what each does are written once, in GATE_RULES: the gate, the API's and the
    settings' types, the command line's choices and the docs read them there."""

    WARN = "warn"
    REJECT = "reject"
    ALLOW = "allow"
    SKIP = "skip"

    @property
    def rule(self) -> GateRule:
        return GATE_RULES[self]


@dataclass(frozen=True, slots=True)
class GateRule:
    """What one `on_duplicate` value does."""

    checks: bool  # the picture is checked against the catalog (and the writes in flight) first
    stores: bool  # a picture found a duplicate is stored all the same (its duplicates listed)
    fails: bool  # a duplicate left out is the write's failure (409, a failed row), not a row skipped
    per_item: bool  # offered for one item's write; otherwise only for a job's rows
    meaning: str  # in the API's and the command line's words


GATE_RULES = {
    OnDuplicate.WARN: GateRule(checks=True, stores=True, fails=False, per_item=True,
                               meaning="store it and list its duplicates"),
    OnDuplicate.REJECT: GateRule(checks=True, stores=False, fails=True, per_item=True,
                                 meaning="store nothing: duplicate_image, a 409 or a failed row"),
    OnDuplicate.ALLOW: GateRule(checks=False, stores=True, fails=False, per_item=True, meaning="store it unchecked"),
    OnDuplicate.SKIP: GateRule(checks=True, stores=False, fails=False, per_item=False,
                               meaning="leave the row out and report it; jobs only"),
}  # fmt: skip
ITEM_POLICIES = tuple(p for p in OnDuplicate if p.rule.per_item)
IMPORT_POLICIES = tuple(OnDuplicate)
# The policy where nothing names one: DUPCHECK_ON_DUPLICATE's default (core/settings.py), which every
# way in takes from the settings; the defaults of ImportOptions.on_duplicate (below) and of
# CatalogParts.on_duplicate (core/catalog/parts.py) are this one too.
DEFAULT_POLICY = OnDuplicate.WARN


class Marks(StrEnum):
    """What a mark that lies on the product itself means (a design on a shirt's chest, a logo on a
    mug): the shop says, for its catalog; MARKS_RULES says what each value does. A mark that does
    not lie on the product (across the backdrop, at the picture's edge) is an overlay either way."""

    PHOTO = "photo"
    PRODUCT = "product"

    @property
    def rule(self) -> MarksRule:
        return MARKS_RULES[self]

    @classmethod
    def named(cls, value: str | None) -> Marks | None:
        """A request's `marks` (validated by its type), None where it names none."""
        return cls(value) if value else None


@dataclass(frozen=True, slots=True)
class MarksRule:
    """What one `marks` value does."""

    mark_is_copy: bool  # a mark on the product is an edit of the photograph (duplicate), else another product
    meaning: str  # in the API's and the command line's words


MARKS_RULES = {
    Marks.PHOTO: MarksRule(mark_is_copy=True, meaning="a mark on the product is an edit of the photograph: duplicate"),
    Marks.PRODUCT: MarksRule(mark_is_copy=False,
                             meaning="a mark on the product makes another product: similar, another print"),
}  # fmt: skip
DEFAULT_MARKS = Marks.PHOTO  # DUPCHECK_MARKS's default: what every catalog did before the setting


def policies_meaning(policies: Iterable[OnDuplicate | Marks]) -> str:
    """The policies and what each does, in one line of help: "warn (store it ...), reject (...)"."""
    return ", ".join(f"{p.value} ({p.rule.meaning})" for p in policies)


class Verdict(StrEnum):
    DUPLICATE = "duplicate"
    SIMILAR = "similar"
    DIFFERENT = "different"


class Edited(StrEnum):
    """Which picture of a match is the edited one: its edits turn the other into it. A pair's
    verdict is the same whichever was asked about (core/matching/judge.py); the edits are read
    from the original to the copy."""

    QUERY = "query"  # the catalog picture edited into the query (the catalog holds the original)
    CATALOG = "catalog"  # the query edited into the catalog picture (the catalog holds the copy)


@dataclass(frozen=True, slots=True)
class HashValue:
    """A perceptual hash: packed bits, most significant bit first (imagehash's hex order).

    `a - b` is the Hamming distance, `str(h)` the hex form, as in imagehash.
    """

    data: bytes

    @classmethod
    def from_hex(cls, text: str) -> HashValue:
        try:
            return cls(bytes.fromhex(text))
        except ValueError as exc:
            raise ValueError(f"not a hex hash: {text!r}") from exc

    @property
    def bits(self) -> int:
        return len(self.data) * 8

    @property
    def hex(self) -> str:
        return self.data.hex()

    def __str__(self) -> str:
        return self.hex

    def __sub__(self, other: HashValue) -> int:
        """Hamming distance: the one popcount of scalar hashes (the local index has numpy's)."""
        if len(other.data) != len(self.data):
            raise ValueError(f"hash lengths differ: {self.bits} vs {other.bits} bits")
        return (int.from_bytes(self.data, "big") ^ int.from_bytes(other.data, "big")).bit_count()

    def parts(self, count: int) -> tuple[HashValue, ...]:
        """The hash cut into `count` equal parts (a dual hash's halves)."""
        size, rest = divmod(len(self.data), count)
        if rest:
            raise ValueError(f"a {self.bits}-bit hash does not split into {count} parts")
        return tuple(HashValue(self.data[i : i + size]) for i in range(0, len(self.data), size))


@dataclass(frozen=True, slots=True)
class HashPart:
    """A span of the indexed hash that the index also searches on its own (a pipeline's
    `index_parts`): a copy whose edit moved the rest of the hash keeps this span near.

    `name` says what the span hashes (the default pipeline's `whole` picture and `trimmed` one);
    an index names its own copy of the span after it (OpenSearch: a vector field a part)."""

    name: str
    start: int  # its first bit in the indexed hash, a multiple of 8
    bits: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.start % 8 or self.bits <= 0 or self.bits % 8:
            raise ValueError(f"part {self.name!r} must start and end on a byte: bits {self.start}-{self.end}")

    @property
    def end(self) -> int:
        return self.start + self.bits

    def of(self, value: HashValue) -> HashValue:
        """This span of an indexed hash."""
        if value.bits < self.end:
            raise ValueError(f"a {value.bits}-bit hash has no bits {self.start}-{self.end} ({self.name})")
        return HashValue(value.data[self.start // 8 : self.end // 8])


def check_parts(parts: Iterable[HashPart], bits: int) -> tuple[HashPart, ...]:
    """`parts` as a tuple, when they fit an indexed hash of `bits` and have one width (every part
    hash is searched against each) and distinct names; ValueError otherwise."""
    found = tuple(parts)
    if any(part.end > bits for part in found):
        raise ValueError(f"every part must lie within the hash's {bits} bits: {found}")
    if len({part.bits for part in found}) > 1 or len({part.name for part in found}) < len(found):
        raise ValueError(f"parts must have one width and distinct names: {found}")
    return found


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Everything one hash pipeline extracts from one image.

    `hash` is what the index stores and searches. `query_hashes` are extra hashes searched
    only at query time (for example a mirrored copy); `features` are compact extra signals
    stored with the record and used to verify candidates (bytes; base64 in JSON). `thumbnail`
    is a small picture kept beside the record, not in it (a ThumbnailStore), for the final check
    of the candidates a query would call duplicates; empty for a query or a pipeline without one.
    `probe` is query-side state the pipeline keeps for verification (never stored, not part of
    equality).
    """

    algo: str
    hash: HashValue
    query_hashes: tuple[HashValue, ...] = ()
    features: Mapping[str, bytes] = field(default_factory=dict)
    thumbnail: bytes = field(default=b"", repr=False)
    probe: Any = field(default=None, compare=False, repr=False)

    @property
    def search_hashes(self) -> tuple[HashValue, ...]:
        return (self.hash, *self.query_hashes)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def moment_of(iso: str) -> datetime:
    """A stamp of `utc_now` (or any ISO 8601 time; without a zone, UTC) as an aware datetime."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_hex_id(value: object) -> bool:
    """Whether `value` is an id this service makes for a job or a scan: 32 lower-case hex digits."""
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def version_of(updated_at: str) -> int | None:
    """`updated_at` (ISO 8601) -> epoch milliseconds: a record's version, which orders writes of
    one entity (OpenSearch's external versioning, the stream handler's deletes)."""
    try:
        moment = datetime.fromisoformat(updated_at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if moment.tzinfo is None:  # naive timestamps are written by dupcheck as UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def written_after(a: str, b: str) -> bool:
    """Whether a record stamped `a` was written after one stamped `b` (two `updated_at`s, by
    version_of; text order when either is unparseable): which of two versions of a record wins."""
    va, vb = version_of(a), version_of(b)
    return va > vb if va is not None and vb is not None else a > b


def features_to_text(features: Mapping[str, bytes]) -> dict[str, str]:
    """Features as JSON carries them (the API, export files, OpenSearch): base64 values."""
    return {name: base64.b64encode(value).decode("ascii") for name, value in features.items()}


def features_from_text(features: Mapping[str, Any]) -> dict[str, bytes]:
    """The inverse of features_to_text; raises ValueError on a value that is not base64."""
    decoded = {}
    for name, value in features.items():
        try:  # strict: any character outside the alphabet or bad padding is an error
            decoded[str(name)] = binascii.a2b_base64(str(value), strict_mode=True)
        except binascii.Error as exc:
            raise ValueError(f"feature {name!r} is not base64: {exc}") from exc
    return decoded


@dataclass(frozen=True, slots=True)
class HashRecord:
    """One catalog image: the row in SQLite, the item in DynamoDB, the document in OpenSearch.

    `features` are the pipeline's verification data as bytes (a few hundred: the compact views
    of core/stored/views_codec.py); stores keep them binary where they can, JSON as base64."""

    entity_id: str
    sku: str
    image_url: str
    hash: HashValue
    hash_algo: str
    updated_at: str = field(default_factory=utc_now)
    features: Mapping[str, bytes] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready fields (the hash as hex, features as base64): the API's,
        the export file's and OpenSearch's shape."""
        return {
            "entity_id": self.entity_id,
            "sku": self.sku,
            "image_url": self.image_url,
            "hash": self.hash.hex,
            "hash_algo": self.hash_algo,
            "updated_at": self.updated_at,
            "features": features_to_text(self.features),
        }

    def mentions(self, text: str) -> bool:
        """Whether `text` is in the entity_id or the SKU, ignoring case: what a catalog search
        matches, the same in every store."""
        folded = text.casefold()
        return folded in self.entity_id.casefold() or folded in self.sku.casefold()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HashRecord:
        return cls(
            entity_id=str(data["entity_id"]),
            sku=str(data.get("sku") or ""),
            image_url=str(data.get("image_url") or ""),
            hash=HashValue.from_hex(str(data["hash"])),
            hash_algo=str(data["hash_algo"]),
            updated_at=str(data.get("updated_at") or utc_now()),
            features=features_from_text(data.get("features") or {}),
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """What registering an image writes: its record (the store, then the index), its thumbnail
    (the ThumbnailStore; empty when the pipeline keeps none) and its product vector (the
    ProductIndex; None when similar products are off), both beside the record, not in it."""

    record: HashRecord
    thumbnail: bytes = field(default=b"", repr=False)
    product_vector: ProductVector | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PutCounts:
    """What a conditional write of records did, one count per record given: `written`, or left
    alone because the store holds the same record (`unchanged`) or a later one (`kept_newer`)."""

    written: int = 0
    unchanged: int = 0
    kept_newer: int = 0


@dataclass(frozen=True, slots=True)
class IndexHit:
    """A candidate from the index: which record, how far. The record itself is read from the
    store (indexes hold hashes, not the verification views)."""

    entity_id: str
    distance: int


Box = tuple[float, float, float, float]  # (left, top, right, bottom): shares of a picture's width and height
_BOX_SIDES = ("left", "top", "right", "bottom")


@dataclass(frozen=True, slots=True)
class Edit:
    """One edit that turns a catalog picture into the query (core/matching/edits.py names them): its
    name ("cropped", "rotated", ...) and parameters (per-side shares, degrees, a change, where).
    A mark added on top also says where it lies: `box` on the picture that holds it (the copy),
    `original_box` where that region lies on the other picture (None: beyond its edge)."""

    name: str
    params: Mapping[str, float | str] = field(default_factory=dict)
    box: Box | None = None
    original_box: Box | None = None

    def to_dict(self) -> dict[str, Any]:
        named = (("box", self.box), ("original_box", self.original_box))
        boxes = {key: dict(zip(_BOX_SIDES, box, strict=True)) for key, box in named if box is not None}
        return {"edit": self.name, **self.params, **boxes}

    @classmethod
    def of_dict(cls, data: Mapping[str, Any]) -> Edit:
        """The edit `to_dict` wrote."""
        params = {key: value for key, value in data.items() if key not in ("edit", "box", "original_box")}
        return cls(str(data["edit"]), params, _box_of(data.get("box")), _box_of(data.get("original_box")))


def _box_of(sides: Mapping[str, float] | None) -> Box | None:
    """A box `Edit.to_dict` wrote, back as a tuple."""
    if sides is None:
        return None
    left, top, right, bottom = (float(sides[side]) for side in _BOX_SIDES)
    return left, top, right, bottom


@dataclass(frozen=True, slots=True)
class Match:
    """One catalog picture in a result. `match_percent` is the verdict-banded score
    (core/matching/verdicts.py); `edits` what turns one picture into the other, where verification
    could tell (None where it could not: a different picture): the catalog picture into the query,
    or the query into the catalog picture where that is the copy (`edited`); `edit_summary` the
    same in one line."""

    entity_id: str
    sku: str
    image_url: str
    distance: int
    match_percent: float
    verdict: Verdict
    edits: tuple[Edit, ...] | None = None
    edit_summary: str | None = None
    reviewed: bool = False  # the pair was marked not duplicates (core/catalog/decisions.py): no new duplicate
    edited: Edited | None = None  # which picture `edits` turn the other into (None with `edits`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "sku": self.sku,
            "image_url": self.image_url,
            "distance": self.distance,
            "match_percent": self.match_percent,
            "verdict": self.verdict.value,
            "edits": None if self.edits is None else [edit.to_dict() for edit in self.edits],
            "edited": None if self.edited is None else self.edited.value,
            "edit_summary": self.edit_summary,
            "reviewed": self.reviewed,
        }


@dataclass(frozen=True, slots=True)
class FindResult:
    query_hash: HashValue
    algorithm: str
    matches: list[Match]
    image_url: str | None = None

    @property
    def is_duplicate(self) -> bool:
        """Whether a match is a duplicate not reviewed already (a pair marked not duplicates is not new)."""
        return any(m.verdict is Verdict.DUPLICATE and not m.reviewed for m in self.matches)

    def to_dict(self) -> dict[str, Any]:
        query = {"image_url": self.image_url, "hash": self.query_hash.hex, "algorithm": self.algorithm}
        return {
            "query": query,
            "is_duplicate": self.is_duplicate,
            "matches": [m.to_dict() for m in self.matches],
        }


# The vectors' name: model, projection and storage. A vector of another name is never compared
# with these (ProductIndex.search skips it; `reindex --products` makes new ones).
PRODUCT_MODEL = "effnetlite1-rp256-i8-v1"
DIMENSIONS = 256
# int8 storage of a unit vector: components * SCALE, rounded. 127 / SCALE = 0.5 lies above the
# largest component measured (docs/lab/similar-products.md), so it never clips, and rounding moves
# a cosine by < 0.001. Similarity is the int8 dot product / SCALE^2 everywhere (the
# local index and OpenSearch's inner product alike), so both deployments score the same.
SCALE = 254.0


@dataclass(frozen=True, slots=True)
class ProductVector:
    """A picture's product embedding: DIMENSIONS int8 values (`data`), named by `model`."""

    data: bytes
    model: str = PRODUCT_MODEL

    @classmethod
    def of_unit(cls, vector: np.ndarray, model: str = PRODUCT_MODEL) -> ProductVector:
        """A unit-length float vector, quantised (SCALE)."""
        values = np.clip(np.rint(np.asarray(vector, dtype=np.float32) * SCALE), -127, 127).astype(np.int8)
        if values.shape != (DIMENSIONS,):
            raise ValueError(f"a product vector has {DIMENSIONS} values, not {values.shape}")
        return cls(values.tobytes(), model)

    def values(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.int8)

    def similarity(self, other: ProductVector) -> float:
        """Cosine similarity as both indexes compute it: the int8 dot product / SCALE^2."""
        return similarity_of(int(self.values().astype(np.int32) @ other.values().astype(np.int32)))


def similarity_of(dot: float) -> float:
    """An int8 inner product as a cosine similarity in [-1, 1]."""
    return float(min(1.0, max(-1.0, dot / (SCALE * SCALE))))


@dataclass(frozen=True, slots=True)
class ProductHit:
    entity_id: str
    similarity: float


class DecisionKind(StrEnum):
    KEEP = "keep"
    NOT_DUPLICATE = "not_duplicate"


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision. `removed`: the others a keep decision removed (empty when they were left and
    marked resolved); `skus`: each named record's SKU when it was decided (for the export)."""

    decision_id: str
    kind: DecisionKind
    item: str
    others: tuple[str, ...]
    created_at: str
    removed: tuple[str, ...] = ()
    skus: Mapping[str, str] = field(default_factory=dict)
    undone_at: str | None = None  # undone decisions stay listed (and exported), settling nothing

    @property
    def active(self) -> bool:
        return self.undone_at is None

    @property
    def members(self) -> tuple[str, ...]:
        return (self.item, *self.others)

    def covers(self, a: str, b: str) -> bool:
        """Whether this decision settles the pair (a, b): a keep decision settles every pair of its
        records (whichever of them the report kept), a not_duplicate one each (item, other)."""
        if self.kind is DecisionKind.KEEP:
            return a != b and a in self.members and b in self.members
        return {a, b} in ({self.item, other} for other in self.others)

    def outcome(self, other: str) -> str:
        """What the decision did to `other`, in the export's words."""
        if self.kind is DecisionKind.NOT_DUPLICATE:
            return "not a duplicate"
        return "removed" if other in self.removed else "left in the catalog, resolved"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id, "decision": self.kind.value, "item": self.item,
            "others": list(self.others), "removed": list(self.removed), "skus": dict(self.skus),
            "created_at": self.created_at, "undone_at": self.undone_at,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            decision_id=str(data["decision_id"]), kind=DecisionKind(data["decision"]), item=str(data["item"]),
            others=tuple(data["others"]), created_at=str(data["created_at"]), removed=tuple(data.get("removed") or ()),
            skus=dict(data.get("skus") or {}), undone_at=data.get("undone_at"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RemovedCopy:
    """A record a keep decision removed, as it was: what undoing the decision puts back."""

    record: HashRecord
    thumbnail: bytes = field(default=b"", repr=False)


def reviewed_among(decisions: Iterable[Decision], entity_id: str, others: Iterable[str]) -> set[str]:
    """Those of `others` whose pair with `entity_id` was marked not duplicate."""
    mine = [d for d in decisions if d.kind is DecisionKind.NOT_DUPLICATE]
    return {other for other in others if any(d.covers(entity_id, other) for d in mine)}


# -- catalog rows and import jobs (their use cases: core/jobs/imports.py) ----------------------

IMPORT_RETENTION_DAYS = 30  # jobs, their row outcomes and their catalogs are kept this long


@dataclass(frozen=True)
class Columns:
    entity_id: str = "entity_id"
    sku: str = "sku"
    image_url: str | None = None  # None: the first of URL_COLUMN_CANDIDATES present


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One catalog line. `row` counts data rows from 1; `error` is (code, message) when the
    row cannot be processed."""

    row: int
    entity_id: str
    sku: str
    image_url: str
    error: tuple[str, str] | None = None
    # The prototype's 64-bit pHash (a `phash` column of its hash_store exports). It cannot be
    # upgraded to the current pipeline: `migrate` compares it to report which pictures changed.
    phash: str = ""


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"  # `{"upload": true}`: the catalog has not arrived yet
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the catalog itself could not be read (the reason is in `error`)
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    DONE = "done"  # downloaded, hashed and stored; or the same picture with a new SKU, rewritten
    SKIPPED = "skipped"  # already stored with this image_url and pipeline: nothing to do
    FAILED = "failed"
    REPLACED = "replaced"  # a later row of the catalog has the same entity_id: it is imported instead


DETAILED = frozenset({Outcome.FAILED, Outcome.REPLACED})  # outcomes kept with their details (listed)


REPLACED_CODE = "replaced"


class Mode(StrEnum):
    IMPORT = "import"  # rows are stored (through the duplicate gate)
    CHECK = "check"  # rows are only checked against the catalog: nothing is stored


class Source(StrEnum):
    UPLOAD = "upload"  # a CSV or JSON Lines file: the request's body, or uploaded later
    CATALOG_URL = "catalog_url"  # fetched by the service through the safe fetcher
    ITEMS = "items"  # rows sent as JSON


@dataclass(frozen=True)
class ImportOptions:
    """How a catalog's rows are read (its column names, the base of relative image paths), what is
    done with them (`mode`: imported, or only checked) and the duplicate gate's policy for them
    (`on_duplicate`, core/catalog/gate.py) and what a mark on the product means (`marks`): both
    resolved when the job is made, so a job keeps the ones it began with."""

    columns: Columns = field(default_factory=Columns)
    image_base_url: str | None = None
    mode: Mode = Mode.IMPORT
    on_duplicate: OnDuplicate = DEFAULT_POLICY
    marks: Marks = DEFAULT_MARKS

    def to_dict(self) -> dict[str, Any]:
        return {"columns": asdict(self.columns), "image_base_url": self.image_base_url, "mode": self.mode.value,
                "on_duplicate": self.on_duplicate.value, "marks": self.marks.value}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ImportOptions:
        data = data or {}
        # A job recorded before the gate was imported as `allow` would: unchecked.
        policy = OnDuplicate(data.get("on_duplicate") or OnDuplicate.ALLOW)
        # A job recorded before the setting read marks as every catalog did then: `photo`.
        return cls(Columns(**(data.get("columns") or {})), data.get("image_base_url"),
                   Mode(data.get("mode") or Mode.IMPORT), policy, Marks(data.get("marks") or Marks.PHOTO))  # fmt: skip


@dataclass(frozen=True)
class ImportJob:
    job_id: str
    status: JobStatus
    source: Source
    created_at: str
    updated_at: str
    options: ImportOptions = field(default_factory=ImportOptions)
    catalog_url: str | None = None
    rows: int | None = None  # known once the catalog has been read through
    done: int = 0
    skipped: int = 0
    failed: int = 0
    replaced: int = 0
    # Of `done`, the rows stored after a cancel was answered (hashed before it); None where the
    # store does not count them (DynamoDB: on AWS a worker's batch already begun finishes).
    after_cancel: int | None = None
    duplicates: int = 0  # rows found duplicates (of the catalog, or of another row), whatever their outcome
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed + self.replaced

    @property
    def complete(self) -> bool:
        """Every row of the catalog has its outcome."""
        return self.rows is not None and self.processed >= self.rows

    def rows_per_s(self, now: datetime | None = None) -> float | None:
        """Rows finished per second since the job started (until it finished)."""
        if not self.started_at or not self.processed:
            return None
        end = moment_of(self.finished_at) if self.finished_at else (now or datetime.now(UTC))
        seconds = (end - moment_of(self.started_at)).total_seconds()
        return round(self.processed / seconds, 2) if seconds > 0 else None

    def eta_s(self, now: datetime | None = None) -> float | None:
        """Seconds left at the current rate, while running with a known row count."""
        rate = self.rows_per_s(now)
        if self.status is not JobStatus.RUNNING or self.rows is None or not rate:
            return None
        return round(max(0, self.rows - self.processed) / rate, 1)

    def expires(self) -> datetime:
        return moment_of(self.created_at) + timedelta(days=IMPORT_RETENTION_DAYS)


@dataclass(frozen=True, slots=True)
class RowResult:
    """A row's outcome; a failure also says which row, why (`code`, `message`) and what it held.
    A checked row (a check job's, an import's duplicate) also says its `verdict`, `duplicate_of`
    (the catalog item, or the earlier row's entity_id, whose number is `duplicate_row`) and its
    best `match` (find_similar's match object)."""

    row: int
    outcome: Outcome
    entity_id: str = ""
    image_url: str = ""
    code: str = ""
    message: str = ""
    verdict: str = ""
    duplicate_of: str = ""
    duplicate_row: int = 0
    match: Mapping[str, Any] | None = None

    @property
    def detailed(self) -> bool:
        """Kept with its details (listed): a failure, a replaced row, a checked one."""
        return self.outcome in DETAILED or bool(self.verdict)

    def detail(self) -> dict[str, Any]:
        """The checked row's fields, as stored beside its outcome."""
        return {"verdict": self.verdict, "duplicate_of": self.duplicate_of, "duplicate_row": self.duplicate_row,
                "match": self.match}  # fmt: skip

    def with_detail(self, detail: Mapping[str, Any] | None) -> RowResult:
        if not detail:
            return self
        return replace(self, verdict=detail.get("verdict") or "", duplicate_of=detail.get("duplicate_of") or "",
                       duplicate_row=int(detail.get("duplicate_row") or 0), match=detail.get("match"))  # fmt: skip

    @classmethod
    def failure(cls, row: CatalogRow, code: str, message: str) -> RowResult:
        return cls(row.row, Outcome.FAILED, row.entity_id, row.image_url, code, message)

    @classmethod
    def replaced_by(cls, row: CatalogRow, later: int) -> RowResult:
        return cls(row.row, Outcome.REPLACED, row.entity_id, row.image_url, REPLACED_CODE,
                   f"row {row.row}: row {later} has the same entity_id and is imported instead")  # fmt: skip


@dataclass(frozen=True)
class UploadTarget:
    """Where the catalog of an `{"upload": true}` job goes: `method` (PUT: the body is the file;
    POST: a form of `fields`, then the file as `file`) to `url`, before `expires_at`."""

    url: str
    method: str
    fields: Mapping[str, str]
    expires_at: str
    max_bytes: int


Position = tuple[str, str]  # (created_at, job_id): where a list of recent jobs goes on from


# -- duplicate scans (core/jobs/scans.py) -------------------------------------------------------

SCAN_RETENTION_DAYS = 30  # scans (their progress and counts) are listed this long


class ScanStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # the report is published
    FAILED = "failed"  # `error` says why; the report published before stays
    CANCELLED = "cancelled"  # DELETE /duplicates/scans/{id}: stopped at its next step, its work dropped


@dataclass(frozen=True)
class ScanJob:
    scan_id: str
    status: ScanStatus
    created_at: str
    updated_at: str
    phase: str | None = None  # the engine's step: read, pair, thumbnails, verify, report
    done: int = 0  # of the phase's `total`
    total: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    # Once done: records, compared, groups, duplicates, pairs, related, elapsed_s, skipped.
    result: Mapping[str, Any] | None = field(default=None)
    marks: Marks = DEFAULT_MARKS  # what a mark on the product means for the scan (its report's groups)

    def expires(self) -> datetime:
        return moment_of(self.created_at) + timedelta(days=SCAN_RETENTION_DAYS)


# -- the duplicate gate's claims (core/catalog/gate.py) -----------------------------------------


class ClaimState(StrEnum):
    PENDING = "pending"  # claimed, not yet decided
    COMMITTED = "committed"  # its record was written with it
    WITHDRAWN = "withdrawn"  # its writer lost (or failed) and stored nothing
    BEATEN = "beaten"  # fenced by another write (or for its lease): its commit fails


@dataclass(frozen=True, slots=True)
class Claim:
    """One write's claim: which record, the hash the index would hold for it, whether it gives way
    to a duplicate, until when its writer may commit, and where it stands."""

    claim_id: str  # time-ordered: of two claims, the smaller came first
    entity_id: str
    hash: HashValue
    yields: bool
    lease_until: float  # epoch seconds
    state: ClaimState = ClaimState.PENDING
    beaten_by: str = ""  # the entity_id of the write that fenced it, or EXPIRED


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim's picture as `WriteClaims.entries` reads it: `committed` when it is the stored
    record (no thumbnail: the thumbnail store has it), else the picture its writer claimed with."""

    entry: Entry
    committed: bool
