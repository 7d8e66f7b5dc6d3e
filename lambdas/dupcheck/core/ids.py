"""What an entity id may be: exactly what a URL path segment can carry to `/items/{entity_id}`.

An id is stored once and addressed by URL many times (GET and DELETE `/items/{id}`, on Lambda
through API Gateway and locally), so an id no URL can reach must not be stored at all. The
alphabet is the one the HTTP router matches in a path parameter: letters and digits of any
script, `_`, space, and `- . ~ ( ) ' ! * : @ , ; = + & $ < > [ ] { } | ^`. Left out on purpose:
`/ ? #` (they end a path segment), `%` (a proxy that decodes a path twice would turn `%2F` into
`/`), control characters, other punctuation and symbols the router does not match, `.` and
`..` as whole ids (clients resolve them as path steps), and an id of spaces only (a catalog's
cells are trimmed: no catalog row could ever name it). Clients percent-encode what a URL needs
encoded (a space as %20, `[` as %5B). An id that cannot be normalised, because it arrived
decomposed (`cafe%CC%81`: `e` and a combining accent) or as bytes that are not UTF-8 (`%FF`),
is refused saying so: the first with its composed (NFC) form to send instead.
"""

from __future__ import annotations

import re
import unicodedata

UNDECODABLE = "\ufffd"  # what a server puts for bytes that are not UTF-8 (WSGI here, "replace")
MAX_ID_LENGTH = 512  # DynamoDB allows 2 KB keys; ids longer than this are almost surely mistakes
ID_ALPHABET = r"-._~()'!*:@,;=+&$<> \[\]{}|^\w"
# The alphabet as a JSON Schema pattern (for the OpenAPI document): at least one character that
# is not a space; `.` and `..` are refused too.
ID_PATTERN = rf"^[{ID_ALPHABET}]*[{ID_ALPHABET.replace(' ', '')}][{ID_ALPHABET}]*$"
_ALLOWED_CHARACTER = re.compile(rf"[{ID_ALPHABET}]")
_ALLOWED = re.compile(rf"[{ID_ALPHABET}]+")


def id_problem(entity_id: object) -> str | None:
    """Why `entity_id` cannot be an id, or None when it can."""
    if not isinstance(entity_id, str) or not entity_id:
        return "entity_id must be a non-empty string"
    if len(entity_id) > MAX_ID_LENGTH:
        return f"entity_id is longer than {MAX_ID_LENGTH} characters"
    if entity_id in (".", ".."):
        return "entity_id must not be . or .."
    if not entity_id.strip(" "):
        return "entity_id must not be only spaces"
    if _ALLOWED.fullmatch(entity_id):
        return None
    if UNDECODABLE in entity_id:
        return "entity_id is not UTF-8 text: a percent-escape such as %FF decodes to no character"
    composed = unicodedata.normalize("NFC", entity_id)
    if composed != entity_id and _ALLOWED.fullmatch(composed):
        return (f"entity_id is in decomposed Unicode (a letter and a combining mark): send its composed (NFC) "
                f"form, {composed!r}")  # fmt: skip
    bad = next((c for c in entity_id if not _ALLOWED_CHARACTER.fullmatch(c)), None)
    if bad is not None:
        return f"entity_id must not contain {bad!r}: an id must fit in a URL path segment (docs/api.md, ids)"
    return None
