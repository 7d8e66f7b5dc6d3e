"""Catalog reading: CSV / JSON Lines, configurable columns, small_image, bad rows as errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dupcheck_tools.backfill import default_failures_path
from dupcheck_tools.catalog import CatalogError, CatalogReader, Columns, detect_format


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_stream_with_bom_and_blank_lines(tmp_path: Path) -> None:
    text = "\ufeffentity_id,sku,image_url\nA1,S1,http://h/a.jpg\n\n A2 ,S2, http://h/b.jpg \n"
    path = write(tmp_path / "c.csv", text)
    rows = list(CatalogReader(path))
    assert [(r.row, r.entity_id, r.sku, r.image_url, r.error) for r in rows] == [
        (1, "A1", "S1", "http://h/a.jpg", None),
        (2, "A2", "S2", "http://h/b.jpg", None),
    ]


def test_missing_id_or_url_is_an_error_row_not_a_skip(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "entity_id,sku,image_url\n,S1,http://h/a.jpg\nA2,S2,\nA3\n")
    rows = list(CatalogReader(path))
    assert [r.error[0] if r.error else None for r in rows] == [
        "missing_entity_id",
        "missing_image_url",
        "missing_image_url",
    ]


def test_small_image_column_and_base_url(tmp_path: Path) -> None:
    path = write(tmp_path / "export.csv", "entity_id,sku,small_image\n7,MH01,/m/h/mh01.jpg\n8,MH02,https://cdn/x.jpg\n")
    rows = list(CatalogReader(path, image_base_url="https://shop.example/media/catalog/product/"))
    # appended to the media base URL, as the shop builds it (not resolved from the host's root)
    assert rows[0].image_url == "https://shop.example/media/catalog/product/m/h/mh01.jpg"
    assert rows[1].image_url == "https://cdn/x.jpg"


def test_a_relative_path_without_a_base_url_says_what_to_give(tmp_path: Path) -> None:
    path = write(tmp_path / "export.csv", "entity_id,small_image\n7,/m/h/mh01.jpg\n8,//cdn.example/x.jpg\n")
    rows = list(CatalogReader(path))
    assert rows[0].error is not None and rows[0].error[0] == "relative_image_url"
    assert "--image-base-url" in rows[0].error[1] and "/m/h/mh01.jpg" in rows[0].error[1]
    with_base = list(CatalogReader(path, image_base_url="https://shop.example/media"))
    assert [r.image_url for r in with_base] == ["https://shop.example/media/m/h/mh01.jpg", "https://cdn.example/x.jpg"]


def test_dynamodb_json_export_lines(tmp_path: Path) -> None:
    """What `aws dynamodb export-table-to-point-in-time` (DYNAMODB_JSON) writes for the prototype's
    hash_store: one {"Item": {...}} per line, typed values, a phash to carry along."""
    path = write(
        tmp_path / "hash_store.json",
        '{"Item": {"entity_id": {"S": "7"}, "sku": {"S": "MH01"}, "small_image": {"S": "/m/h/mh01.jpg"},'
        ' "phash": {"S": "c3d1a0b2e4f56789"}}}\n'
        '{"Item": {"entity_id": {"N": "8"}, "small_image": {"S": "https://cdn.example/b.jpg"}}}\n'
        '{"Item": {"entity_id": {"Q": "broken"}}}\n',
    )
    rows = list(CatalogReader(path, image_base_url="https://shop.example/media/catalog/product"))
    assert [(r.entity_id, r.sku, r.image_url, r.phash, r.error) for r in rows[:2]] == [
        ("7", "MH01", "https://shop.example/media/catalog/product/m/h/mh01.jpg", "c3d1a0b2e4f56789", None),
        ("8", "", "https://cdn.example/b.jpg", "", None),
    ]
    assert rows[2].error is not None and rows[2].error[0] == "invalid_row"


def test_configurable_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,code,picture\nA,S,http://h/a.jpg\n")
    rows = list(CatalogReader(path, Columns("id", "code", "picture")))
    assert (rows[0].entity_id, rows[0].sku, rows[0].image_url) == ("A", "S", "http://h/a.jpg")


def test_missing_columns_are_usage_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,sku,image_url\nA,S,http://h/a.jpg\n")
    with pytest.raises(CatalogError, match="entity_id"):
        list(CatalogReader(path))
    path = write(tmp_path / "d.csv", "entity_id,sku\nA,S\n")
    with pytest.raises(CatalogError, match="URL columns"):
        list(CatalogReader(path))
    with pytest.raises(CatalogError, match="not found"):
        CatalogReader(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("text", "delimited"),
    [
        ("entity_id;sku;image_url\nA;S;http://h/a.jpg\n", ";"),  # issue 86: a European spreadsheet's CSV
        ("entity_id\tsku\timage_url\nA\tS\thttp://h/a.jpg\n", "tab"),
        ('entity_id,sku,image_url\nA,"S;1",http://h/a.jpg\n', ","),  # a semicolon inside a cell
        ('entity_id,"title;sub",image_url\nA,x,http://h/a.jpg\n', ","),  # and inside a column's name
        ('\ufeff"entity_id";"sku";"image_url"\nA;S;http://h/a.jpg\n', ";"),
    ],
)
def test_a_csv_files_delimiter_is_the_one_its_header_is_written_with(tmp_path: Path, text: str, delimited: str) -> None:
    (row,) = list(CatalogReader(write(tmp_path / "c.csv", text)))
    assert (row.entity_id, row.image_url, row.error) == ("A", "http://h/a.jpg", None), delimited


def test_every_missing_column_is_named_in_one_message(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as both:
        list(CatalogReader(write(tmp_path / "c.csv", "id;url\nA;http://h/a.jpg\n")))
    assert str(both.value) == (
        "catalog c.csv has no 'entity_id' column and none of the URL columns image_url, small_image "
        "(columns: id, url); use --id-column; use --url-column"
    )
    with pytest.raises(CatalogError) as named:
        list(CatalogReader(write(tmp_path / "d.csv", "id,sku,pic\nA,S,x\n"), Columns("entity_id", "sku", "picture")))
    assert str(named.value) == (
        "catalog d.csv has no 'entity_id' column and no 'picture' column (columns: id, sku, pic); use --id-column; "
        "use --url-column"
    )


def test_jsonl_rows_including_a_broken_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.jsonl",
        '{"entity_id": 1, "sku": "S", "image_url": "http://h/a.jpg"}\n\nnot json\n'
        '{"entity_id": "2", "small_image": "http://h/b.jpg"}\n',
    )
    rows = list(CatalogReader(path))
    assert [(r.row, r.entity_id, r.image_url, r.error and r.error[0]) for r in rows] == [
        (1, "1", "http://h/a.jpg", None),
        (2, "", "", "invalid_row"),
        (3, "2", "http://h/b.jpg", None),
    ]


def test_format_detection_and_gzip(tmp_path: Path) -> None:
    sniffed = write(tmp_path / "catalog.txt", '{"entity_id": "A", "image_url": "http://h/a.jpg"}\n')
    assert detect_format(sniffed) == "jsonl"
    gz = tmp_path / "catalog.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as out:
        out.write("entity_id,image_url\nA,http://h/a.jpg\nB,http://h/b.jpg\n")
    reader = CatalogReader(gz)
    assert [r.entity_id for r in reader] == ["A", "B"]
    assert reader.count_rows() == 2


def test_count_rows_without_trailing_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "entity_id,image_url\nA,http://h/a.jpg\nB,http://h/b.jpg")
    assert CatalogReader(path).count_rows() == 2


def test_default_failures_path_sits_next_to_the_catalog(tmp_path: Path) -> None:
    assert default_failures_path(tmp_path / "cat.csv") == tmp_path / "cat.failures.csv"
    assert default_failures_path(tmp_path / "cat.jsonl.gz") == tmp_path / "cat.failures.csv"


def test_the_failures_file_writes_a_formula_as_text(tmp_path: Path) -> None:
    """A catalog row's id and URL are the catalog author's: in the CSV failures file a cell a
    spreadsheet would evaluate gets a leading ' (the JSON Lines file keeps them as they are)."""
    import csv
    import json

    from dupcheck.core.models import CatalogRow
    from dupcheck_tools.backfill.failures import FailureLog

    rows = [CatalogRow(1, '=HYPERLINK("http://evil.example","x")', "", "@SUM(A1)"), CatalogRow(2, "A2", "", "-1+2"),
            CatalogRow(3, "A3", "", "https://h.test/3.jpg")]  # fmt: skip
    for name in ("f.csv", "f.jsonl"):
        log = FailureLog(tmp_path / name)
        for row in rows:
            log.add(row, "upstream_error", "+HTTP 404" if row.row == 3 else "HTTP 404")
        log.close()
    with (tmp_path / "f.csv").open(newline="") as fh:
        written = [(r["row"], r["entity_id"], r["image_url"], r["message"]) for r in csv.DictReader(fh)]
    assert written == [("1", "'" + rows[0].entity_id, "'@SUM(A1)", "HTTP 404"), ("2", "A2", "'-1+2", "HTTP 404"),
                       ("3", "A3", "https://h.test/3.jpg", "'+HTTP 404")]  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert lines[0]["entity_id"] == rows[0].entity_id
