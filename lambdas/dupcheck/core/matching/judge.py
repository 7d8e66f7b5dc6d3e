"""A query's candidates judged: each one's verdict, match percentage and edits.

`judge_candidates` is the matching engine's one entry point: it judges a pipeline's candidates
the way the pipeline declares (judging.py). The index found them by hash distance. Verified
(`Verified`: the default pipeline's way), each becomes a `Judgement` in five steps:

1. the distance that counts is the closest half of any of the query's hashes (`_closest_halves`);
2. the stored views are read of the first `policy.screened` candidates and the `policy.by_part`
   the index adds by the whole-picture half (views.py);
3. each candidate's target: its views line up (policy.looked_near, looked_far, by distance) and
   the same-photograph test on the picture kept beside its record finds a duplicate
   (photograph.py); a record kept without its picture (dualphash128-v3, v2, or one whose picture
   cannot be read) is judged on its views alone (policy.near, far), as before the test;
4. `verify` (alignment.py) aligns the `policy.verified` most alike, turning the query when none
   passes, and asks the targets; when still none passes, the query is tried again trimmed
   otherwise (without a badge beside the product, or of the border an edit added:
   `Probe.retrimmed`), and the most alike candidate within `policy.close_look`
   bits is tested though its views missed the tiers (`_closely`);
5. the verdict (verdicts.py): a duplicate passed its target; `similar` is the same photograph in
   another colour, which only the test can show; anything else is different. A duplicate's or a
   similar match's edits are named (edits.py).

The baseline pipeline, which verifies nothing, is judged by distance alone (`ByDistance`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from functools import partial

import numpy as np

from dupcheck.core.limits.judging import ByDistance, Judged, Verified
from dupcheck.core.limits.policy import (
    PART_ALIKE,
    PART_CANDIDATES,
    PART_GAIN,
    PART_SHARE,
    WHOLE_WINDOW,
    Policy,
    Tier,
    ranked,
)
from dupcheck.core.matching.alignment import (
    Evidence,
    Target,
    best_parts,
    verify,
    verify_reversed,
    whole_reversed,
    whole_to_whole,
)
from dupcheck.core.matching.edits import (
    another_title,
    as_grey_copy,
    border_shares,
    catalog_is_the_copy,
    catalog_lost_colour,
    catalog_mark,
    catalog_written,
    inverse,
    name_edits,
    one_template,
    outer_border,
    retitled,
    summary,
)
from dupcheck.core.matching.marks import on_product
from dupcheck.core.matching.pasted import Pasted, outside_block
from dupcheck.core.matching.photograph import CandidateThumbnails, SamePhotograph
from dupcheck.core.matching.verdicts import Judgement, banded, match_percent, renamed, score, under_marks, verdict_for
from dupcheck.core.models import DEFAULT_MARKS, Edited, Fingerprint, HashRecord, HashValue, Marks, Match, Verdict
from dupcheck.core.stored.thumbnails import Thumbnail, own_picture, probe_of_kept
from dupcheck.core.stored.views import Probe, Views, stored_views

ThumbnailSource = Callable[[Sequence[str]], Mapping[str, bytes]]  # entity ids -> their thumbnails


def judge_candidates(
    pipeline: Judged,
    query: Fingerprint,
    candidates: Sequence[tuple[HashRecord, int]],
    thumbnails: ThumbnailSource | None = None,
    marks: Marks = DEFAULT_MARKS,
) -> list[Judgement]:
    """A judgement per (record, index distance), in the same order, judged as `pipeline`
    declares (its `judging`), a mark on the product read as the shop's `marks` says
    (`verdicts.under_marks`). `thumbnails` reads the thumbnails of the candidates the
    same-photograph test looks at (by entity_id); without it, verification reads views alone.
    Records that hold one picture (`_one_per_picture`) get one judgement, the picture's."""
    how = pipeline.judging
    if isinstance(how, ByDistance):
        return _by_distance(candidates, how)
    source = _ReadOnce(thumbnails) if thumbnails is not None else None
    # One picture stored in several records is judged once, and each record gets that judgement.
    pictures = _one_per_picture(candidates, source)
    firsts = sorted(set(pictures))
    judged = _by_verification(how, query, [candidates[i] for i in firsts], source)
    by_first = dict(zip(firsts, judged, strict=True))
    return [under_marks(by_first[first], marks) for first in pictures]


def as_match(record: HashRecord, judgement: Judgement) -> Match:
    """`record`'s judgement as a result lists it: the match percentage, the edits and their words,
    and which picture they edit (the query, or the catalog's where that is the copy)."""
    return Match(
        entity_id=record.entity_id, sku=record.sku, image_url=record.image_url, distance=judgement.distance,
        match_percent=match_percent(judgement.score), verdict=judgement.verdict, edits=judgement.edits,
        edit_summary=summary(judgement.edits, same_picture=judgement.verdict is Verdict.DUPLICATE,
                             of_catalog=judgement.reverse),
        edited=None if judgement.edits is None else Edited.CATALOG if judgement.reverse else Edited.QUERY,
    )  # fmt: skip


def _one_per_picture(candidates: Sequence[tuple[HashRecord, int]], source: ThumbnailSource | None) -> list[int]:
    """Per candidate, the first candidate holding the same picture at the same index distance:
    the same hash and views, and the same kept picture byte for byte (or neither keeping one).
    Judged apart, such records could get two verdicts for one pair: the caps on how many
    candidates a step looks at (the turn, the part, the look back) can reach one record of the
    picture and not the other. (The index distance sets a candidate's tier: one found farther,
    by another of the index's searches, needs the stronger evidence.)"""
    records = [record for record, _ in candidates]
    same_views: dict[tuple[str, HashValue, tuple[tuple[str, bytes], ...], int], list[int]] = {}
    for i, (record, distance) in enumerate(candidates):
        key = (record.hash_algo, record.hash, tuple(sorted(record.features.items())), distance)
        same_views.setdefault(key, []).append(i)
    out = list(range(len(records)))
    for members in same_views.values():
        if len(members) < 2:
            continue
        kept = source([records[i].entity_id for i in members]) if source is not None else {}
        first_with: dict[bytes | None, int] = {}
        for i in members:
            data = kept.get(records[i].entity_id) or None
            picture = data if data is not None and Thumbnail.made_for(data) == records[i].hash else None
            out[i] = first_with.setdefault(picture, i)
    return out


class _ReadOnce:
    """A thumbnail source that reads each entity's kept picture once (the candidates holding one
    picture are read to tell so, and the test then reads them again)."""

    def __init__(self, source: ThumbnailSource) -> None:
        self.source = source
        self._read: dict[str, bytes | None] = {}

    def __call__(self, entity_ids: Sequence[str]) -> Mapping[str, bytes]:
        wanted = [i for i in dict.fromkeys(entity_ids) if i not in self._read]
        if wanted:
            found = self.source(wanted)
            self._read.update((i, found.get(i) or None) for i in wanted)
        return {i: data for i in entity_ids if (data := self._read[i]) is not None}


def _by_verification(
    how: Verified,
    query: Fingerprint,
    candidates: Sequence[tuple[HashRecord, int]],
    thumbnails: ThumbnailSource | None,
) -> list[Judgement]:
    """The candidates verified (the steps in the module's docstring)."""
    policy = how.policy
    records = [record for record, _ in candidates]
    closest = _closest_halves(query, records)
    screened = records[: policy.screened + policy.by_part]
    stored = {i: views for i, views in enumerate(stored_views(screened, how.compact, how.raw)) if views is not None}
    probe = query.probe if isinstance(query.probe, Probe) else None
    kept = _LazyThumbnails(records, thumbnails) if thumbnails is not None and probe is not None else None
    # The catalog's own picture uploaded again: its kept picture the query's, pixel for pixel. A
    # duplicate with nothing to name, and no look needed.
    same = _same_pixels(query, records, stored, kept, probe)
    first = _Look(how, candidates, closest, kept, probe)
    for i in same:  # lined up as any other (the same candidates judged, no turn tried), never looked at
        first.targets[i] = _SAME_PIXELS
    evidence: dict[int, tuple[Evidence, _Look]] = {}
    if stored and probe is not None:
        evidence = {i: (e, first) for i, e in first.verified(stored).items()}
        if not any(first.target(i).passes(e) for i, (e, _) in evidence.items()) and not first.saw_photograph():
            # No candidate is this photograph as the query is trimmed: maybe it is as trimmed
            # otherwise (views.py, `Probe.retrimmed`): without a badge beside the product, which
            # its trim kept and the catalog picture's did not, only of the border an edit
            # added, or inside that border where a turn shows (a copy turned on a fill, then
            # padded). (One seen in another colour is not looked at again.)
            for other in probe.retrimmed():
                again = _Look(how, candidates, closest, kept, other)
                lined_up = {
                    i: (e, again) for i, e in again.verified(stored, whole=False).items() if again.target(i).passes(e)
                }
                evidence |= lined_up
                if lined_up:
                    break
    closely = _closely(first, evidence, closest, policy.close_look) if kept is not None else set()
    own_kept = _OwnPicture(query, probe) if probe is not None else None
    out = []
    for i, distance in enumerate(closest):
        if i in same:
            out.append(Judgement(distance, Verdict.DUPLICATE, banded(Verdict.DUPLICATE, 1.0), ()))
            continue
        seen, look = evidence.get(i, (None, first))
        # The record's own picture asked about again, as far as its views show (a mark too faint
        # for them may be there: the edits still say): no kept JPEG's colours can refute it.
        views = records[i].features.get("views")
        identical = views is not None and query.hash == records[i].hash and query.features.get("views") == views
        out.append(_judged(how, i, distance, seen, look, stored.get(i), kept, own_kept, identical=identical,
                           closely=i in closely))  # fmt: skip
    if kept is not None and probe is not None and own_kept is not None:
        turned = {i: e.alignment.angle for i, (e, _) in evidence.items() if e.alignment is not None}
        first_alike = {i: e.similarity for i, (e, _) in evidence.items()}
        marked = {i for i, (_, look) in evidence.items() if _marked_on_catalog(look, i, out[i])}
        back = _both_ways(how, query, probe, records, closest, stored, kept, own_kept, first, out, turned, first_alike,
                          marked)  # fmt: skip
        alike = {i: max(e.similarity, back[i].similarity if i in back else 0.0) for i, (e, _) in evidence.items()}
        alike |= {i: e.similarity for i, e in back.items() if i not in alike}
        alike = {i: a for i, a in alike.items() if not _seen_another(first, i)}
        _shared_part(how, probe, records, closest, stored, kept, own_kept, alike, out)
        _retitled(how, probe, closest, stored, kept, own_kept, evidence, out)
    return out


def _judged(
    how: Verified, i: int, distance: int, seen: Evidence | None, look: _Look, views: Views | None,
    kept: CandidateThumbnails | None, own: CandidateThumbnails | None, *, identical: bool = False,
    closely: bool = False,
) -> Judgement:  # fmt: skip
    """Candidate i's judgement from its evidence (`seen`, as `look` lined it up): a duplicate
    passed its target (or the close look), `similar` is the same photograph in another colour,
    anything else is different; a duplicate's or a similar match's edits named, and read the
    other way round where the pictures show the catalog picture to be the copy (`own`: the
    query's picture as a record would keep it)."""
    test = look.test
    # (Passing may look: the finding is read after.)
    passed = seen is not None and (look.target(i).passes(seen) or closely)
    finding = test.finding(i) if test is not None else None
    if identical or passed:
        verdict = Verdict.DUPLICATE
    elif finding is not None and finding.another_colour:
        verdict = Verdict.SIMILAR
    else:
        verdict = Verdict.DIFFERENT
    edits, reverse = None, False
    if seen is not None and views is not None and verdict is not Verdict.DIFFERENT:
        shown = look.probe  # the probe the evidence comes from
        assert shown is not None
        borders, theirs = border_shares(shown.picture(), shown.box), kept.of(i) if kept is not None else None
        edits = name_edits(seen, views, borders, finding, same_picture=verdict is Verdict.DUPLICATE, probe=shown,
                           kept=theirs)  # fmt: skip

        def own_picture() -> Thumbnail | None:  # (made only when a reading asks for it)
            return own.of(0) if own is not None else None

        if theirs is not None:
            their_borders = border_shares(theirs.rgb, theirs.box)
            mark = None
            if verdict is Verdict.DUPLICATE and not identical:
                off = seen.alignment
                apart = off is not None and bool(off.luma_off.any() or off.colour_off.any())
                mark = catalog_mark(edits, own_picture, theirs, borders, seen_apart=apart)
                if mark is None:  # a watermark's strokes on the catalog picture
                    mark = catalog_written(edits, finding, shown, theirs)
            if mark is not None:  # the badge lies on the catalog picture: the rest read back, the badge added
                rest = inverse([edit for edit in edits if edit.name != "overlay"])
                edits, reverse = ((*rest, mark), True) if rest is not None else (edits, False)
            elif catalog_is_the_copy(edits, borders, their_borders, lambda: outer_border(theirs)):
                back = inverse(edits)
                edits, reverse = (back, True) if back is not None else (edits, False)
        if verdict is Verdict.DUPLICATE and not identical and catalog_lost_colour(seen):
            edits, reverse = as_grey_copy(edits, reverse) or (edits, reverse)
        if verdict is Verdict.DUPLICATE and not identical and another_title(edits, own_picture, theirs):
            # Another title in the same template: another product, under either `marks`.
            verdict, edits = Verdict.SIMILAR, renamed(edits, "retitled")
    # On the same photograph compared pixel by pixel, whether what was added lies on the product:
    # what the shop's `marks` setting reads (verdicts.under_marks), looked at only when it asks.
    # Read where a mark was named, or where nothing was: a copy whose named edits (a tone, a crop,
    # a mirror) explain it has no mark to read.
    readable = not edits or any(edit.name == "overlay" for edit in edits)
    aligned = finding.aligned if verdict is Verdict.DUPLICATE and finding is not None and readable else None
    left = finding.unexplained if verdict is Verdict.DUPLICATE and finding is not None else None
    differing = None if left is None else left.differing
    return Judgement(distance, verdict, score(verdict, seen, distance, how.bits, identical=identical,
                                              differing=differing), edits, reverse,
                     judged=identical or seen is not None,
                     on_product=None if aligned is None else partial(on_product, aligned))  # fmt: skip


_RANKED = (Verdict.DIFFERENT, Verdict.SIMILAR, Verdict.DUPLICATE)  # worst first


def _both_ways(
    how: Verified, query: Fingerprint, probe: Probe, records: Sequence[HashRecord], closest: Sequence[int],
    stored: Mapping[int, Views], kept: _LazyThumbnails, own_kept: _OwnPicture, first: _Look,
    out: list[Judgement], turned: Mapping[int, float], alike: Mapping[int, float], marked: Collection[int] = (),
) -> dict[int, Evidence]:  # fmt: skip
    """Each candidate not yet settled (`_settled`) judged the other way round too, in place: its kept
    picture as the query, the query as the catalog picture. A pair is what its better way says; a
    duplicate whose marks lie on the catalog picture (`marked`) keeps its judgement, its edits
    read as that way reads them where it is a duplicate there too (from the original to the copy).
    Only where the views show that this way can say more: the candidate lines up with a part
    of the query (it shows less of the photograph: a crop, padding or a frame the query lacks
    taken off), or the test looked without settling it (`_undecided`). A candidate the query
    was turned for (`turned`: the angle its evidence lines up at) is screened against the query
    turned so, and judged turning."""
    if probe.upright is None and not query.features.get("views"):
        return {}
    test = first.test
    open_ = [i for i in stored if (not _settled(out[i]) or i in marked) and records[i].hash_algo in how.keeps
             and not _seen_another(first, i)]  # fmt: skip
    found: dict[int, Evidence] = {}
    for angle in sorted({turned.get(i, 0.0) for i in open_}):
        at = [i for i in open_ if turned.get(i, 0.0) == angle]
        screened = verify_reversed(probe.views_at(angle), [stored[i] for i in at], how.policy.verified_back)
        found |= {i: e for i, e in zip(at, screened, strict=True) if e is not None}
    # A duplicate marked on the catalog picture is one photograph already: looked at whatever its views.
    worth = [i for i in open_ if i in marked or (i in found and _worth_a_look_back(
        how.policy, found[i], alike.get(i, 0.0), undecided=test is not None and _undecided(test, i)))]  # fmt: skip
    # The nearest by hash screened whole to whole too, as the first way round judges it
    # (`_Look._whole_to_whole`): a band across the flat catalog copy pulls its screening to a crop.
    nearest = min(open_, key=lambda i: closest[i], default=None)
    if nearest is not None and nearest not in worth:
        whole = whole_reversed(probe.views_at(0.0), stored[nearest])
        pasted = outside_block(whole)
        if pasted is not None and pasted.across and how.policy.looked_back.passes(pasted.rest):
            found[nearest] = whole
            worth.append(nearest)
    if not worth:
        return found
    mine = probe.views_at(0.0)
    own = HashRecord(entity_id="", sku="", image_url="", hash=query.hash, hash_algo=query.algo, features=query.features)
    for i in worth:
        theirs = kept.of(i)
        if theirs is None:
            continue
        asked = probe_of_kept(stored[i], theirs)
        look = _Look(how, [(own, closest[i])], [closest[i]], own_kept, asked)
        # Upright unless the query was turned for it (turning each, it found 1 more of 60 large crops).
        seen = look.verified({0: mine}, turn=bool(turned.get(i))).get(0)
        judged = _judged(how, 0, closest[i], seen, look, mine, own_kept, _Kept(theirs))
        # Its edits turn the query into the candidate: the candidate is the copy, unless that
        # way's own reading already turned them round (the query padded, say).
        if _RANKED.index(judged.verdict) > _RANKED.index(out[i].verdict):
            out[i] = replace(judged, reverse=not judged.reverse)
        elif i in marked and judged.verdict is Verdict.DUPLICATE:  # the same judgement, its edits read that way
            out[i] = replace(out[i], edits=judged.edits, reverse=not judged.reverse)
    return found


def _shared_part(
    how: Verified, probe: Probe, records: Sequence[HashRecord], closest: Sequence[int], stored: Mapping[int, Views],
    kept: _LazyThumbnails, own_kept: _OwnPicture, alike: Mapping[int, float], out: list[Judgement],
) -> None:  # fmt: skip
    """Candidates still not settled whose views are alike either way (`alike`: the better
    correlation), judged once more with the query cut to a part it may share with them, in
    place: two copies that each lost another side (a crop from the left, one from the top)
    share all of either but a strip of PART_SHARE at most, and without it the query is a crop
    of the catalog picture. Judged so, the pair is read as a first look reads it (`own_kept`:
    the query's picture as a record keeps it, where a mark on the catalog picture or another
    title is read from)."""
    open_ = [
        i for i, a in alike.items() if a >= PART_ALIKE and not _settled(out[i]) and records[i].hash_algo in how.keeps
    ]
    near = sorted(open_, key=lambda i: -ranked(alike[i]))[:PART_CANDIDATES]  # fmt: skip
    if not near:
        return
    candidates = list(zip(records, closest, strict=True))
    for i, side in zip(near, best_parts(_views_of(probe), [stored[i] for i in near], PART_SHARE), strict=True):
        part = probe.without(side, PART_SHARE)
        if part is None:
            continue
        look = _Look(how, candidates, closest, kept, part)
        found = look.verified({i: stored[i]}, turn=False, whole=False).get(i)
        # Only where the part lines up better than the whole query either way (by PART_GAIN), and
        # passes the strict views: a look-alike lines up about as well cut or not.
        if found is None or found.similarity < alike[i] + PART_GAIN or not how.policy.looked_back.passes(found):
            continue
        if look.target(i).passes(found):
            out[i] = _judged(how, i, closest[i], found, look, stored[i], kept, own_kept)


def _retitled(
    how: Verified, probe: Probe, closest: Sequence[int], stored: Mapping[int, Views], kept: _LazyThumbnails,
    own_kept: _OwnPicture, evidence: Mapping[int, tuple[Evidence, _Look]], out: list[Judgement],
) -> None:  # fmt: skip
    """The candidates still judged different read once more as two covers of one template, in
    place: a flat cover's title is its only detail, so the views' search and the test compare
    two titles and see two pictures, and its hash is the title's too (the cover often not the
    nearest). Those whose whole views agree but for a title's share (edits.one_template) are
    read from the kept pictures (edits.retitled)."""
    mine = _views_of(probe)
    for i, views in stored.items():
        if out[i].verdict is not Verdict.DIFFERENT or not one_template(mine, views) or not kept.has(i):
            continue
        edit = retitled(own_kept.of(0), kept.of(i))
        if edit is not None:
            seen = evidence[i][0] if i in evidence else None
            distance = closest[i]
            out[i] = Judgement(distance, Verdict.SIMILAR, score(Verdict.SIMILAR, seen, distance, how.bits), (edit,),
                               judged=True)  # fmt: skip


def _settled(judgement: Judgement) -> bool:
    """Whether a candidate's judgement is settled, no other way of judging it looked at: a
    duplicate, or another title in the same template (the two kept pictures compared pixel for
    pixel: another way round or a part of them only shows the same pictures less closely)."""
    return judgement.verdict is Verdict.DUPLICATE or any(edit.name == "retitled" for edit in judgement.edits or ())


def _views_of(probe: Probe) -> Views:
    """The probe's upright views (a query's, made with it)."""
    assert probe.upright is not None
    return probe.upright


def _marked_on_catalog(look: _Look, i: int, judgement: Judgement) -> bool:
    """Whether a duplicate's edits are read as the query's while all it found added lies on the
    catalog picture (`Unexplained.on_kept`: an outline only the catalog picture has): a badge on
    the catalog's copy asked about with its original, which a tone the badge moved keeps
    `edits.catalog_mark` from reading so."""
    if judgement.verdict is not Verdict.DUPLICATE or judgement.reverse or look.test is None:
        return False
    finding = look.test.finding(i)
    left = finding.unexplained if finding is not None else None
    return left is not None and left.on_kept > 0 and left.on_kept >= left.added


def _seen_another(look: _Look, i: int) -> bool:
    """Whether the query's own look at candidate i found another photograph: its detail compared
    and not shared. (The other ways look where the query's views could not line a part up, which
    the query's own look then never was: docs/lab/evaluation.md, "Both ways".) Not where the
    views lined up but for a block on the catalog picture (a band on its copy, `Tested`): the
    test reads that block's detail as the photograph's, which the other way round does not."""
    finding = look.test.finding(i) if look.test is not None else None
    target = look.target(i)
    blocked = isinstance(target, Tested) and target.block_on_catalog
    return finding is not None and finding.telling and not finding.same_photograph and not blocked


def _worth_a_look_back(policy: Policy, back: Evidence, forth: float, *, undecided: bool) -> bool:
    """Whether a candidate screened the other way round (`back`: its views as the query's) is
    looked at so: where it lines up with a part of the query (it shows less of the photograph)
    or the first look left it undecided, and its views pass `looked_back`; or, lining up with a
    part, pass `looked_part` and line up better than the query's own screening did (`forth`,
    its similarity) by PART_GAIN: a crop of the query gains by being the query, a look-alike
    lines up as well either way; or, neither, where its views differ in one pasted block on the
    candidate's picture and the rest passes `looked_back` (pasted.py: a caption band on the
    catalog's copy)."""
    part = _a_part(back)
    if not (part or undecided):
        pasted = outside_block(back)
        return pasted is not None and pasted.on_query and policy.looked_back.passes(pasted.rest)
    gains = part and policy.looked_part.passes(back) and back.similarity >= forth + PART_GAIN
    return policy.looked_back.passes(back) or gains


def _a_part(evidence: Evidence) -> bool:
    """Whether the evidence lines its candidate up with a part of the query's view, not all of it."""
    alignment = evidence.alignment
    return alignment is not None and min(alignment.rows[1], alignment.cols[1]) < WHOLE_WINDOW


def _undecided(test: SamePhotograph, i: int) -> bool:
    """Whether the test looked at candidate i without settling the pair: it found its photograph
    but not a duplicate, with regions one edit cannot explain that are not a recolour of the
    photograph's own detail (a badge the catalog picture has and the query lacks reads so; the
    other way it is added on top), or the pictures held too little detail to tell and the views
    decided."""
    finding = test.finding(i)
    if finding is None:
        return False
    return (finding.same_photograph and not finding.recolour_lined_up) or not finding.telling


class _Kept:
    """One candidate's kept picture, already read, as photograph.CandidateThumbnails (a check
    the other way round: the picture asked about)."""

    def __init__(self, picture: Thumbnail) -> None:
        self.picture = picture

    def has(self, i: int) -> bool:
        return True

    def of(self, i: int) -> Thumbnail | None:
        return self.picture


class _OwnPicture:
    """The query's picture as a record of it would keep it (photograph.CandidateThumbnails of one
    candidate, the query as the catalog's picture), made when first looked at."""

    def __init__(self, query: Fingerprint, probe: Probe) -> None:
        self.query, self.probe = query, probe
        self._read: Thumbnail | None = None

    def has(self, i: int) -> bool:
        return True

    def of(self, i: int) -> Thumbnail | None:
        if self._read is None:
            data = self.query.thumbnail or own_picture(self.query.hash, self.probe)
            self._read = Thumbnail.decode(data)
        return self._read


def _same_pixels(
    query: Fingerprint, records: Sequence[HashRecord], stored: Mapping[int, Views],
    kept: _LazyThumbnails | None, probe: Probe | None,
) -> set[int]:  # fmt: skip
    """The candidates whose kept picture is the one a record of the query would keep, pixel for
    pixel, trim box too: the same picture at the kept size, where no edit can hide. Looked for
    only among those whose hash and views are the query's (the same picture at the views' size),
    before any look reduces the query's decoded picture (what a record keeps is made from it)."""
    views = query.features.get("views")
    alike = [i for i in stored if views is not None and records[i].hash == query.hash
             and records[i].features.get("views") == views]  # fmt: skip
    if not alike or kept is None or probe is None:
        return set()
    mine = Thumbnail.decode(query.thumbnail or own_picture(query.hash, probe))
    if mine is None:
        return set()
    return {i for i in alike if (theirs := kept.of(i)) is not None and theirs.box == mine.box
            and np.array_equal(theirs.rgb, mine.rgb)}  # fmt: skip


def _closely(
    first: _Look, evidence: Mapping[int, tuple[Evidence, _Look]], closest: Sequence[int], within: int
) -> set[int]:
    """When no candidate passed and the test saw none of them to be this photograph: the one
    candidate whose hash lies within `within` bits and whose views are the most alike, tested
    at the views' alignment though they missed the tiers (a copy turned or brightened past what
    the 32 px views line up); when the test finds it a duplicate, it and every other candidate
    as close that the test finds one (their indices)."""
    if (
        first.test is None
        or first.saw_photograph()
        or any(look.target(i).passes(e) for i, (e, look) in evidence.items())
    ):
        return set()
    near = [i for i, (e, _) in evidence.items() if closest[i] <= within and e.alignment is not None]
    if not near:
        return set()
    test = first.test

    def duplicate(i: int) -> bool:
        alignment = evidence[i][0].alignment
        assert alignment is not None and test is not None
        found = test.look(i, alignment) if test.kept(i) else None
        return found is not None and found.telling and test.duplicate(i, found)

    best = max(near, key=lambda i: ranked(evidence[i][0].similarity))
    if not duplicate(best):
        return set()
    # The others as close tested too: the same photograph kept twice is close to the query twice.
    return {best} | {i for i in near if i != best and duplicate(i)}


class _Look:
    """One probe's verification of the candidates: its same-photograph test and each candidate's
    target (a Tested one where the record keeps a picture; each probe's test caches its looks)."""

    def __init__(self, how: Verified, candidates: Sequence[tuple[HashRecord, int]], closest: Sequence[int],
                 kept: CandidateThumbnails | None, probe: Probe | None) -> None:  # fmt: skip
        self.policy, self.probe, self.closest = how.policy, probe, closest
        self.test = SamePhotograph(probe, kept) if kept is not None and probe is not None else None
        self.targets: list[Target] = [
            Tested(self.policy.looked(distance), self.policy.tier(distance), self.test, i)
            if self.test is not None and record.hash_algo in how.keeps
            else self.policy.tier(distance)
            for i, (record, distance) in enumerate(candidates)
        ]

    def target(self, i: int) -> Target:
        return self.targets[i]

    def verified(self, stored: Mapping[int, Views], *, turn: bool = True, whole: bool = True) -> dict[int, Evidence]:
        """Each stored candidate's evidence, as this probe lines it up (none: no evidence;
        `turn`: turned when none passes upright; `whole`: the nearest lined up whole to whole
        too, `_whole_to_whole`)."""
        assert self.probe is not None
        targets = [self.targets[i] for i in stored]
        ids = list(stored)
        # Nearest by the distance judged, the closest half of any query hash: a turn's fill
        # corners move the whole 128 bits more than the closer half.
        nearest = min(range(len(ids)), key=lambda k: self.closest[ids[k]], default=None)  # (the first of the nearest)
        found = verify(self.probe, list(stored.values()), targets, self.policy.verified, _NO_COLOUR_SHOWN, nearest,
                       turn=turn)  # fmt: skip
        if whole and nearest is not None:
            found[nearest] = self._whole_to_whole(found[nearest], stored[ids[nearest]], targets[nearest])
        return {i: e for i, e in zip(stored, found, strict=True) if e is not None}

    def _whole_to_whole(self, seen: Evidence | None, views: Views, target: Target) -> Evidence | None:
        """The nearest by hash that passed nowhere (`seen`: where verification left it) lined up
        once more whole to whole, kept where it passes there with its views differing in a
        block across the picture: a caption band across a flat cover pulls the views' search
        to a crop that leaves it out, where nothing else lines up either."""
        if seen is None or seen.alignment is None or target.passes(seen):
            return seen
        assert self.probe is not None
        whole = whole_to_whole(self.probe.at(0.0), views)
        pasted = outside_block(whole)
        return whole if pasted is not None and pasted.across and target.passes(whole) else seen

    def saw_photograph(self) -> bool:
        """Whether the test found any candidate the same photograph (in any colour)."""
        if self.test is None:
            return False
        return any(f is not None and f.same_photograph for f in map(self.test.finding, range(len(self.targets))))


def _no_colour_shown(evidence: Evidence) -> bool:
    """No view's colour reaches the caller beyond the targets' verdicts: a similar match's colour
    is the same-photograph test's (so the costly brightened colours are tried only where a
    views-only tier can pass on them)."""
    return False


_NO_COLOUR_SHOWN = _no_colour_shown


class Tested:
    """A candidate's target (duck-typed as a Tier: alignment.py's `Target`): its views line up
    (`looked`) and the same-photograph test finds a duplicate; when its kept picture cannot be
    read (not kept, a store that failed) or holds too little detail to tell photographs apart,
    its views alone decide (`views_only`)."""

    def __init__(self, looked: Tier, views_only: Tier, test: SamePhotograph, candidate: int) -> None:
        self.looked, self.views_only, self.test, self.candidate = looked, views_only, test, candidate
        # Each evidence's rest without its pasted block, measured once (a turn asks again and again).
        self._without_block: dict[int, tuple[Evidence, Pasted | None]] = {}
        # Whether the views lined up but for a block on the catalog picture (`looked` without it).
        self.block_on_catalog = False

    def passes(self, evidence: Evidence) -> bool:
        if evidence.alignment is None:
            return False
        lined_up = self.looked.passes(evidence)
        # Views that differ in one pasted block (a caption band) are looked at where the rest
        # lines up (pasted.py); only the look can pass them.
        pasted = None if lined_up else self._outside_block(evidence)
        if not lined_up:
            # A block on the catalog picture only where it crosses the picture (a band on the
            # catalog's copy): a look-alike's differing region reads as one there too often.
            on_catalog = pasted is not None and not pasted.on_query
            if pasted is None or (on_catalog and not pasted.across) or not self.looked.passes(pasted.rest):
                return False
            if not self.test.kept(self.candidate):
                return False
            self.block_on_catalog |= on_catalog
        if not self.test.kept(self.candidate):
            return self.views_only.passes(evidence)
        found = self.test.look(self.candidate, evidence.alignment)
        if found is None or not found.telling:
            # Nothing in the pictures only one photograph has (a patch too small, a plain
            # render): no finer look can tell them apart, so the views decide, as without one,
            # or outside a band pasted across the whole picture (an overlay wherever it lies).
            if pasted is None:
                return self.views_only.passes(evidence)
            return pasted.across and self.views_only.passes(pasted.rest)
        return self.test.duplicate(self.candidate, found)

    def _outside_block(self, evidence: Evidence) -> Pasted | None:
        key = id(evidence)
        if key not in self._without_block:  # (the evidence kept with it: its id stays its own)
            self._without_block[key] = (evidence, outside_block(evidence))
        return self._without_block[key][1]

    def open_on_colour(self, evidence: Evidence) -> bool:
        # Whether the views' colour can decide: only for the views-only fallback, a record whose
        # picture cannot be read, which is not worth a read of the store to find out.
        return False

    @property
    def max_colour_off(self) -> float:
        return self.looked.max_colour_off

    @property
    def judges_detail(self) -> bool:
        return self.test.kept(self.candidate)

    @property
    def found_photograph(self) -> bool:
        finding = self.test.finding(self.candidate)
        return finding is not None and finding.same_photograph


class _SamePixels:
    """The target of a candidate whose kept picture is the query's, pixel for pixel
    (`_same_pixels`): passed wherever its views line up, with no look."""

    judges_detail = True
    found_photograph = True
    max_colour_off = 1.0  # (the views' colour decides nothing here)

    def passes(self, evidence: Evidence) -> bool:
        return evidence.alignment is not None

    def open_on_colour(self, evidence: Evidence) -> bool:
        return False


_SAME_PIXELS = _SamePixels()


class _LazyThumbnails:
    """The candidates' thumbnails (photograph.CandidateThumbnails), each read once, and only when
    the test asks for it; each decoded only when the test looks at it (`has` reads the header alone)."""

    def __init__(self, records: Sequence[HashRecord], source: ThumbnailSource) -> None:
        self.records, self.source = records, source
        self._bytes: dict[int, bytes | None] = {}
        self._read: dict[int, Thumbnail | None] = {}

    def has(self, i: int) -> bool:
        """Whether candidate i's record keeps a picture made for it (not one left by another
        version of the record, by a write that raced this one's)."""
        data = self._stored(i)
        return data is not None and Thumbnail.made_for(data) == self.records[i].hash

    def of(self, i: int) -> Thumbnail | None:
        """Candidate i's kept picture, or None when there is none or it cannot be read."""
        if i not in self._read:
            data = self._stored(i) if self.has(i) else None
            self._read[i] = Thumbnail.decode(data) if data is not None else None
        return self._read[i]

    def _stored(self, i: int) -> bytes | None:
        if i not in self._bytes:
            entity_id = self.records[i].entity_id
            self._bytes[i] = self.source([entity_id]).get(entity_id) or None
        return self._bytes[i]


def _by_distance(candidates: Sequence[tuple[HashRecord, int]], how: ByDistance) -> list[Judgement]:
    """The baseline's judgements, on hash distance alone: the verdict by `verdict_for`, the
    score by how close the distance lies within its verdict's range (1 at its closest)."""
    duplicate_max, similar_max, bits = how.duplicate_max, how.similar_max, how.bits
    ranges = {
        Verdict.DUPLICATE: (duplicate_max, -1),
        Verdict.SIMILAR: (similar_max, duplicate_max),
        Verdict.DIFFERENT: (bits, similar_max),
    }
    out = []
    for _, distance in candidates:
        verdict = verdict_for(distance, duplicate_max=duplicate_max, similar_max=similar_max)
        farthest, before = ranges[verdict]
        out.append(Judgement(distance, verdict, banded(verdict, (farthest + 1 - distance) / (farthest - before))))
    return out


def _closest_halves(query: Fingerprint, candidates: Sequence[HashRecord]) -> list[int]:
    """Per candidate, the bits (of 64) between it and the closest half of any query hash. The
    query's halves are cut once, and every half is compared as an int (HashValue's subtraction
    per pair of halves was 0.6 ms of a query: 32 candidates x 4 hashes x 2 halves)."""
    mine = [_ints(q) for q in query.search_hashes]
    out = []
    for candidate in candidates:
        if candidate.hash.bits != query.hash.bits:
            raise ValueError(f"hash lengths differ: {candidate.hash.bits} vs {query.hash.bits} bits")
        stored = _ints(candidate.hash)
        out.append(min((part ^ half).bit_count() for halves in mine for part, half in zip(stored, halves, strict=True)))
    return out


def _ints(hash_value: HashValue) -> tuple[int, int]:
    first, second = hash_value.parts(2)
    return int.from_bytes(first.data, "big"), int.from_bytes(second.data, "big")
