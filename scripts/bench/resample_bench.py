"""A turned query's views resized by Pillow, one call a view, against core/resample.py's batch.

Verification's `views_of` makes each turned picture's views from its <= 80 px working copy and
the trimmed crop of it: luma (float32) to 32x32 and RGB to 16x16, BOX, four Pillow resizes a
picture. A turning step asks for the views of up to 4 turned pictures: 16 resizes. Here both
ways resize the same pictures (the bench photos' working copies, turned as verification turns
them, with their trim boxes, recorded as `views_of` receives them): Pillow's from the arrays as `views_of` does it (an Image of each
array, a crop of it, a resize, the result as an array), and `box_resized_float` and
`box_resized_rgb` with every view of a step in one call each. The two ways alternate step by
step, each timed in thread CPU time (BLAS limited to one thread, as the service runs it, so no
work hides in another thread); medians over all steps, and their ratio. Every result is checked
equal to Pillow's, bit for bit, before timing.

    .venv/bin/python scripts/bench/resample_bench.py [--rounds 40] [--images ../shared/bench/images]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambdas"))

from dupcheck.bootstrap import one_blas_thread  # noqa: E402
from dupcheck.core import verification  # noqa: E402
from dupcheck.core.hashing import get_pipeline  # noqa: E402
from dupcheck.core.pixels import luma, trim_box  # noqa: E402
from dupcheck.core.resample import box_resized_float, box_resized_rgb  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared" / "bench" / "images"
LUMA_SIDE, COLOUR_SIDE = 32, 16
TURN_ANGLES = (-5.1, -2.3, 2.9, 6.4)  # a step of the turning asks for up to 4 angles at once

Step = list[tuple[np.ndarray, tuple[int, int, int, int]]]


def steps_of(images: Path, limit: int) -> list[Step]:
    """Turning steps as verification makes them: each photo fingerprinted as a query, its probe
    turned by TURN_ANGLES in one `at_many` (as the turning's lockstep asks), and the pictures
    and trim boxes that `views_of` received recorded."""
    pipeline = get_pipeline()
    received: Step = []
    real_views_of = verification.views_of

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
        verification.views_of = recording
        try:
            probe.at_many(TURN_ANGLES)
        finally:
            verification.views_of = real_views_of
        steps.append(list(received))
    return steps


def with_pillow(step: Step) -> tuple[list[np.ndarray], list[np.ndarray]]:
    lumas, colours = [], []
    for rgb, (top, bottom, left, right) in step:
        trimmed = (left, top, right, bottom)
        gray = Image.fromarray(luma(rgb, np.float32), mode="F")
        picture = Image.fromarray(rgb)
        lumas += [
            np.asarray(view.resize((LUMA_SIDE, LUMA_SIDE), Image.Resampling.BOX), dtype=np.float32)
            for view in (gray, gray.crop(trimmed))
        ]
        colours += [
            np.asarray(view.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX), dtype=np.uint8)
            for view in (picture, picture.crop(trimmed))
        ]
    return lumas, colours


def with_numpy(step: Step) -> tuple[np.ndarray, np.ndarray]:
    planes, pictures = [], []
    for rgb, (top, bottom, left, right) in step:
        gray = luma(rgb, np.float32)
        planes += [gray, gray[top:bottom, left:right]]
        pictures += [rgb, rgb[top:bottom, left:right]]
    return box_resized_float(planes, LUMA_SIDE), box_resized_rgb(pictures, COLOUR_SIDE)


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
        lumas, colours = with_pillow(step)
        float_views, rgb_views = with_numpy(step)
        for expected, got in zip(lumas, float_views, strict=True):
            assert np.array_equal(expected.view(np.uint32), got.view(np.uint32)), "luma views differ from Pillow's"
        assert np.array_equal(np.stack(colours), rgb_views), "colour views differ from Pillow's"
    sizes = sorted({rgb.shape[:2] for step in steps for rgb, _ in step})
    print(f"{len(steps)} steps of {len(TURN_ANGLES)} turned pictures (sizes {sizes[0]}..{sizes[-1]}), all views equal")
    times: dict[str, list[float]] = {"pillow": [], "numpy": []}
    for round_ in range(args.rounds):
        for step in steps:
            # Alternate which way goes first, so that neither always runs on a warmed cache.
            order = [("pillow", with_pillow), ("numpy", with_numpy)]
            for name, function in order if round_ % 2 == 0 else order[::-1]:
                times[name].append(thread_us(function, step))
    pillow, numpy_ = statistics.median(times["pillow"]), statistics.median(times["numpy"])
    print(f"a turning step's views resized (median thread CPU over {len(times['numpy'])} steps):")
    print(f"  Pillow, 16 resizes: {pillow:.0f} us   numpy, 2 calls: {numpy_:.0f} us   ratio {pillow / numpy_:.2f}x")


if __name__ == "__main__":
    main()
