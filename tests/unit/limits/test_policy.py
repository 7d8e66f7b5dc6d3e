"""policy.py is the one place a limit is decided: the algorithm modules keep no numbers of their
own at module level, and the tiers pick by distance as the judge does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dupcheck.core.limits import policy

ENGINE = Path(policy.__file__).parent
# Formats and arithmetic, not choices (policy.py's docstring says why they stay there).
ALLOWED = {
    "views_codec.py": {"STEPS", "CHROMA_OFFSET", "_LEVEL", "_LUMA_BYTES", "_CHROMA_BYTES"},
    "thumbnails.py": {"_MAGIC", "_HEADER"},
    "views.py": {"WHOLE", "_RAW_BYTES"},
    "affine.py": {"_RIDGE"},
    "marks.py": {"_TERMS", "_RIDGE"},
    "one_edit.py": {"_QUANTILES"},
}


@pytest.mark.parametrize(
    "module", sorted(p.name for p in ENGINE.glob("*.py") if p.name not in ("policy.py", "__init__.py"))
)
def test_no_algorithm_module_keeps_a_number_of_its_own(module: str) -> None:
    tree = ast.parse((ENGINE / module).read_text())
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
