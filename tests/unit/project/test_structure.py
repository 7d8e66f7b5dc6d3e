"""The code's layout holds: no import circle anywhere in the repository (lambdas/, scripts/, infra/,
tests/), counting the imports made only for type hints and inside functions (import-linter's
contracts keep the core's floors; this covers every module), no script edits `sys.path` (scripts/
is a package on the venv's path), one loopback picture host (scripts/helpers/loopback.py),
every module of the core is in a room or the domain (docs/architecture.md, "Where things are"), every
module of the matching engine on one of its layers,
no class in lambdas/ is 250 lines or longer (issue 76), and the catalog's use cases are composed,
not chained by inheritance (issue 85)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LAMBDAS = ROOT / "lambdas"
CORE = LAMBDAS / "dupcheck" / "core"
ROOMS = {"jobs", "catalog", "fingerprint", "matching", "stored", "limits", "pictures"}
DOMAIN = {"__init__.py", "models.py", "ports.py", "errors.py", "ids.py", "settings.py", "spreadsheet.py", "choices.py"}
# Where each folder's modules are imported from: lambdas/ is on the path (the installed package),
# tests/ too (pytest's rootdir: `support.`), the checkout for the rest (`scripts.`, `infra.`, `tests.`).
FOLDERS = {LAMBDAS: (), ROOT / "tests" / "support": ("support",), ROOT / "scripts": ("scripts",),
           ROOT / "infra": ("infra",), ROOT / "tests": ("tests",)}  # fmt: skip


def _module_name(path: Path) -> str:
    folder = next(f for f in FOLDERS if path.is_relative_to(f))
    parts = (*FOLDERS[folder], *path.relative_to(folder).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each module of the repository and the modules of the repository it imports."""
    files = [p for folder in FOLDERS for p in folder.rglob("*.py") if ".egg-info" not in str(p)]
    modules = {_module_name(p): p for p in files}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                wanted = [f"{base}.{alias.name}" for alias in node.names] + [base]
            elif isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in modules:  # a name of a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
    return edges


def _circle_from(start: str, edges: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from `start` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        name, path = stack.pop()
        for target in edges[name]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_no_module_of_the_repository_imports_itself_round_a_circle() -> None:
    edges = _imports()
    assert {"scripts.bench.scale_bench", "dupcheck.core.models", "support.aws", "infra.stack"} <= set(edges)
    circles = [circle for name in sorted(edges) if (circle := _circle_from(name, edges)) is not None]
    assert circles == []


def test_no_script_edits_the_import_path() -> None:
    edits = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "scripts").rglob("*.py")) if "sys.path" in p.read_text()]
    assert edits == []


def test_one_loopback_picture_host_serves_the_benchmarks_and_the_tests() -> None:
    """Every HTTP server the benchmarks and the tests' helpers start is scripts/helpers/loopback.py's."""
    servers = []
    for path in sorted([*(ROOT / "scripts").rglob("*.py"), *(ROOT / "tests" / "support").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            bases = [ast.unparse(base) for base in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and any("HTTPServer" in b or "HTTPRequestHandler" in b for b in bases):
                servers.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert servers == ["scripts/helpers/loopback.py:_Server", "scripts/helpers/loopback.py:Handler"]


def test_every_core_module_is_in_a_room_or_the_domain() -> None:
    top = {p.name for p in CORE.iterdir() if p.suffix == ".py"}
    rooms = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top <= DOMAIN
    assert rooms == ROOMS


MAX_CLASS_LINES = 250  # issue 76: a class that grows to this is split by concern


def test_no_class_in_lambdas_is_250_lines_or_longer() -> None:
    too_long = {}
    for path in LAMBDAS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines >= MAX_CLASS_LINES:
                    too_long[f"{path.relative_to(LAMBDAS)}:{node.name}"] = lines
    assert not too_long, f"classes of {MAX_CLASS_LINES} lines or more (split them by concern): {too_long}"


CATALOG = CORE / "catalog"
USE_CASES = {"CatalogLookups", "CatalogRecords", "Registrar"}  # issue 85: what DupcheckService composes


def _base_name(base: ast.expr) -> str:
    while isinstance(base, ast.Subscript):  # Generic[T] -> Generic
        base = base.value
    return base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""


def _chained(sources: list[str]) -> list[str]:
    """Each class of these modules that inherits from a class they define, as `Class(Base)`."""
    classes = [node for source in sources for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ClassDef)]
    names = {c.name for c in classes}
    return [f"{c.name}({_base_name(b)})" for c in classes for b in c.bases if _base_name(b) in names]


def test_the_catalog_use_cases_are_composed_not_chained() -> None:
    """DupcheckService builds its use cases over one set of parts; no class of core/catalog inherits
    from another of it (the service was once a chain of three, split only to pass the class limit)."""
    sources = [p.read_text() for p in sorted(CATALOG.glob("*.py"))]
    assert _chained(sources) == []
    service = next(node for node in ast.walk(ast.parse((CATALOG / "service.py").read_text()))
                   if isinstance(node, ast.ClassDef) and node.name == "DupcheckService")  # fmt: skip
    built = {n.func.id for n in ast.walk(service) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert built >= USE_CASES, f"DupcheckService builds {sorted(built)}"
    # The check sees the chain this replaced.
    chain = [s.replace("class DupcheckService:", "class DupcheckService(records.CatalogRecords):") for s in sources]
    assert _chained(chain) == ["DupcheckService(CatalogRecords)"]


def test_every_matching_module_is_on_a_layer_of_the_engine() -> None:
    # A module on no layer of the import-linter contract is checked by nothing (marks.py was).
    contracts = tomllib.loads((LAMBDAS.parent / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (engine,) = [c for c in contracts if c.get("containers") == ["dupcheck.core.matching"]]
    layered = {name.strip() for layer in engine["layers"] for name in layer.split("|")}
    modules = {p.stem for p in (CORE / "matching").glob("*.py") if p.stem != "__init__"}
    assert modules - layered == set()


def test_every_lambda_handler_is_wrapped_once_in_the_shared_stack() -> None:
    """Powertools' logger, tracer and metrics decorators are applied in observability.lambda_entry
    alone; a handler that stacks them itself drifts (a missing flush, another correlation id)."""
    stacks, entries = [], []
    for path in sorted(LAMBDAS.rglob("*.py")):
        if path.name == "observability.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name == "handler":
                names = [ast.unparse(d) for d in node.decorator_list]
                entries += [path.name] if any(n.startswith("lambda_entry(") for n in names) else []
                stacks += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("logger", "tracer", "metrics")]
    assert stacks == []
    assert len(entries) >= 7, entries  # the six functions of dupcheck/handlers and the duplicate scan's


# A commit's short hash: 7 to 40 hex digits, at least one a letter and one a digit.
COMMIT_HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def _comments_and_docstrings(source: str) -> list[str]:
    found = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found += [doc] if (doc := ast.get_docstring(node)) else []
    return found


def test_no_comment_in_lambdas_names_a_commit() -> None:
    """Code says what and why; which commit a figure was measured after is history, for git and
    docs/lab (issue 85)."""
    named = [f"{path.relative_to(LAMBDAS)}: {found.group(0)}" for path in sorted(LAMBDAS.rglob("*.py"))
             for text in _comments_and_docstrings(path.read_text(encoding="utf-8"))
             for found in COMMIT_HASH.finditer(text)]  # fmt: skip
    assert named == []
    assert [m.group(0) for m in COMMIT_HASH.finditer("after 476b71e: 79.0%, 1,786 copies, 0x1f")] == ["476b71e"]


# A benchmark part named (dev, lockbox) in a paragraph that holds a digit: a count measured on it.
PART_COUNT = re.compile(r"\b(?:dev|lockbox)\b(?![-_/.])", re.IGNORECASE)


def _paragraphs(source: str) -> list[str]:
    """The comments, each run of comment lines on consecutive lines as one, and the docstrings'
    paragraphs."""
    runs: list[list[str]] = []
    last = -2
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            if token.start[0] != last + 1:
                runs.append([])
            runs[-1].append(token.string)
            last = token.start[0]
    found = [" ".join(run) for run in runs]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found += re.split(r"\n\s*\n", doc) if (doc := ast.get_docstring(node)) else []
    return found


def test_no_comment_in_lambdas_holds_a_count_measured_on_a_benchmark_part() -> None:
    """How a number was found (a dev-set count, a percentile, a timing on the dev part) belongs in
    docs/lab, once; the code says what a value means and points there (issue 85)."""
    counted = [f"{path.relative_to(LAMBDAS)}: {' '.join(text.split())[:100]}" for path in sorted(LAMBDAS.rglob("*.py"))
               for text in _paragraphs(path.read_text(encoding="utf-8"))
               if PART_COUNT.search(text) and re.search(r"\d", text)]  # fmt: skip
    assert counted == []
    sample = "x = 1  # dev copies: 1,587 of 1,600...\n# ...of eight kinds\n\ny = 2  # the dev-server on 8080\n"
    assert [t for t in _paragraphs(sample) if PART_COUNT.search(t) and re.search(r"\d", t)] == [
        "# dev copies: 1,587 of 1,600... # ...of eight kinds"
    ]


def test_the_unit_tests_sit_in_the_rooms_of_what_they_test() -> None:
    """tests/unit mirrors the code (docs/architecture.md, "Where things are"): no test module lies flat in it."""
    unit = ROOT / "tests" / "unit"
    assert sorted(p.name for p in unit.glob("*.py")) == []
    assert {p.name for p in unit.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "api", "catalog", "fingerprint", "jobs", "matching", "stored", "limits", "pictures", "domain", "adapters",
        "tools", "scripts", "project"}  # fmt: skip


def test_each_kept_picture_has_one_name() -> None:
    """The picture a record keeps for the same-photograph test is its "kept picture" (KEPT_SIDE px,
    core/stored/thumbnails.py); an upload the service keeps for a record without an address is a
    "kept image" (core/catalog/kept_images.py, `/images`). Neither room names the other's."""
    record_rooms = [CORE / room for room in ("matching", "stored", "limits", "fingerprint")]
    uploads = [CORE / "catalog" / "kept_images.py", LAMBDAS / "dupcheck" / "api" / "images.py",
               LAMBDAS / "dupcheck" / "adapters" / "local_files.py", LAMBDAS / "dupcheck" / "adapters" / "s3_files.py",
               LAMBDAS / "dupcheck" / "handlers" / "stream_sync.py"]  # fmt: skip
    in_record_rooms = [str(p.relative_to(ROOT)) for room in record_rooms for p in sorted(room.rglob("*.py"))
                       if "kept image" in p.read_text().lower()]  # fmt: skip
    in_uploads = [str(p.relative_to(ROOT)) for p in uploads if "kept picture" in p.read_text().lower()]
    assert in_record_rooms == [] and in_uploads == []
