"""The duplicate report's files: duplicates.json (what GET /duplicates serves), duplicates.csv
(one row per record in a group) and report.html (a page a person opens from disk).

Each file is written whole under a temporary name, then renamed into place, so a reader (the
local server reads duplicates.json on every request) never sees half of one. The JSON is
written last: its appearance says the other two are complete.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dupcheck.adapters.report_file import REPORT_NAME
from dupcheck_tools.duplicates.grouping import GROUP_RULE, KEEP_RULE, Group, Pair
from dupcheck_tools.spreadsheet import safe_row

CSV_NAME = "duplicates.csv"
HTML_NAME = "report.html"
CSV_COLUMNS = ("group", "entity_id", "sku", "image_url", "keep", "keep_reason")  # the reason on the kept row
# A page of more groups than this is too long to read or to load: the rest are in the CSV and JSON.
HTML_GROUPS = 1000
# Pictures load from the records' own URLs; anything else (javascript:, data:) is not shown.
_IMAGE_SCHEMES = ("http", "https", "file")


def report_document(facts: Mapping[str, Any], groups: Sequence[Group]) -> dict[str, Any]:
    """duplicates.json: the run's facts (pipeline, records, ...) and every group."""
    return {**facts, "keep_rule": KEEP_RULE, "group_rule": GROUP_RULE, "groups": [group.to_dict() for group in groups]}


def write_reports(out: Path, document: Mapping[str, Any], groups: Sequence[Group]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _replace(out / CSV_NAME, _csv(groups)),
        _replace(out / HTML_NAME, render_html(document, groups)),
        _replace(out / REPORT_NAME, json.dumps(document, indent=1, ensure_ascii=False) + "\n"),
    ]
    return written


def _replace(path: Path, text: str) -> Path:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def _csv(groups: Sequence[Group]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180 line ends: a carriage return inside a cell is quoted too
    writer.writerow(CSV_COLUMNS)
    for number, group in enumerate(groups, start=1):
        for i, item in enumerate(group.items):
            kept = i == 0
            writer.writerow(safe_row((number, item.entity_id, item.sku, item.image_url, "true" if kept else "false",
                                      group.keep_reason if kept else "")))  # fmt: skip
    return buffer.getvalue()


_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem; color: #1b1b1b; }
header p { margin: .2rem 0; color: #444; }
section { border-top: 1px solid #ccc; padding: .8rem 0; }
h2 { font-size: 1.05rem; margin: .2rem 0 .6rem; }
ul.items { list-style: none; display: flex; flex-wrap: wrap; gap: .8rem; padding: 0; margin: 0; }
ul.items li { width: 10rem; }
ul.items img, ul.items .none { width: 10rem; height: 10rem; object-fit: contain; background: #f3f3f3;
  border: 3px solid #ddd; display: flex; align-items: center; justify-content: center; color: #666;
  box-sizing: border-box; }
ul.items li.keep img { border-color: #1a7f37; }
.id { font-weight: 600; overflow-wrap: anywhere; margin: .3rem 0 0; }
.sku, .note { color: #555; margin: 0; font-size: .9rem; overflow-wrap: anywhere; }
.keep-label { color: #1a7f37; font-weight: 600; }
.reason { margin: 0 0 .6rem; color: #444; }
ul.pairs { margin: .6rem 0 0; padding-left: 1.2rem; }
ul.related { margin: .4rem 0 0; padding-left: 1.2rem; color: #555; }
.warning { background: #fff4ce; padding: .5rem .8rem; border-radius: 4px; }
"""


def render_html(document: Mapping[str, Any], groups: Sequence[Group]) -> str:
    """A self-contained page: inline styles, no script, pictures from the records' URLs."""
    e = html.escape
    records, shown = document.get("records", 0), groups[:HTML_GROUPS]
    items = sum(len(g.items) for g in groups)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Opened from disk: nothing runs, pictures load from where the records say they are.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src http: https: file:; style-src 'unsafe-inline'\">",
        f"<title>Duplicate report: {len(groups)} groups</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<header><h1>Duplicate report</h1>",
        f"<p>{len(groups)} group{'' if len(groups) == 1 else 's'} of records holding the same picture: {items} of "
        f"{records} records. Pipeline {e(str(document.get('pipeline', '')))}, pairs found within "
        f"{e(str(document.get('radius', '')))} bits{_far_band(document)}, verified as the service verifies them "
        f"(the same photograph, its colours explained by one edit of the whole picture); written "
        f"{e(str(document.get('generated_at', '')))} in {document.get('elapsed_s', 0)} s.</p>",
        f"<p>Keep: {e(KEEP_RULE)}, shown first and outlined in green. Groups: {e(GROUP_RULE)}.</p>",
    ]
    for warning in ("skipped", "not_verified"):  # records not compared, records not judged
        if (document.get(warning) or {}).get("message"):
            parts.append(f'<p class="warning">{e(str(document[warning]["message"]))}</p>')
    if len(groups) > len(shown):
        parts.append(
            f'<p class="warning">The first {len(shown)} groups of {len(groups)} are shown here (the largest first); '
            f"every group is in {CSV_NAME} and {REPORT_NAME}.</p>"
        )
    parts.append("</header><main>")
    if not groups:
        parts.append("<p>No duplicates: no two records hold the same picture.</p>")
    parts.append(groups_html(shown))
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _far_band(document: Mapping[str, Any]) -> str:
    far = document.get("far_radius")
    return f" (and each record's nearest within {int(far)})" if far else ""


def groups_html(groups: Sequence[Group], *, styled: bool = False) -> str:
    """The groups as HTML sections: each record's picture, id, SKU and whether to keep it, and
    each pair's verdict in words. `styled` adds the page's styles (a notebook shows the groups
    inline, without the page around them)."""
    e = html.escape
    parts = [f"<style>{_STYLE}</style>"] if styled else []
    for number, group in enumerate(groups, start=1):
        heading = f"Group {number}: {len(group.items)} records, keep {e(group.keep.entity_id)}"
        reason = f'<p class="reason">Keep {e(group.keep.entity_id)}: {e(group.keep_reason)}.</p>'
        parts.append(
            f'<section aria-labelledby="g{number}"><h2 id="g{number}">{heading}</h2>{reason}<ul class="items">'
        )
        for i, item in enumerate(group.items):
            label = '<p class="keep-label">Keep</p>' if i == 0 else ""
            parts.append(
                f'<li class="{"keep" if i == 0 else "other"}">{_thumbnail(item.image_url, item.entity_id)}'
                f'<p class="id">{e(item.entity_id)}</p><p class="sku">SKU {e(item.sku or "-")}</p>{label}</li>'
            )
        parts.append('</ul><ul class="pairs">')
        parts.extend(_pair_item(pair) for pair in group.pairs)
        parts.append("</ul>")
        if group.related:
            parts.append(
                f'<p class="note">Related, not in the group (not called the same picture as '
                f'{e(group.keep.entity_id)}):</p><ul class="related">'
            )
            parts.extend(_pair_item(pair) for pair in group.related)
            parts.append("</ul>")
        parts.append("</section>")
    return "\n".join(parts)


def _pair_item(pair: Pair) -> str:
    return f"<li>{html.escape(pair.a)} and {html.escape(pair.b)}: {html.escape(pair.in_words())}</li>"


def _thumbnail(url: str, entity_id: str) -> str:
    if urlsplit(url).scheme.lower() not in _IMAGE_SCHEMES:
        return '<span class="none">No picture address</span>'
    alt = html.escape(f"Picture of {entity_id}", quote=True)
    return f'<img src="{html.escape(url, quote=True)}" alt="{alt}" loading="lazy">'
