"""Verdicts and match percentages: the bands, what each verdict needs, the order they give a result."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageEnhance

from dupcheck.bootstrap import build_service
from dupcheck.core.fingerprint.hashing import PHash64
from dupcheck.core.limits.policy import LAYOUT_BITS
from dupcheck.core.matching.alignment import Evidence
from dupcheck.core.matching.edits import summary
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.matching.verdicts import (
    BANDS,
    Judgement,
    agreement,
    likeness,
    match_percent,
    score,
    under_marks,
)
from dupcheck.core.models import Edit, HashRecord, Marks, Verdict
from dupcheck.core.settings import Settings
from dupcheck_tools.samples import encode, product_image
from support.fakes import FakeFetcher

RANDOM = np.random.default_rng(17)


def random_evidence() -> Evidence:
    return Evidence(
        similarity=float(RANDOM.uniform(-0.2, 1.0)), luma_off=float(RANDOM.uniform(0, 1)),
        colour_off=float(RANDOM.uniform(0, 1)), layout_off=int(RANDOM.integers(0, LAYOUT_BITS + 1)),
        colour_missing=float(RANDOM.uniform(0, 1)),
    )  # fmt: skip


@pytest.mark.parametrize("trial", range(200))
def test_every_score_stays_in_its_verdicts_band_once_rounded(trial: int) -> None:
    evidence = random_evidence() if trial % 4 else None
    distance = int(RANDOM.integers(0, 65))
    for verdict, (low, high) in BANDS.items():
        shown = match_percent(score(verdict, evidence, distance, 64))
        assert low <= shown <= high
        if verdict is not Verdict.DUPLICATE:
            assert shown < high  # never reaches the band above, even rounded


def test_the_bands_put_every_duplicate_above_every_similar_above_every_different() -> None:
    worst_duplicate = match_percent(score(Verdict.DUPLICATE, Evidence(0.0, 1.0, 1.0, LAYOUT_BITS), 64, 64))
    best_similar = match_percent(score(Verdict.SIMILAR, Evidence(1.0, 0.0, 0.0), 0, 64))
    worst_similar = match_percent(score(Verdict.SIMILAR, Evidence(0.0, 1.0, 1.0, LAYOUT_BITS), 64, 64))
    best_different = match_percent(score(Verdict.DIFFERENT, Evidence(1.0, 0.0, 0.0), 0, 64))
    assert worst_duplicate > best_similar >= worst_similar > best_different
    assert match_percent(score(Verdict.DUPLICATE, Evidence(1.0, 0.0, 0.0), 0, 64)) == 100.0  # nothing changed


def test_a_duplicate_scores_lower_the_more_of_it_differs() -> None:
    clean, badged = Evidence(0.99, 0.0, 0.0, 2), Evidence(0.99, 0.05, 0.01, 2)
    turned = Evidence(0.95, 0.0, 0.0, 6)
    assert agreement(clean) > agreement(badged) and agreement(clean) > agreement(turned)
    assert score(Verdict.DUPLICATE, clean, 0, 64) > score(Verdict.DUPLICATE, badged, 0, 64)


def test_what_the_test_leaves_unexplained_lowers_a_duplicate_within_its_band() -> None:
    """Of two catalog pictures of one photograph, the one the query differs from less (a print on
    the other, beside the query's badge) scores higher: the share of the subject one edit of the
    whole picture leaves unexplained, on either picture, is taken off the agreement."""
    evidence = Evidence(0.99, 0.0, 0.0, 2)
    low, high = BANDS[Verdict.DUPLICATE]
    scores = [score(Verdict.DUPLICATE, evidence, 0, 64, differing=d) for d in (0.0, 0.02, 0.05, 1.0, 3.0)]
    assert scores == sorted(scores, reverse=True) and scores[1] > scores[2]
    assert all(low <= s <= high for s in scores) and scores[-1] == scores[-2] == low
    assert score(Verdict.DUPLICATE, evidence, 0, 64, differing=0.5, identical=True) == high  # the same pixels


def test_what_the_test_finds_differing_orders_duplicates_before_the_views() -> None:
    """Where the kept pictures were compared, a record the query differs from in fewer cells
    scores higher though its views agree less (they blur a mark into another record's print);
    the views still order records the test finds equally far, and alone decide where it compared
    no colours (None)."""
    blurred, clear = Evidence(0.99, 0.02, 0.01, 1), Evidence(0.99, 0.0, 0.0, 0)
    dup = Verdict.DUPLICATE
    assert score(dup, blurred, 0, 64, differing=0.0) > score(dup, clear, 0, 64, differing=0.01)
    assert score(dup, clear, 0, 64, differing=0.01) > score(dup, blurred, 0, 64, differing=0.01)
    assert score(dup, blurred, 0, 64) < score(dup, clear, 0, 64) < 100.0
    assert match_percent(score(dup, clear, 0, 64, differing=0.0)) < 100.0  # kept for nothing differing


def test_likeness_grows_with_the_aligned_correlation_and_with_closer_hashes() -> None:
    assert likeness(Evidence(0.9, 0.1, 0.5), 10, 64) > likeness(Evidence(0.7, 0.1, 0.5), 10, 64)
    assert likeness(Evidence(0.9, 0.1, 0.5), 4, 64) > likeness(Evidence(0.9, 0.1, 0.5), 20, 64)
    assert likeness(None, 0, 64) < likeness(Evidence(0.5, 0.0, 0.0), 0, 64)  # nothing verified counts less


def test_only_the_same_pixels_score_100() -> None:
    """A duplicate scores by how much agrees once aligned; 100 is kept for the record's own pixels."""
    edited = Evidence(0.99, 0.0, 0.0, 0)
    assert match_percent(score(Verdict.DUPLICATE, edited, 0, 64)) < 100.0
    assert match_percent(score(Verdict.DUPLICATE, edited, 0, 64, identical=True)) == 100.0
    assert match_percent(score(Verdict.SIMILAR, edited, 0, 64, identical=True)) < 90.0  # only a duplicate


def test_the_baseline_scores_by_distance_within_the_same_bands() -> None:
    pipeline = PHash64()
    fp = pipeline.fingerprint(product_image(7))
    record = HashRecord("E", "", "", fp.hash, pipeline.algo)
    judgements = judge_candidates(pipeline, fp, [(record, d) for d in range(65)])
    scores = [j.score for j in judgements]
    assert scores == sorted(scores, reverse=True)  # closer hashes, higher percentage
    for judgement in judgements:
        low, high = BANDS[judgement.verdict]
        assert low <= judgement.score <= high
    assert judgements[0].score == 100.0


# -- a result, through the service -----------------------------------------------------------------


def test_a_result_lists_the_copy_then_the_colour_variant_then_the_rest_in_non_increasing_percent(
    settings: Settings,
) -> None:
    images = {f"https://img.test/{i}.jpg": encode(product_image(400 + i)) for i in range(8)}
    images["https://img.test/variant.jpg"] = encode(product_image(403, hue=0.55))
    service = build_service(settings, fetcher=FakeFetcher(images))
    for url in images:
        service.registrar.register(url.rsplit("/", 1)[1].split(".")[0], "", url)
    copy = encode(ImageEnhance.Brightness(product_image(403).resize((300, 240))).enhance(1.1), "JPEG", quality=70)
    matches = service.lookups.find_similar_bytes(copy, top=9).matches
    assert [(m.entity_id, m.verdict) for m in matches[:2]] == [("3", Verdict.DUPLICATE), ("variant", Verdict.SIMILAR)]
    assert all(m.verdict is Verdict.DIFFERENT for m in matches[2:])
    percents = [m.match_percent for m in matches]
    assert percents == sorted(percents, reverse=True)
    assert percents[0] >= 90 > percents[1] >= 60 > percents[2]


def test_an_unrelated_picture_has_only_different_matches(settings: Settings) -> None:
    """The demo's "distinct" query: unrelated products are not `similar` because they hash close."""
    images = {f"https://img.test/{i}.jpg": encode(product_image(100 + i)) for i in range(12)}
    service = build_service(settings, fetcher=FakeFetcher(images))
    for i in range(12):
        service.registrar.register(f"E{i}", "", f"https://img.test/{i}.jpg")
    matches = service.lookups.find_similar_bytes(encode(product_image(999)), top=12).matches
    assert len(matches) == 12 and {m.verdict for m in matches} == {Verdict.DIFFERENT}
    assert all(m.edits is None and m.edit_summary is None for m in matches)
    assert max(m.match_percent for m in matches) < 60


def _marked(on_product: bool | None, score: float = 97.0) -> Judgement:
    edits = (Edit("mirrored"), Edit("overlay", {"where": "centre", "share": 0.02}))
    return Judgement(3, Verdict.DUPLICATE, score, edits, on_product=lambda: on_product)


@pytest.mark.parametrize("score", [90.0, 95.5, 99.9])
def test_a_mark_on_the_product_is_another_print_only_where_the_shop_says_so(score: float) -> None:
    as_photo = under_marks(_marked(True, score), Marks.PHOTO)
    assert as_photo == _marked(True, score)  # (compared without the look: the verdict, score and edits)
    printed = under_marks(_marked(True, score), Marks.PRODUCT)
    low, high = BANDS[Verdict.SIMILAR]
    assert printed.verdict is Verdict.SIMILAR and low <= printed.score < high
    assert [e.name for e in printed.edits or ()] == ["mirrored", "printed"]
    assert summary(printed.edits, same_picture=False) == "mirrored and another print on the same photo (centre)"
    # A better-matching duplicate stays the better-matching similar picture.
    assert under_marks(_marked(True, score + 0.05), Marks.PRODUCT).score > printed.score


@pytest.mark.parametrize("on_product", [False, None])
def test_a_mark_off_the_product_or_undecided_stays_a_duplicate_under_either_setting(on_product: bool | None) -> None:
    for marks in Marks:
        judged = under_marks(_marked(on_product), marks)
        assert (judged.verdict, judged.score) == (Verdict.DUPLICATE, 97.0)
    assert under_marks(_marked(on_product), Marks.PHOTO) == _marked(on_product)


def test_an_undecided_mark_says_so_where_the_shop_sells_prints() -> None:
    """No plain backdrop tells where the product ends: a duplicate still, its mark named as either."""
    judged = under_marks(_marked(None), Marks.PRODUCT)
    assert [e.name for e in judged.edits or ()] == ["mirrored", "marked"]
    assert (
        summary(judged.edits, same_picture=True) == "mirrored and a mark on the product: a print or an overlay (centre)"
    )
    assert under_marks(_marked(False), Marks.PRODUCT) == _marked(False)  # an overlay off the product: as before
