"""scripts/pair_picture.py: the figure of a pair as the same-photograph test judges it."""

from __future__ import annotations

from pathlib import Path

from PIL import ImageEnhance

from support.garments import photograph
from support.scripts import load_script


def test_a_copy_and_another_photograph_are_drawn_with_their_verdicts(tmp_path: Path) -> None:
    script = load_script("pair_picture.py")
    catalog, copy, other = tmp_path / "zip.jpg", tmp_path / "copy.jpg", tmp_path / "other.jpg"
    photograph("zip", shot=1).save(catalog, quality=90)
    ImageEnhance.Brightness(photograph("zip", shot=1)).enhance(1.15).save(copy, quality=85)
    photograph("print", shot=2).save(other, quality=90)  # another garment, the same model and pose
    figure, lines = script.render(copy, catalog, "a copy")
    assert "verdict: duplicate" in lines[-2] and figure.width >= 5 * script.PANEL
    _, lines = script.render(other, catalog, "another photograph")
    assert "verdict: different" in lines[-2] and "median tile correlation" in lines[3]
    assert script.main([str(other), str(catalog), "--out", str(tmp_path / "pair.png")]) == 0
    assert (tmp_path / "pair.png").stat().st_size > 0
