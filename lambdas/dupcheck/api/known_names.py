"""Names a request gives that its route does not take: a query parameter or a JSON body field
with a typo (`?topp=3`) or the wrong key (`?url=` for `image_url`) is a 400 `unknown_parameter`
naming it and the closest name the route takes, as Stripe answers, never ignored and never
reported as the right name missing.

`unknown_names` writes the sentence; the resolver (resolver.py) checks every contract route's
query with it before Powertools validates the rest, and `StrictBody` models check their fields
with it. The closest name is difflib's (`get_close_matches`), else a name that holds the one
given or is held by it (`url` in `image_url`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

UNKNOWN = "unknown_parameter"  # the error code, and the pydantic error type StrictBody raises
# A request of thousands of made-up names is answered with a sentence of a few: the first ones named,
# each cut to a readable length (no name the API takes is longer), the rest counted.
MAX_NAMED = 5
MAX_NAME_CHARS = 40


def closest(name: str, known: Collection[str]) -> str | None:
    """The known name `name` most likely misspells or shortens, or None."""
    folded = {k.lower(): k for k in known}
    given = name.lower()
    close = difflib.get_close_matches(given, list(folded), n=1, cutoff=0.6)
    if close:
        return folded[close[0]]
    holding = [k for k in folded if len(given) >= 2 and (given in k or k in given)]
    ratio = lambda k: difflib.SequenceMatcher(None, given, k).ratio()  # noqa: E731
    return folded[max(holding, key=ratio)] if holding else None


def unknown_names(
    given: Iterable[str], known: Collection[str], kind: str = "parameter", none: str = "this route takes no query "
    "parameters"
) -> str | None:  # fmt: skip
    """The sentence refusing what of `given` is not `known` ("unknown parameter 'topp'; did you
    mean 'top'?"), or None when every name is known. `kind`: "parameter" or "field"; `none`: what
    to say when nothing is known."""
    unknown = [name for name in dict.fromkeys(given) if name not in known]
    if not unknown:
        return None
    takes = f"known {kind}s: {', '.join(sorted(known))}" if known else none
    if len(unknown) == 1:
        near = closest(unknown[0][:MAX_NAME_CHARS], known)
        return f"unknown {kind} {_quoted(unknown[0])}; " + (f"did you mean '{near}'?" if near else takes)
    named = [_quoted(name) + (f" (did you mean '{near}'?)" if (near := closest(name[:MAX_NAME_CHARS], known)) else "")
             for name in unknown[:MAX_NAMED]]  # fmt: skip
    more = f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED else ""
    return f"unknown {kind}s {', '.join(named)}{more}; {takes}"


def _quoted(name: str) -> str:
    return f"'{name}'" if len(name) <= MAX_NAME_CHARS else f"'{name[:MAX_NAME_CHARS]}...'"


def refuse_unknown_fields(data: Any, known: Collection[str]) -> Any:
    """`data` itself when it is not an object or has only `known` keys; else the pydantic error
    that errors.py answers as `unknown_parameter`."""
    if isinstance(data, dict) and (message := unknown_names(data, known, "field", "this body has no fields")):
        raise PydanticCustomError(UNKNOWN, message)
    return data


class StrictBody(BaseModel):
    """A JSON body (or a part of one) that refuses a field it does not have, naming it and the
    closest field it has; the OpenAPI schema says so (`additionalProperties: false`). Its fields
    are validated strictly too (no "5" for a number): see strict.py for the messages."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        return refuse_unknown_fields(data, body_fields(cls))


def body_fields(*models: type[BaseModel]) -> set[str]:
    """The JSON names of the fields of `models`."""
    return {field.alias or name for model in models for name, field in model.model_fields.items()}
