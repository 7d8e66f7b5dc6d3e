"""Garments photographed the same way, generated: the look-alikes a catalog is full of.

The same model (head, neck, arms, trousers), the same dark shirt silhouette, the same pose and
background, the same seams; a shirt has a zip with a stand-up collar, or a crew neck and a printed
ring on the chest. What only one photograph has is what one exposure leaves: where each fold
and edge fell to the pixel (no model stands twice to the pixel), the fabric's texture and the
grain, drawn from `shot`. So two photographs of the same scene (another
garment, the same garment again, the model's head and arms a few degrees elsewhere) agree at the
views' 32 px and in their outlines, and differ in that detail; a copy of one photograph keeps it.

    photograph("zip", shot=1)                  one photograph
    photograph("print", shot=2)                another garment in the same pose, another exposure
    photograph("zip", shot=3, pose=3.0)        the model moved a little, another exposure
    recoloured(photograph("zip", shot=1), RED) the same photograph, the shirt made red
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (480, 600)
DETAILS = ("zip", "print")
SHIRT = (45, 48, 55)
SKIN = (205, 160, 130)
TROUSERS = (70, 80, 110)
RED = (170, 40, 45)
GREY = (150, 152, 158)


def photograph(detail: str, *, shot: int, pose: float = 0.0, colour: tuple[int, int, int] = SHIRT,
               size: tuple[int, int] = SIZE) -> Image.Image:  # fmt: skip
    """One photograph (RGB) of a garment on the model; `pose` turns the head and the arms that
    many degrees about the neck and the shoulders; `shot` seeds the folds, texture and grain."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}")
    w, h = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(shot)
    # Where this exposure caught the scene: the model a few pixels elsewhere, each edge of the
    # drape a pixel or two off (about 1% of the picture, as no one stands twice to the pixel).
    shift = rng.normal(0, 0.006, 2)

    def at(*points: float, about: tuple[float, float] | None = None, turn: float = 0.0) -> list[tuple[float, float]]:
        xy = np.array([(x * w, y * h) for x, y in zip(points[::2], points[1::2], strict=True)])
        xy = xy + shift * (w, h) + rng.normal(0, 0.003 * w, xy.shape)
        if about is not None and turn:
            centre = np.array([about[0] * w, about[1] * h])
            angle = np.radians(turn)
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            xy = (xy - centre) @ rotation.T + centre
        return [(float(x), float(y)) for x, y in xy]

    neck = (0.50, 0.25)
    ((cx, cy),) = at(0.50, 0.13, about=neck, turn=pose)
    draw.ellipse((cx - 0.10 * w, cy - 0.09 * h, cx + 0.10 * w, cy + 0.09 * h), fill=SKIN)  # head
    draw.rectangle(at(0.46, 0.20, 0.54, 0.27), fill=SKIN)  # neck
    draw.polygon(at(0.78, 0.47, 0.86, 0.40, 0.90, 0.62, 0.83, 0.63, about=(0.80, 0.40), turn=-pose), fill=SKIN)
    draw.polygon(at(0.22, 0.47, 0.14, 0.40, 0.10, 0.62, 0.17, 0.63, about=(0.20, 0.40), turn=pose), fill=SKIN)
    draw.polygon(at(*_SHIRT), fill=colour)
    draw.rectangle(at(0.31, 0.70, 0.49, 0.98), fill=TROUSERS)
    draw.rectangle(at(0.51, 0.70, 0.69, 0.98), fill=TROUSERS)
    seam = tuple(min(255, c + 15) for c in colour)
    for x in (0.42, 0.58):  # seams both shirts have
        draw.line(at(x, 0.30, x, 0.66), fill=seam, width=2)
    light = (200, 200, 205)
    if detail == "zip":
        draw.rectangle(at(0.44, 0.24, 0.56, 0.29), fill=tuple(max(0, c - 10) for c in colour))  # stand-up collar
        draw.line(at(0.50, 0.26, 0.50, 0.66), fill=light, width=6)  # the zip
        draw.rectangle(at(0.49, 0.40, 0.51, 0.43), fill=(220, 220, 225))  # its puller
    else:
        draw.arc(at(0.44, 0.22, 0.56, 0.30), 0, 180, fill=tuple(min(255, c + 45) for c in colour), width=4)  # crew neck
        draw.ellipse(at(0.35, 0.34, 0.48, 0.46), outline=light, width=6)  # a printed ring
        draw.rectangle(at(0.39, 0.38, 0.44, 0.42), fill=light)  # and a dot in it
    pixels = np.asarray(image, dtype=np.float64)
    # Folds: smooth shading of everything but the background, which only this exposure has.
    folds = np.asarray(Image.fromarray(rng.normal(0, 1, (h // 24, w // 24)).astype(np.float32), mode="F")
                       .resize((w, h), Image.Resampling.BICUBIC))  # fmt: skip
    cloth = pixels.min(axis=-1, keepdims=True) < 250
    pixels = pixels * (1 + 0.10 * folds[..., None] * cloth)
    # Texture and grain: a weave a few pixels across, and the sensor's noise.
    weave = np.asarray(Image.fromarray(rng.normal(0, 1, (h // 3, w // 3)).astype(np.float32), mode="F")
                       .resize((w, h), Image.Resampling.BICUBIC))  # fmt: skip
    pixels = pixels + 6 * weave[..., None] * cloth + rng.normal(0, 3, (h, w, 1))
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return out.filter(ImageFilter.GaussianBlur(0.6))


_SHIRT = (0.30, 0.26, 0.70, 0.26, 0.86, 0.40, 0.78, 0.47, 0.70, 0.40, 0.70, 0.70, 0.30, 0.70,
          0.30, 0.40, 0.22, 0.47, 0.14, 0.40)  # fmt: skip


def shirt_outline(size: tuple[int, int] = SIZE) -> list[tuple[float, float]]:
    """The shirt's outline, as drawn before an exposure moved it (give it a margin)."""
    w, h = size
    return [(x * w, y * h) for x, y in zip(_SHIRT[::2], _SHIRT[1::2], strict=True)]


def recoloured(picture: Image.Image, colour: tuple[int, int, int], base: tuple[int, int, int] = SHIRT) -> Image.Image:
    """The same photograph with the shirt in another colour: its folds, texture and grain kept
    (each pixel's offset from the shirt's colour carried over), the rest untouched."""
    pixels = np.asarray(picture, dtype=np.float64)
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).polygon(shirt_outline(picture.size), fill=255)
    near = np.asarray(mask.filter(ImageFilter.MaxFilter(31)), dtype=bool)  # the outline, wherever the shot put it
    shirt_like = np.abs(pixels - np.array(base, dtype=np.float64)).max(axis=-1) < 40
    shirt = Image.fromarray(((near & shirt_like) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    inside = np.asarray(shirt, dtype=np.float64)[..., None] / 255
    offset = pixels - np.array(base, dtype=np.float64)
    shirt = np.array(colour, dtype=np.float64) + offset
    return Image.fromarray(np.clip(pixels * (1 - inside) + shirt * inside, 0, 255).astype(np.uint8))


def garment(detail: str, size: tuple[int, int] = SIZE) -> Image.Image:
    """A photograph of one garment, each from an exposure of its own."""
    return photograph(detail, shot=DETAILS.index(detail) + 1, size=size)


def hue_turned(tint: np.ndarray, degrees: float) -> np.ndarray:
    """Tints (..., 3: each pixel's offset from its own grey) turned `degrees` about the grey axis
    (Rodrigues' formula), as a shop nudges a garment's hue: each tint as strong as before."""
    axis, angle = np.ones(3) / np.sqrt(3), np.radians(degrees)
    along = (tint @ axis)[..., None] * axis
    return tint * np.cos(angle) + np.cross(axis, tint) * np.sin(angle) + along * (1 - np.cos(angle))
