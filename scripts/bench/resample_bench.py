"""A turned query's views resized by Pillow, one call a view, against numpy_resize.py's batch.

Verification's `views_of` makes each turned picture's views from its <= 80 px working copy and
the trimmed crop of it: luma (float32) to 32x32 and RGB to 16x16, BOX, four Pillow resizes a
picture. A turning step asks for the views of up to 4 turned pictures: 16 resizes. Both ways
here resize the same pictures: the bench photos fingerprinted as queries and turned by
`Probe.at_many`, with the pictures and trim boxes `views_of` received recorded. Pillow's way is
`views_of`'s (an Image of each array, a crop of it, a resize, the result as an array);
`box_resized_float` and `box_resized_rgb` take every view of a step in one call each. The luma
planes are computed beforehand (`views_of` computes them once whichever way resizes). The two
ways alternate step by step (which goes first swapped every round), each timed in thread CPU
time with BLAS limited to one thread, as the service runs it (no work hidden in another
thread); medians over all steps, and their ratio; the luma and colour halves are timed apart
too. Every result is checked equal to Pillow's, bit for bit, before timing.

    .venv/bin/python scripts/bench/resample_bench.py [--photos 50] [--rounds 40] [--images DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from dupcheck.bootstrap import one_blas_thread
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.pictures.pixels import luma, trim_box
from dupcheck.core.stored import views
from scripts.bench.numpy_resize import box_resized_float, box_resized_rgb
from scripts.helpers.places import BENCH_IMAGES

SHARED = BENCH_IMAGES
LUMA_SIDE, COLOUR_SIDE = 32, 16
TURN_ANGLES = (-5.1, -2.3, 2.9, 6.4)  # a step of the turning asks for up to 4 angles at once

View = tuple[np.ndarray, tuple[int, int, int, int]]  # a turned picture and its trim box


class Step(NamedTuple):
    """A turning step's pictures, and the luma of each (computed once by `views_of` whichever
    way it resizes: not part of what is timed)."""

    views: list[View]
    lumas: list[np.ndarray]


def steps_of(images: Path, limit: int) -> list[Step]:
    """Turning steps as verification makes them: each photo fingerprinted as a query, its probe
    turned by TURN_ANGLES in one `at_many` (as the turning's lockstep asks), and the pictures
    and trim boxes that `views_of` received recorded."""
    pipeline = get_pipeline()
    received: list[View] = []
    real_views_of = views.views_of

    def recording(rgb: np.ndarray, box: tuple[int, int, int, int] | None = None, picture: Image.Image | None = None):
        received.append((rgb.copy(), box if box is not None else trim_box(rgb)))
        return real_views_of(rgb, box, picture)

    steps: list[Step] = []
    paths = sorted(p for p in images.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    for path in paths[:limit]:
        with Image.open(path) as opened:
            probe = pipeline.fingerprint(opened).probe
        assert probe is not None
        received.clear()
        views.views_of = recording
        try:
            probe.at_many(TURN_ANGLES)
        finally:
            views.views_of = real_views_of
        steps.append(Step(list(received), [luma(rgb, np.float32) for rgb, _ in received]))
    return steps


def pillow_lumas(step: Step) -> list[np.ndarray]:
    lumas = []
    for (_, (top, bottom, left, right)), plane in zip(step.views, step.lumas, strict=True):
        gray = Image.fromarray(plane, mode="F")
        lumas += [
            np.asarray(view.resize((LUMA_SIDE, LUMA_SIDE), Image.Resampling.BOX), dtype=np.float32)
            for view in (gray, gray.crop((left, top, right, bottom)))
        ]
    return lumas


def pillow_colours(step: Step) -> list[np.ndarray]:
    colours = []
    for rgb, (top, bottom, left, right) in step.views:
        picture = Image.fromarray(rgb)
        colours += [
            np.asarray(view.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX), dtype=np.uint8)
            for view in (picture, picture.crop((left, top, right, bottom)))
        ]
    return colours


def numpy_lumas(step: Step) -> np.ndarray:
    planes = []
    for (_, (top, bottom, left, right)), plane in zip(step.views, step.lumas, strict=True):
        planes += [plane, plane[top:bottom, left:right]]
    return box_resized_float(planes, LUMA_SIDE)


def numpy_colours(step: Step) -> np.ndarray:
    pictures = []
    for rgb, (top, bottom, left, right) in step.views:
        pictures += [rgb, rgb[top:bottom, left:right]]
    return box_resized_rgb(pictures, COLOUR_SIDE)


WAYS: dict[str, Callable[[Step], object]] = {
    "pillow luma": pillow_lumas, "numpy luma": numpy_lumas,
    "pillow colour": pillow_colours, "numpy colour": numpy_colours,
}  # fmt: skip


def thread_us(function: Callable[[Step], object], step: Step) -> float:
    started = time.thread_time_ns()
    function(step)
    return (time.thread_time_ns() - started) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--photos", type=int, default=50, help="turning steps: one a photo")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    one_blas_thread()
    steps = steps_of(args.images, args.photos)
    for step in steps:
        for expected, got in zip(pillow_lumas(step), numpy_lumas(step), strict=True):
            assert np.array_equal(expected.view(np.uint32), got.view(np.uint32)), "luma views differ from Pillow's"
        assert np.array_equal(np.stack(pillow_colours(step)), numpy_colours(step)), "colour views differ from Pillow's"
    sizes = sorted({rgb.shape[:2] for step in steps for rgb, _ in step.views})
    print(f"{len(steps)} steps of {len(TURN_ANGLES)} turned pictures ({sizes[0]}..{sizes[-1]} px), all views equal")
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    ways = list(WAYS.items())
    for round_ in range(args.rounds):
        for step in steps:
            # Pillow's and numpy's ways alternate, which goes first swapped every round.
            for name, function in ways if round_ % 2 == 0 else ways[::-1]:
                times[name].append(thread_us(function, step))
    step_times = {
        way: [a + b for a, b in zip(times[f"{way} luma"], times[f"{way} colour"], strict=True)]
        for way in ("pillow", "numpy")
    }
    print(f"a turning step's views resized, median thread CPU over {len(step_times['numpy'])} steps:")
    for label, pillow, numpy_ in [
        ("whole step (16 resizes)", step_times["pillow"], step_times["numpy"]),
        ("luma to 32 (8 resizes)", times["pillow luma"], times["numpy luma"]),
        ("colour to 16 (8 resizes)", times["pillow colour"], times["numpy colour"]),
    ]:
        a, b = statistics.median(pillow), statistics.median(numpy_)
        print(f"  {label:26s} Pillow {a:6.0f} us   numpy {b:6.0f} us   {a / b:.2f}x")


if __name__ == "__main__":
    main()
