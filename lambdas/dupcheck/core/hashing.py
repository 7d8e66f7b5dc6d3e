"""Image bytes -> decoded, normalised image -> fingerprint, through exactly one pipeline.

A pipeline is named by `algo` (stored on every record as `hash_algo`): the same name always
means the same decode, normalisation and hash, so an indexed hash is only ever compared with
a query hash from the same code. Changing any step means a new name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import imagehash
from PIL import Image

from dupcheck.core.imaging import decode_image
from dupcheck.core.matching import Verdict, verdict_for
from dupcheck.core.models import Fingerprint, HashRecord, HashValue


@dataclass(frozen=True, slots=True)
class Judgement:
    """A candidate's verdict; `distance` is the Hamming distance reported to the caller."""

    distance: int
    verdict: Verdict


class HashPipeline(Protocol):
    algo: str
    bits: int

    def fingerprint(self, image: Image.Image) -> Fingerprint: ...

    def fingerprint_bytes(self, data: bytes, *, max_pixels: int) -> Fingerprint: ...

    def candidate_pool(self, top: int) -> int:
        """How many index candidates to fetch so that `top` survive verification."""
        ...

    def judge(self, query: Fingerprint, candidate: HashRecord, distance: int) -> Judgement: ...


class PHash64:
    """Plain 64-bit DCT pHash (imagehash) of the whole image: the baseline pipeline."""

    algo = "phash64-v1"
    bits = 64
    # JPEG decodes at the smallest DCT scale that keeps >= 256 px: pHash looks at 32x32.
    draft_size = 256
    # Calibrated on ../shared/bench (docs/evaluation.md): distinct product shots on white
    # often lie within 10 bits, so only <= 4 is called a duplicate.
    duplicate_max = 4
    similar_max = 12

    def fingerprint(self, image: Image.Image) -> Fingerprint:
        value = HashValue.from_hex(str(imagehash.phash(image, hash_size=8)))
        return Fingerprint(algo=self.algo, hash=value)

    def fingerprint_bytes(self, data: bytes, *, max_pixels: int) -> Fingerprint:
        return self.fingerprint(decode_image(data, max_pixels=max_pixels, draft_size=self.draft_size))

    def candidate_pool(self, top: int) -> int:
        return top

    def judge(self, query: Fingerprint, candidate: HashRecord, distance: int) -> Judgement:
        return Judgement(
            distance,
            verdict_for(distance, duplicate_max=self.duplicate_max, similar_max=self.similar_max),
        )


PIPELINES: dict[str, type[HashPipeline]] = {PHash64.algo: PHash64}
DEFAULT_ALGO = PHash64.algo


def get_pipeline(algo: str = DEFAULT_ALGO) -> HashPipeline:
    try:
        return PIPELINES[algo]()
    except KeyError:
        raise ValueError(f"unknown hash pipeline {algo!r}; known: {', '.join(PIPELINES)}") from None
