"""The entity id rule: what a URL path segment can carry, exactly what the router matches."""

from __future__ import annotations

import re

import pytest

from dupcheck.core.ids import ID_PATTERN, MAX_ID_LENGTH, id_problem


@pytest.mark.parametrize("entity_id", ["A1", "12345", "a b", "Ünïcödé-ß", "商品-1", "[x]{y}", "a;b,c=d&e+f$g", "...",
                                       "tilde~(1)'!*:@", "<>|^", "x" * MAX_ID_LENGTH])  # fmt: skip
def test_addressable_ids_are_accepted_and_match_the_published_pattern(entity_id: str) -> None:
    assert id_problem(entity_id) is None
    assert re.fullmatch(ID_PATTERN, entity_id)


@pytest.mark.parametrize(
    ("entity_id", "says"),
    [("", "non-empty"), ("a/b", "'/'"), ("what?", "'?'"), ("x#y", "'#'"), ("50%", "'%'"), ("line\nbreak", "'\\n'"),
     ("nul\x00", "'\\x00'"), (".", ". or .."), ("..", ". or .."), ("€", "'€'"), ('quote"', "'\"'"),
     ("x" * (MAX_ID_LENGTH + 1), "longer"), ("cafe\u0301", "composed (NFC) form, 'caf\u00e9'"),
     ("a\ufffd", "not UTF-8")],
)  # fmt: skip
def test_ids_no_url_can_address_are_refused_saying_why(entity_id: str, says: str) -> None:
    problem = id_problem(entity_id)
    assert problem is not None and says in problem


def test_the_alphabet_is_the_routers() -> None:
    """Powertools matches a path parameter with this character class: every id must match it."""
    from aws_lambda_powertools.event_handler.api_gateway import _SAFE_URI, _UNSAFE_URI

    router = re.compile(rf"[{_SAFE_URI}{_UNSAFE_URI}\w]+")
    for sample in ("A1", "a b", "[x]{y}", "tilde~(1)'!*:@", "<>|^", "Ünïcödé"):
        assert router.fullmatch(sample) and id_problem(sample) is None
