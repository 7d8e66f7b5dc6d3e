"""The duplicate gate: every way into the catalog checks a new picture against it first.

`POST /items`, `PUT /items/{id}`, import jobs and the web app's Add register through
`DupcheckService.register_checked`, which hashes the picture once, looks for its duplicates on
the same path as `find_similar` (the record's own entity_id left out: re-registering a picture
is not a duplicate of itself) and then, by the call's policy:

* `warn` (the default, DUPCHECK_ON_DUPLICATE): store it and say which duplicates it has;
* `reject`: store nothing and refuse with 409 `duplicate_image` and the matches;
* `allow`: no check (a bulk load that knows what it does), and the answer says so;
* `skip` (imports only): leave a duplicate row out of the catalog, as its outcome, not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dupcheck.core.errors import InvalidRequest
from dupcheck.core.models import HashRecord, Match


class OnDuplicate(StrEnum):
    WARN = "warn"
    REJECT = "reject"
    ALLOW = "allow"
    SKIP = "skip"


ITEM_POLICIES = (OnDuplicate.WARN, OnDuplicate.REJECT, OnDuplicate.ALLOW)  # a single item cannot be "skipped"
IMPORT_POLICIES = tuple(OnDuplicate)


def policy_of(value: str | None, default: OnDuplicate, allowed: tuple[OnDuplicate, ...] = ITEM_POLICIES) -> OnDuplicate:
    """A request's `on_duplicate`, or the default; an unknown one is a 400 that lists the known."""
    if value is None or value == "":
        return default
    if value not in {p.value for p in allowed}:
        raise InvalidRequest(f"on_duplicate must be one of {', '.join(p.value for p in allowed)}, not {value!r}")
    return OnDuplicate(value)


@dataclass(frozen=True)
class Registration:
    """What a checked registration did: the record stored, the policy applied, whether the
    picture was checked (not with `allow`), and the duplicates found (best first)."""

    record: HashRecord
    on_duplicate: OnDuplicate
    checked: bool
    duplicates: list[Match] = field(default_factory=list)
