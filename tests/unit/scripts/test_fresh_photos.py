"""scripts/fresh_photos.py: another store's sample photos, the pinned package's only."""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from dupcheck_tools.samples import encode, product_image
from support.scripts import load_script


def tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_each_sample_photo_becomes_an_upright_original_of_at_most_1024_px(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script("fresh_photos.py")
    big, small = product_image(3, (1600, 1200)), product_image(4, (300, 400))
    turned = io.BytesIO()  # stored sideways, with the EXIF tag that turns it upright
    exif = Image.Exif()
    exif[0x0112] = 6
    small.rotate(90, expand=True).save(turned, "JPEG", exif=exif)
    package = tarball(tmp_path / "package.tgz", {
        "package/assets/images/b-unsplash.jpg": encode(big),
        "package/assets/images/a-unsplash.jpg": turned.getvalue(),
        "package/assets/images/readme.txt": b"not a photo",
        "package/assets/other/c.jpg": encode(small),
    })  # fmt: skip
    monkeypatch.setattr(script, "PACKAGE_SHA256", hashlib.sha256(package.read_bytes()).hexdigest())
    out = tmp_path / "out"
    assert script.main(["--tarball", str(package), "--out", str(out)]) == 0
    with (out / "sources.csv").open(newline="") as fh:
        assert list(csv.DictReader(fh)) == [
            {"file": "vendure_0001.jpg", "asset": "a-unsplash.jpg"},
            {"file": "vendure_0002.jpg", "asset": "b-unsplash.jpg"},
        ]
    with Image.open(out / "vendure_0001.jpg") as first, Image.open(out / "vendure_0002.jpg") as second:
        assert first.size == (300, 400) and second.size == (1024, 768)
        assert first.format == second.format == "JPEG"


def test_another_package_is_refused(tmp_path: Path) -> None:
    package = tarball(tmp_path / "other.tgz", {"package/assets/images/a.jpg": encode(product_image(5, (64, 64)))})
    with pytest.raises(SystemExit, match="not the pinned package"):
        load_script("fresh_photos.py").main(["--tarball", str(package), "--out", str(tmp_path / "out")])
    assert not list((tmp_path / "out").glob("*.jpg"))
