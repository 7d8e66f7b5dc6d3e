"""The types that hold a request's fields to what they say they are, written once for every route.

pydantic validates in lax mode (Powertools validates a JSON body as Python values): a `bool`
takes "yes", "on", "1", 1 and 1.0 as true, and `Literal[True]` takes 1. A careless client's
`"remove_others": "yes"` removed records. A field of these types takes its own JSON type and
nothing else; anything else is refused naming what was sent, and errors.py answers it as
400 `invalid_request` with the field's name first, before anything changes.

* `JsonBool`: `true` or `false`, a JSON boolean; `JsonTrue` the one value `true`.
* `Omittable[T]`: a field that may be left out (its default) but, when sent, is a `T`: never
  `null` (an explicit null would otherwise read as "the default" for a field that changes data).
* `QueryFlag`: a query string's boolean: exactly `true` or `false`, never `1`, `yes` or `on`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

T = TypeVar("T")


def json_kind(value: Any) -> str:
    """What a JSON value is, as a sentence names it ("the string 'yes'", "a number", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"the number {value!r}" if abs(value) < 1e15 else "a number"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise PydanticCustomError("bool_type", "must be true or false (a JSON boolean), not {given}",
                              {"given": json_kind(value)})  # fmt: skip


def _given(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("none_given", "must not be null: leave the field out for its default")
    return value


QUERY_FLAGS = {"true": True, "false": False}


def _query_flag(value: Any) -> Any:
    if isinstance(value, bool):  # a default, or a caller in Python
        return value
    if isinstance(value, str) and value in QUERY_FLAGS:
        return QUERY_FLAGS[value]
    given = f"{value[:40]!r}" if isinstance(value, str) else "a repeated parameter"
    raise PydanticCustomError("bool_parsing", "must be true or false, not {given}", {"given": given})


JsonBool = Annotated[bool, BeforeValidator(_boolean)]
JsonTrue = Annotated[Literal[True], BeforeValidator(_boolean)]
# The schema says what may be sent (a T, or nothing); None is only the default of a field left out.
Omittable = Annotated[T | SkipJsonSchema[None], BeforeValidator(_given)]
QueryFlag = Annotated[bool, BeforeValidator(_query_flag)]
