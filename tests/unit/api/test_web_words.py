"""The web app's sentences (dupcheck/web/words.js), run by Node without a browser: the words that
follow an import's mode, and a checked row that copies an earlier row of its file. (The browser
tests, tests/integration/test_web_app.py, drive the whole page where Chromium is installed.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from dupcheck.api import web

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def words(expression: str) -> Any:
    """What `expression` gives with words.js's exports in scope, as JSON."""
    module = (web.WEB_DIR / "words.js").as_uri()
    script = f"const w = await import({json.dumps(module)}); console.log(JSON.stringify({expression}));"
    done = subprocess.run([str(NODE), "--input-type=module", "-e", script], capture_output=True, text=True,
                          check=True, timeout=30)  # fmt: skip
    return json.loads(done.stdout)


def test_the_import_views_words_follow_the_mode() -> None:
    assert words("[w.modeWords(true), w.modeWords(false)]") == [
        {"failed": "Rows that could not be checked", "cancel": "Cancel the check"},
        {"failed": "Rows that were not imported", "cancel": "Cancel the import"},
    ]


def test_a_checked_row_that_copies_an_earlier_row_names_the_row_and_the_edit() -> None:
    match = {"entity_id": "cat-0", "sku": "", "match_percent": 96.4, "verdict": "duplicate",
             "edit_summary": "mirrored and cropped (5% off the left)"}  # fmt: skip
    edited = {"verdict": "duplicate", "duplicate_of": "cat-0", "duplicate_of_row": 1, "match": match}
    same = {"verdict": "duplicate", "duplicate_of": "N2", "duplicate_of_row": 2, "match": None}
    catalog = {"verdict": "duplicate", "duplicate_of": "C1", "duplicate_of_row": None,
               "match": {**match, "entity_id": "C1", "sku": "S1"}}  # fmt: skip
    assert words(f"[{json.dumps(edited)}, {json.dumps(same)}, {json.dumps(catalog)}].map(w.resultSentence)") == [
        "The same picture as row 1 (cat-0) of this file (96% match): mirrored and cropped (5% off the left).",
        "The same picture as row 2 (N2) of this file.",
        "The same picture as C1 (SKU S1) (96% match): mirrored and cropped (5% off the left).",
    ]


def test_a_catalog_missing_both_columns_is_told_to_name_both_in_the_file() -> None:
    message = ("the catalog has no 'entity_id' column and none of the URL columns image_url, small_image "
               "(columns: id, url); name it with id_column; name it with url_column")  # fmt: skip
    assert words(f"w.errorSentence(422, 'invalid_catalog', {json.dumps(message)})") == (
        "This catalog cannot be read: the catalog has no 'entity_id' column and none of the URL columns "
        "image_url, small_image (columns: id, url): name the file's id column entity_id and its picture column "
        "image_url (or small_image)."
    )


def test_a_similar_match_says_what_sets_it_apart() -> None:
    """Another colour, another print (marks=product) or another title in the same template: the
    verdict and the answer at the top of a check say which."""

    def similar(edit: str | None) -> dict[str, Any]:
        return {"entity_id": "cat-7", "sku": "", "match_percent": 88.0, "verdict": "similar",
                "edits": [{"edit": edit, "where": "top", "share": 0.02}] if edit else []}  # fmt: skip

    matches = json.dumps([similar(None), similar("printed"), similar("retitled")])
    said = words(f"{matches}.map((m) => [w.verdictWords(m), w.answerOf({{matches: [m]}}).text])")
    assert said == [
        ["The same shot in another colour", "Not in the catalog. cat-7 is the same shot in another colour."],
        ["The same shot with another print", "Not in the catalog. cat-7 is the same shot with another print."],
        ["The same template with another title", "Not in the catalog. cat-7 is the same template with another title."],
    ]
