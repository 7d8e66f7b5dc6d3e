"""Seeded synthetic product photos: a demo catalog and test images without shipping any files.

Each seed gives a different "product" (a textured shape on a white background), so distinct
seeds are distinct pictures while a transformed copy of one stays a duplicate of it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def product_image(seed: int, size: tuple[int, int] = (480, 480), hue: float | None = None) -> Image.Image:
    """A product-like RGB image. `hue` (0..1) recolours the same product: a colour variant."""
    rng = np.random.default_rng(seed)
    width, height = size
    texture = _texture(rng, size)
    if hue is not None:
        h, s, v = texture.convert("HSV").split()
        h = Image.new("L", size, int(hue * 255) % 256)
        s = s.point(lambda x: max(x, 150))
        texture = Image.merge("HSV", (h, s, v)).convert("RGB")
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    margin_x, margin_y = int(width * rng.uniform(0.08, 0.2)), int(height * rng.uniform(0.08, 0.2))
    box = (margin_x, margin_y, width - margin_x, height - margin_y)
    shape = int(rng.integers(0, 3))
    if shape == 0:
        draw.ellipse(box, fill=255)
    elif shape == 1:
        draw.rounded_rectangle(box, radius=int(min(width, height) * 0.08), fill=255)
    else:
        points = [(float(rng.uniform(box[0], box[2])), float(rng.uniform(box[1], box[3]))) for _ in range(7)]
        draw.polygon(points, fill=255)
        draw.ellipse((box[0] + width // 6, box[1] + height // 6, box[2] - width // 6, box[3] - height // 6), fill=255)
    _patches(rng, texture)
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(texture, mask=mask.filter(ImageFilter.GaussianBlur(1.5)))
    return canvas


def scene_image(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A photo-like scene: texture and patches to every edge, no plain border (a crop of it cuts
    off part of the picture, where a crop of `product_image` may cut its white margin only)."""
    rng = np.random.default_rng(seed)
    texture = _texture(rng, size, cells=9)
    _patches(rng, texture, count=int(rng.integers(8, 14)))
    # Fine grain, as a photograph's detail: what tells one photograph from another shot alike.
    grain = rng.normal(0.0, 18.0, (size[1] // 2, size[0] // 2, 1))
    fine = Image.fromarray(np.clip(grain + 128, 0, 255).astype(np.uint8)[:, :, 0], "L").resize(
        size, Image.Resampling.BICUBIC
    )
    detail = np.asarray(fine, dtype=np.float64)[:, :, None] - 128
    return Image.fromarray(np.clip(np.asarray(texture, dtype=np.float64) + detail, 0, 255).astype(np.uint8), "RGB")


def _texture(rng: np.random.Generator, size: tuple[int, int], cells: int = 5) -> Image.Image:
    """Low-frequency texture: a small random grid blown up smoothly, so perceptual hashes differ."""
    grid = rng.random((cells, cells, 3)) * 255
    return Image.fromarray(grid.astype(np.uint8), "RGB").resize(size, Image.Resampling.BICUBIC)


def _patches(rng: np.random.Generator, texture: Image.Image, count: int | None = None) -> None:
    """Stripes and patches, like prints on a garment, drawn on `texture`."""
    width, height = texture.size
    for _ in range(int(rng.integers(2, 6)) if count is None else count):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.uniform(20, width / 2), y0 + rng.uniform(10, height / 3)
        ImageDraw.Draw(texture).rectangle((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" and not options else options))
    return buffer.getvalue()
