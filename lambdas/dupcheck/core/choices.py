"""`OneOf`: a string field that takes one value of a vocabulary written elsewhere (core/models.py's
GATE_RULES, core/matching/edits.py's KINDS), validated and described exactly as a `Literal` of
those values would be: the same `literal_error` ("Input should be 'warn', 'reject' or 'allow'")
and the same inline `enum` in the JSON schema, with no second copy of the values to keep in step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


@dataclass(frozen=True, slots=True)
class OneOf:
    """`Annotated[str, OneOf(names)]`: one of the names (a StrEnum's members are theirs), kept as the
    string sent."""

    values: tuple[str, ...]

    def __init__(self, names: Iterable[str]) -> None:
        object.__setattr__(self, "values", tuple(str(name) for name in names))

    def __get_pydantic_core_schema__(self, _source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(self.values))
