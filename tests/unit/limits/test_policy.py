"""policy.py is the one place a limit is decided: the algorithm modules keep no numbers of their
own at module level, and the tiers pick by distance as the judge does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dupcheck.core.limits import policy

CORE = Path(policy.__file__).parents[1]
# The algorithm modules: the matching engine, what a record stores, the judging a pipeline names,
# and the array helpers they share.
MODULES = sorted(
    [p for room in ("matching", "stored", "limits") for p in (CORE / room).glob("*.py")
     if p.name not in ("policy.py", "__init__.py")] + [CORE / "pictures" / "arrays.py"]
)  # fmt: skip
# Formats and arithmetic, not choices (policy.py's docstring says why they stay there).
ALLOWED = {
    "views_codec.py": {"STEPS", "CHROMA_OFFSET", "_LEVEL", "_LUMA_BYTES", "_CHROMA_BYTES"},
    "thumbnails.py": {"_MAGIC", "_HEADER", "READ_SIDE"},  # READ_SIDE: a bound on decoding one
    "views.py": {"WHOLE", "_RAW_BYTES"},
    "affine.py": {"_RIDGE"},
    "marks.py": {"_TERMS", "_RIDGE"},
    "one_edit.py": {"_QUANTILES"},
}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_algorithm_module_keeps_a_number_of_its_own(path: Path) -> None:
    module = path.name
    tree = ast.parse(path.read_text())
    numbered = set()
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        if value is None or not any(
            isinstance(n, ast.Constant) and type(n.value) in (int, float) for n in ast.walk(value)
        ):
            continue
        numbered |= {t.id for t in targets if isinstance(t, ast.Name)}
    assert numbered <= ALLOWED.get(module, set())


def test_the_tier_is_near_up_to_the_close_distance() -> None:
    tiers = policy.ALIGNED_DUAL_PHASH
    assert tiers.tier(tiers.close_distance) is tiers.near and tiers.tier(tiers.close_distance + 1) is tiers.far
