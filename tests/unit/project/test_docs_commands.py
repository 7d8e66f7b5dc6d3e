"""Every command README.md, docs/*.md and docs/lab/*.md give is one the project has: each `python -m dupcheck`
line parses with the real parser (a synopsis with `[...]` or `...`: each of its options exists),
each `make` target is in the Makefile, each `scripts/*.py` accepts the options shown (from its
`--help`), and each `pip install` extra is declared. The commands that do work are run for real
elsewhere: backfill and migrate (tests/integration), the notebook's install line
(test_notebook.py), the smoke test and compare_answers.py against local servers.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dupcheck_tools.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "lab").glob("*.md"))]
FENCE = re.compile(r"^ *```[^\n]*\n(.*?)^ *```", re.M | re.S)
INLINE = re.compile(r"`((?:\.venv/bin/)?python3? (?:-m dupcheck|scripts/)[^`]*|make [a-z]+|pip install [^`]+)`")
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def command_lines() -> list[tuple[str, str]]:
    """(file name, command) for every line of a fenced block and every inline command span."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in FENCE.findall(text):
            for line in block.replace("\\\n", " ").splitlines():
                found.append((doc.name, line.strip()))
        found += [(doc.name, span) for span in INLINE.findall(text)]
    commands = [(name, part.strip()) for name, line in found for part in re.split(r"\s(?:&&|\|\||;)\s", line)]
    return [(name, line) for name, line in commands if line and not line.startswith(("{", "[", "#", '"'))]


def words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


@functools.cache
def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


@functools.cache
def script_help(script: str) -> str:
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{script} --help: {result.stderr}"
    return result.stdout


def check_dupcheck(argv: list[str], line: str) -> bool:
    """False when the line only mentions the command (no subcommand)."""
    command = next((w for w in argv if w in subcommands()), None)
    if command is None:
        assert all(w.startswith(("-", "[")) for w in argv), f"{line}: no such command"
        return False
    if argv == [command]:  # a mention in prose (`python -m dupcheck evaluate` measures...): it exists
        return True
    if any(w.startswith(("[", "(")) or w == "..." or "|" in w for w in argv):  # a synopsis: its options must exist
        known = options_of(build_parser()) | options_of(subcommands()[command])
        missing = set(OPTION.findall(" ".join(argv))) - known
        assert not missing, f"{line}: no such option {sorted(missing)}"
        return True
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{line}: does not parse (exit {exc.code})")
    return True


def check_line(line: str) -> str | None:
    """What kind of command the line is, after checking it; None for a line that is none of ours."""
    try:
        argv = words(line)
    except ValueError:
        return None  # not a shell line (JSON, a table)
    if not argv:
        return None
    if argv[0].endswith("python") or argv[0].endswith("python3"):
        if argv[1:3] == ["-m", "dupcheck"]:
            return "dupcheck" if check_dupcheck(argv[3:], line) else None
        if len(argv) > 1 and argv[1].startswith("scripts/"):
            assert (ROOT / argv[1]).is_file(), f"{line}: no {argv[1]}"
            shown = set(OPTION.findall(" ".join(argv[2:])))
            missing = {o for o in shown if o not in script_help(argv[1])}
            assert not missing, f"{line}: {argv[1]} has no {sorted(missing)}"
            return "script"
    if argv[0] == "make":
        makefile = (ROOT / "Makefile").read_text()
        targets = set(re.findall(r"^([a-z]+):", makefile, re.M))
        named = {arg for arg in argv[1:] if "=" not in arg}
        assert named <= targets, f"{line}: no make target {named - targets}"
        # A variable given on the command line (`make synth CONTEXT=...`) is one the Makefile reads.
        for name in (arg.split("=", 1)[0] for arg in argv[1:] if "=" in arg):
            assert f"$({name})" in makefile, f"{line}: the Makefile does not read {name}"
        return "make"
    if "pip" in argv[0] and argv[1:2] == ["install"]:
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        for spec in argv[2:]:
            for extra in re.findall(r"\[([a-z,]+)\]", spec):
                assert set(extra.split(",")) <= set(extras), f"{line}: no extra {extra}"
        return "pip"
    return None


def test_every_documented_command_exists() -> None:
    checked: dict[str, int] = {}
    for name, line in command_lines():
        try:
            kind = check_line(line)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        if kind:
            checked[kind] = checked.get(kind, 0) + 1
    # The docs give dozens of commands; a parser that stopped finding them would pass vacuously.
    assert checked.get("dupcheck", 0) >= 20 and checked.get("make", 0) >= 4 and checked.get("script", 0) >= 5
    assert checked.get("pip", 0) >= 2, checked


@pytest.mark.parametrize(
    "line",
    [
        "python -m dupcheck backfill --catalog x.csv --no-such-flag",
        "python -m dupcheck [--data-dir DIR] reindex [--catalog FILE]",  # reindex has no catalog
        "python -m dupcheck nonsense",
        "make deploy",
        "python scripts/smoke_test.py --api-url U --api-key K --no-such-flag",
    ],
)
def test_a_wrong_command_is_caught(line: str) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        kind = check_line(line)
        assert kind is not None, "not recognised as a command"
