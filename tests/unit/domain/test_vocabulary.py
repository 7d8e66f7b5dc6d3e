"""One vocabulary, one place: the duplicate gate's policies (core/models.py's GATE_RULES) and the
kinds of edit (core/matching/edits.py's KINDS) are each written once; the API, the settings, the
command line, the web app, the report and the docs take them from there."""

from __future__ import annotations

import ast
import json
import re
from enum import StrEnum
from pathlib import Path

import pytest

from dupcheck.core import models
from dupcheck.core.matching.edits import KINDS, Carries, inverse, words
from dupcheck.core.models import GATE_RULES, IMPORT_POLICIES, ITEM_POLICIES, Edit, Marks, OnDuplicate
from dupcheck.core.settings import Settings, SettingsError

ROOT = Path(__file__).parents[3]
VALUES = {policy.value for policy in OnDuplicate}


def _string_lists(tree: ast.AST) -> list[tuple[int, set[str]]]:
    """Every literal tuple, list or set, and every subscript (a `Literal[...]`), with the strings in it."""
    found = []
    for node in ast.walk(tree):
        items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else None
        if isinstance(node, ast.Subscript):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if items:
            found.append(
                (node.lineno, {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)})
            )
    return found


@pytest.mark.parametrize("values", [VALUES, {m.value for m in Marks}], ids=["on_duplicate", "marks"])
def test_no_second_list_of_the_policies(values: set[str]) -> None:
    # A second list (a Literal, a tuple of choices) is what drifts when a value is added.
    copies = []
    for path in sorted(p for folder in ("lambdas", "infra", "scripts") for p in (ROOT / folder).rglob("*.py")):
        for line, strings in _string_lists(ast.parse(path.read_text(), str(path))):
            if len(strings & values) >= 2:
                copies.append(f"{path.relative_to(ROOT)}:{line}")
    assert copies == []


def test_the_api_s_types_take_core_s_vocabularies() -> None:
    """A field of the API's bodies or parameters whose values are a core/models.py vocabulary (a
    verdict, a job's status, a decision) reads it through OneOf, not a Literal of its own."""
    kinds = [kind for kind in vars(models).values() if isinstance(kind, type) and issubclass(kind, StrEnum)]
    vocabularies = {kind.__name__: {member.value for member in kind} for kind in kinds}
    copies = []
    for path in sorted((ROOT / "lambdas" / "dupcheck" / "api").rglob("*.py")):
        for line, strings in _string_lists(ast.parse(path.read_text(), str(path))):
            copies += [f"{path.name}:{line} {name}" for name, values in vocabularies.items()
                       if len(strings) >= 2 and strings <= values]  # fmt: skip
    assert copies == []


def test_the_scan_finds_a_literal_copy() -> None:
    source = 'Policy = Literal["warn", "reject"]\nCHOICES = ("allow", "skip", "other")\nOK = ("warn", "x")'
    assert {line for line, strings in _string_lists(ast.parse(source)) if len(strings & VALUES) >= 2} == {1, 2}


def test_every_policy_has_its_rule() -> None:
    assert set(GATE_RULES) == set(OnDuplicate)
    assert all(p.rule.per_item for p in ITEM_POLICIES) and set(IMPORT_POLICIES) == set(OnDuplicate)
    # A policy that stores a duplicate has nothing to refuse; one that does not check stores.
    assert not any(p.rule.stores and p.rule.fails for p in OnDuplicate)
    assert all(p.rule.stores for p in OnDuplicate if not p.rule.checks)


def test_the_api_contract_offers_the_table_s_values() -> None:
    contract = json.loads((ROOT / "docs" / "openapi.json").read_text())
    offered = {}
    for path, operations in contract["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "on_duplicate":
                    enum = next(s["enum"] for s in parameter["schema"]["anyOf"] if "enum" in s)
                    offered[f"{method} {path}"] = enum
    assert offered["post /items"] == offered["put /items/{entity_id}"] == [p.value for p in ITEM_POLICIES]
    assert offered["post /imports"] == [p.value for p in IMPORT_POLICIES]


@pytest.mark.parametrize("policy", list(OnDuplicate))
def test_the_setting_takes_what_an_item_takes(policy: OnDuplicate) -> None:
    if policy.rule.per_item:
        assert Settings.from_env({"DUPCHECK_ON_DUPLICATE": policy.value}).on_duplicate == policy.value
    else:
        with pytest.raises(SettingsError, match="DUPCHECK_ON_DUPLICATE"):
            Settings.from_env({"DUPCHECK_ON_DUPLICATE": policy.value})


def test_the_docs_and_the_web_app_name_only_the_table_s_values() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    gate_rows = re.findall(r"^\| `(\w+)` \| (?:stored|nothing stored)", api, flags=re.MULTILINE)
    assert gate_rows == [p.value for p in ITEM_POLICIES]
    setting = next(line for line in (ROOT / "docs" / "configuration.md").read_text().splitlines()
                   if line.startswith("| `DUPCHECK_ON_DUPLICATE`"))  # fmt: skip
    assert set(re.findall(r"`(\w+)`", setting)) & VALUES == {p.value for p in ITEM_POLICIES}
    # The web app words each choice for a merchandiser; each is a value the route takes.
    page = (ROOT / "lambdas" / "dupcheck" / "web" / "index.html").read_text()
    for select, takes in (("add-policy", ITEM_POLICIES), ("import-policy", IMPORT_POLICIES)):
        options = re.search(rf'<select id="{select}">(.*?)</select>', page, flags=re.DOTALL)
        assert options is not None
        values = re.findall(r'<option value="(\w+)"', options.group(1))
        assert values and set(values) <= {p.value for p in takes}
    # Each form that judges offers the marks settings, made from one choice (ui.js initMarksChoices),
    # and leaving it asks as the catalog is set up.
    assert re.findall(r'<template data-marks="([\w-]+)">', page) == ["check-marks", "add-marks", "import-marks",
                                                                      "scan-marks"]  # fmt: skip
    choice = re.search(r'<template id="marks-choice">(.*?)</template>', page, flags=re.DOTALL)
    assert choice is not None
    assert re.findall(r'<option value="(\w*)"', choice.group(1)) == ["", *(m.value for m in Marks)]


def test_no_second_list_of_the_edit_kinds() -> None:
    # Every Edit(...) the code makes names a kind of the registry, and no other list names two.
    # (scripts/make_benchmark.py's steps are the benchmark's own words, some of them the same.)
    names, made = set(KINDS), []
    copies = []
    for path in sorted((ROOT / "lambdas").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Edit" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    made.append(first.value)
        if path.name != "edits.py":
            copies += [f"{path.relative_to(ROOT)}:{line}" for line, s in _string_lists(tree) if _lists_kinds(s, names)]
    assert copies == []
    assert made and set(made) <= names


def _lists_kinds(strings: set[str], kinds: set[str]) -> bool:
    """A list of edit kinds: two or more, and mostly kinds (the evaluation's lists of the
    benchmark's own steps share a name with a kind here and there: "grayscale")."""
    named = len(strings & kinds)
    return named >= 2 and 2 * named > len(strings)


def test_a_list_of_the_benchmark_s_steps_is_not_a_list_of_kinds() -> None:
    kinds = {*KINDS, "watermark"}  # as if a kind shared a second name with the benchmark
    assert _lists_kinds({"cropped", "padded"}, kinds)
    assert _lists_kinds({"cropped", "padded", "zoomed"}, kinds)
    assert not _lists_kinds({"crop_small", "pad_square", "watermark", "badge", "grayscale"}, kinds)


def test_the_api_describes_every_kind_of_edit() -> None:
    contract = json.loads((ROOT / "docs" / "openapi.json").read_text())
    offered: list[str] = []
    for schema in contract["components"]["schemas"].values():
        edit = schema.get("properties", {}).get("edit", {})
        offered += edit.get("enum", []) or ([edit["const"]] if "const" in edit else [])
    assert sorted(offered) == sorted(KINDS)


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_has_its_words_and_reads_back(name: str) -> None:
    kind = KINDS[name]
    sides = {"left": 0.1, "right": 0.1, "top": 0.1, "bottom": 0.1}
    params = {Carries.NOTHING: {}, Carries.DEGREES: {"degrees": 5.0}, Carries.CHANGE: {"change": 0.2},
              Carries.SIDES: sides, Carries.PLACE: {"where": "top left", "share": 0.02},
              Carries.SHARE: {"share": 0.3}}[kind.carries]  # fmt: skip
    said = words(Edit(name, params))
    assert said and said[0].islower()
    back = inverse([Edit(name, params)])
    # An edit that can be undone reads back as its own kind's family (a crop as padding, a turn back).
    assert back is None if kind.undo is None else (back and all(KINDS[e.name].carries is kind.carries for e in back))
