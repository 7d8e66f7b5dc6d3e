"""Two different garments photographed the same way, generated: the look-alike a catalog is full of.

The same model (head, neck, arms, trousers), the same dark shirt silhouette, the same pose and
background, the same seams; what tells the two shirts apart is a small detail: a zip down the
front with a stand-up collar, or a crew neck with a printed ring on the chest. At the 32x32 of
the stored views the two are the same picture; at the 64x64 of the look-alike check they are not.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (480, 600)
DETAILS = ("zip", "print")


def garment(detail: str, size: tuple[int, int] = SIZE) -> Image.Image:
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}")
    w, h = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    skin, shirt, light = (205, 160, 130), (45, 48, 55), (200, 200, 205)

    def at(*points: float) -> list[tuple[float, float]]:
        return [(x * w, y * h) for x, y in zip(points[::2], points[1::2], strict=True)]

    draw.ellipse(at(0.40, 0.04, 0.60, 0.22), fill=skin)  # head
    draw.rectangle(at(0.46, 0.20, 0.54, 0.27), fill=skin)  # neck
    draw.polygon(at(0.30, 0.26, 0.70, 0.26, 0.86, 0.40, 0.78, 0.47, 0.70, 0.40, 0.70, 0.70, 0.30, 0.70,
                    0.30, 0.40, 0.22, 0.47, 0.14, 0.40), fill=shirt)  # fmt: skip
    draw.polygon(at(0.78, 0.47, 0.86, 0.40, 0.90, 0.62, 0.83, 0.63), fill=skin)  # arms
    draw.polygon(at(0.22, 0.47, 0.14, 0.40, 0.10, 0.62, 0.17, 0.63), fill=skin)
    draw.rectangle(at(0.31, 0.70, 0.49, 0.98), fill=(70, 80, 110))  # trousers
    draw.rectangle(at(0.51, 0.70, 0.69, 0.98), fill=(70, 80, 110))
    for x in (0.42, 0.58):  # seams both shirts have
        draw.line(at(x, 0.30, x, 0.66), fill=(60, 63, 70), width=2)
    if detail == "zip":
        draw.rectangle(at(0.44, 0.24, 0.56, 0.29), fill=(35, 37, 42))  # stand-up collar
        draw.line(at(0.50, 0.26, 0.50, 0.66), fill=light, width=6)  # the zip
        draw.rectangle(at(0.49, 0.40, 0.51, 0.43), fill=(220, 220, 225))  # its puller
    else:
        draw.arc(at(0.44, 0.22, 0.56, 0.30), 0, 180, fill=(90, 95, 105), width=4)  # crew neck
        draw.ellipse(at(0.35, 0.34, 0.48, 0.46), outline=light, width=6)  # a printed ring
        draw.rectangle(at(0.39, 0.38, 0.44, 0.42), fill=light)  # and a dot in it
    # Fabric grain and a photo's softness: not a flat drawing (the same grain on both shirts).
    grain = np.random.default_rng(3).normal(0, 4, (h, w, 1))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(0.8))
