"""The duplicate report's grouping: each group the kept record and its duplicates, related pairs beside
it, the keep rule and its reason, pairs and their words."""

from __future__ import annotations

import random

from dupcheck.core.models import Edit
from dupcheck_tools.duplicates.grouping import Pair, group_duplicates, keep_order
from dupcheck_tools.duplicates.originals import Looks
from dupcheck_tools.duplicates.workfile import Found, Listing


def listing(entity_id: str, updated_at: str = "2026-01-01T00:00:00.000Z") -> Listing:
    return Listing(entity_id, f"SKU-{entity_id}", f"https://cdn.example/{entity_id}.jpg", updated_at)


def found(
    query: int, candidate: int, distance: int = 2, score: float = 97.0, edits: tuple[Edit, ...] | None = ()
) -> Found:
    return Found(query, candidate, distance, score, edits)


CROPPED = Edit("cropped", {"left": 0.1, "right": 0.0, "top": 0.0, "bottom": 0.0})
PADDED = Edit("padded", {"left": 0.1, "right": 0.0, "top": 0.0, "bottom": 0.0})
MIRRORED = Edit("mirrored")
GRAYSCALE = Edit("grayscale")
PHOTO = Looks(colour=True, size=(288, 384), borders=(0.0, 0.0, 0.0, 0.0))  # a scene to its edges
GREY = Looks(colour=False, size=(288, 384), borders=(0.0, 0.0, 0.0, 0.0))


LISTINGS = {i: listing(name) for i, name in enumerate("ABCDEFG")}


def ids(groups: list) -> list[list[str]]:  # noqa: ANN001
    return [[item.entity_id for item in group.items] for group in groups]


def related(group) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(p.a, p.b) for p in group.related]


def test_a_group_is_the_kept_record_and_its_duplicates_largest_first() -> None:
    # B, C and F were each called the same picture as A (either direction): one group, A kept.
    groups = group_duplicates([found(0, 1), found(2, 0), found(3, 4), found(0, 5), found(2, 1)], LISTINGS, 64)
    assert ids(groups) == [["A", "B", "C", "F"], ["D", "E"]]
    assert [(p.a, p.b) for p in groups[0].pairs] == [("A", "B"), ("A", "C"), ("A", "F"), ("B", "C")]
    assert groups[0].related == () and groups[1].related == ()


def test_a_record_linked_only_through_another_is_related_not_grouped() -> None:
    # A-B and B-C, A and C never called the same picture: C is not a duplicate of the record
    # kept, so it is shown beside the group, not in it (and a chain goes no further).
    groups = group_duplicates([found(0, 1), found(2, 1), found(3, 2)], LISTINGS, 64)
    assert ids(groups) == [["A", "B"], ["C", "D"]]
    assert related(groups[0]) == [("B", "C")]
    assert related(groups[1]) == [("C", "B")]
    assert groups[0].to_dict()["related"][0]["b"] == "C"


def test_one_wrong_link_does_not_merge_two_groups() -> None:
    # {A, B, C} and {D, E, F}: one link C-D between them (a look-alike called the same picture)
    # stays that one pair: it does not put 3 x 3 wrong pairs into one group of six.
    links = [found(1, 0), found(2, 0), found(1, 2), found(4, 3), found(5, 3), found(4, 5), found(2, 3)]
    groups = group_duplicates(links, LISTINGS, 64)
    assert ids(groups) == [["A", "B", "C"], ["D", "E", "F"]]
    assert related(groups[0]) == [("C", "D")] and related(groups[1]) == [("D", "C")]
    assert ("C", "D") not in {(p.a, p.b) for g in groups for p in g.pairs}


def kept_pairs(groups: list) -> set[frozenset[str]]:  # noqa: ANN001
    """The pairs a group asks a person to act on: the record kept and each other record."""
    return {frozenset((g.keep.entity_id, item.entity_id)) for g in groups for item in g.items[1:]}


def test_a_colour_variant_called_a_duplicate_of_a_catalog_picture_is_one_wrong_pair() -> None:
    # A, the catalog picture (the oldest), and B, its edited copy; C, a colour variant of A,
    # wrongly called the same picture as A; D, the other colour, called the same picture as C
    # (the variants are each other's closest). Connected components made one group of four: C
    # and D "duplicates" of A and B, five wrong pairs from two wrong calls.
    links = [found(1, 0, distance=3), found(2, 0, distance=2), found(3, 2, distance=1)]
    groups = group_duplicates(links, LISTINGS, 64)
    wrong_calls = {frozenset("AC"), frozenset("CD")}
    # The variants' pair (closest) is grouped first; C is then no duplicate of every record of
    # A's group, nor A of C's: A-C stays beside both groups. Two wrong calls, one wrong pair to
    # act on (keep C, remove D), and A's group untouched.
    assert ids(groups) == [["A", "B"], ["C", "D"]] and related(groups[0]) == [("A", "C")]
    assert kept_pairs(groups) & wrong_calls == {frozenset("CD")}
    assert kept_pairs(groups) == {frozenset("AB"), frozenset("CD")}


def test_a_variant_older_than_the_picture_it_was_wrongly_called_does_not_take_its_copies() -> None:
    # item-1 (a colour variant, created first: the smallest id, the one KEEP_RULE keeps) wrongly
    # called the same picture as item-2, closest of all; item-2's edited copy item-3 is a duplicate
    # of item-2 only. The group is item-1's, with item-2 (one wrong pair); item-3 is not pulled in
    # after item-2 (it is not item-1's duplicate): the right pair item-2 - item-3 stays beside it.
    listings = {0: listing("item-2", "2026-02-01T00:00:00Z"), 1: listing("item-3", "2026-03-01T00:00:00Z"),
                2: listing("item-1", "2026-01-01T00:00:00Z")}  # fmt: skip
    groups = group_duplicates([found(2, 0, distance=1), found(1, 0, distance=4)], listings, 64)
    assert ids(groups) == [["item-1", "item-2"]] and related(groups[0]) == [("item-2", "item-3")]
    assert kept_pairs(groups) == {frozenset({"item-1", "item-2"})}


def test_every_pair_to_act_on_is_a_call_so_wrong_calls_bound_wrong_pairs() -> None:
    """Over many random catalogs of pictures and their copies with wrong calls sprinkled in: every
    record of a group was called the same picture as the one kept, so the wrong pairs a report
    asks a person to act on are never more than the wrong calls (components spread them). The
    pictures show some copies to be edits (grey copies of coloured originals, registered in any
    order under any ids): no group keeps a record another of its records is shown to be the
    original of, and a group holding an original keeps it, or a record of another picture wrongly
    called the same (each such group is one of the wrong calls)."""
    rng = random.Random(68)
    for _ in range(300):
        count = rng.randint(3, 12)
        picture = [rng.randrange(4) for _ in range(count)]  # which picture each record holds
        original = {p: next((i for i in range(count) if picture[i] == p), None) for p in range(4)}
        listings = {i: listing(f"r{i:02d}", f"2026-01-{rng.randint(1, 28):02d}T00:00:00Z") for i in range(count)}
        # Originals have colour; a copy is grey (an edit the pictures show) or not (one they do not).
        shown = rng.random() < 0.5  # in half the catalogs every copy is shown to be one
        looks = {i: PHOTO if original[picture[i]] == i or not (shown or rng.random() < 0.5) else GREY
                 for i in range(count)}  # fmt: skip
        links, calls = [], set()
        for a in range(count):
            for b in range(count):
                same = picture[a] == picture[b]
                if a != b and rng.random() < (0.6 if same else 0.08):
                    links.append(found(a, b, distance=rng.randint(0, 12), score=rng.uniform(90, 100)))
                    calls.add(frozenset((listings[a].entity_id, listings[b].entity_id)))
        groups = group_duplicates(links, listings, 64, looks)
        assert kept_pairs(groups) <= calls
        wrong = {pair for pair in kept_pairs(groups) if len({picture[int(e[1:])] for e in pair}) == 2}
        assert wrong <= {c for c in calls if len({picture[int(e[1:])] for e in c}) == 2}  # each one wrong call
        assert all(len(g.items) == len({i.entity_id for i in g.items}) for g in groups)
        grouped = [i.entity_id for g in groups for i in g.items]
        assert len(grouped) == len(set(grouped))  # a record is in one group at most
        at = {listings[i].entity_id: i for i in listings}
        for g in groups:
            keep = at[g.keep.entity_id]
            # The one kept is no record the pictures show to be a copy of another of the group.
            assert not any(looks[keep] is GREY and looks[at[i.entity_id]] is PHOTO and
                           frozenset((g.keep.entity_id, i.entity_id)) in calls for i in g.items[1:])  # fmt: skip
            held = [at[i.entity_id] for i in g.items if original[picture[at[i.entity_id]]] == at[i.entity_id]]
            if shown and held and keep not in held:
                assert picture[keep] not in {picture[o] for o in held}  # another picture, wrongly called
                assert any(frozenset((g.keep.entity_id, listings[o].entity_id)) in wrong for o in held)


def test_a_record_alike_two_kept_records_joins_the_closer() -> None:
    # E is called the same picture as A (14 bits apart) and as D (3 bits apart): it joins D's
    # group (the closest pairs are grouped first) and is related to A's.
    links = [found(1, 0, distance=2), found(4, 0, distance=14, score=91.0), found(4, 3, distance=3)]
    groups = group_duplicates(links, LISTINGS, 64)
    assert ids(groups) == [["A", "B"], ["D", "E"]]
    assert related(groups[0]) == [("A", "E")]


def test_a_record_is_never_its_own_duplicate() -> None:
    assert group_duplicates([found(0, 0), found(3, 3)], LISTINGS, 64) == []
    groups = group_duplicates([found(0, 0), found(0, 1)], LISTINGS, 64)
    assert ids(groups) == [["A", "B"]] and [(p.a, p.b) for p in groups[0].pairs] == [("A", "B")]


def test_where_the_pictures_do_not_tell_the_earliest_registered_is_kept_then_the_smallest_id() -> None:
    listings = {
        0: listing("item-10", "2026-01-01T00:00:00.001Z"),  # registered first, though its id is larger
        1: listing("item-9", "2026-01-01T00:00:00.003Z"),
        2: listing("item-010", "2026-01-01T00:00:00.003Z"),  # at the same moment as item-9: its id after 9
        3: listing("sku-1", "2026-01-01T00:00:00.002Z"),
    }
    # Every two called the same picture, and nothing the pictures show tells which is the original.
    links = [found(a, b) for a in range(4) for b in range(4) if a < b]
    (group,) = group_duplicates(links, listings, 64)
    assert ids([group]) == [["item-10", "sku-1", "item-9", "item-010"]]
    assert (group.keep_by, group.keep_reason) == (
        "registered",
        "registered first: the pictures do not tell which is the original",
    )
    assert group.to_dict()["keep"] == "item-10" and group.to_dict()["keep_by"] == "registered"
    # Registered at the same moment: the smaller id, digits compared as numbers.
    (group,) = group_duplicates([found(1, 2)], listings, 64)
    assert ids([group]) == [["item-9", "item-010"]] and group.keep_by == "id"
    assert group.keep_reason == ("the smallest id: registered at the same moment as item-010, and the pictures do not "
                                 "tell which is the original")  # fmt: skip
    assert keep_order(listing("E9")) < keep_order(listing("E10")) < keep_order(listing("F1"))
    assert keep_order(listing("E01")) < keep_order(listing("E1"))  # the same number: then as text
    assert keep_order(listing("²1")) < keep_order(listing("²2"))  # a digit Python reads but int() does not
    # A registration that cannot be read is the last.
    late = {0: listing("a", "not a time"), 1: listing("b", "2026-01-01T00:00:00Z")}
    assert ids(group_duplicates([found(0, 1)], late, 64)) == [["b", "a"]]


def test_the_original_is_kept_over_copies_registered_before_it_under_smaller_ids() -> None:
    """The tester's walk: after an import, copy-1 (cropped), copy-2 (padded) and bf-copy
    (grayscale), registered before magento_0003 and with ids sorting first, are edits of it."""
    listings = {0: listing("magento_0003", "2026-03-01T00:00:00Z"), 1: listing("copy-1", "2026-01-01T00:00:00Z"),
                2: listing("copy-2", "2026-01-02T00:00:00Z"),
                3: listing("bf-copy", "2026-01-03T00:00:00Z")}  # fmt: skip
    square = Looks(colour=True, size=(384, 384), borders=(0.1, 0.0, 0.0, 0.0))
    looks = {0: PHOTO, 1: PHOTO, 2: square, 3: GREY}
    links = [
        found(1, 0, edits=(CROPPED,)), found(0, 1, edits=(PADDED,)),  # copy-1 is magento_0003 cut 10% on the left
        found(2, 0, edits=(PADDED,)), found(0, 2, edits=(CROPPED,)),  # copy-2: a plain border added on the left
        found(3, 0, edits=(GRAYSCALE,)),  # bf-copy: the original's check against it found no colour to line up
        found(1, 3, distance=5, edits=(GRAYSCALE, PADDED)),  # two copies: each is no edit of the other
    ]  # fmt: skip
    (group,) = group_duplicates(links, listings, 64, looks)
    assert group.keep.entity_id == "magento_0003" and group.keep_by == "pictures"
    assert group.keep_reason == ("the original: the others are edits of it (copy-1 cropped, copy-2 padded and bf-copy "
                                 "in grayscale)")  # fmt: skip
    # Each pair says what turns the original into the copy, as the copy's check against it named it.
    edits = {(p.a, p.b): p.edit_summary for p in group.pairs}
    assert edits[("magento_0003", "copy-1")] == "cropped (10% off the left)"
    assert edits[("magento_0003", "copy-2")] == "padded (left)"
    assert edits[("magento_0003", "bf-copy")] == "converted to grayscale"
    # Between two copies, the one first in the group's order is first: copy-1 before bf-copy,
    # and what turns copy-1 into bf-copy is bf-copy's check of copy-1 read backwards.
    assert edits[("copy-1", "bf-copy")] is None  # grayscale cannot be read backwards
    assert group.to_dict()["keep_reason"] == group.keep_reason


def test_a_copy_kept_so_far_gives_way_when_the_record_it_is_an_edit_of_joins() -> None:
    # B (registered first) and C, two copies, are closest: B keeps them. A, registered last, is
    # the original of B (B cropped from it) and a duplicate of C: joined, B is no longer kept. Of
    # A and C, which the pictures do not tell apart, C was registered first: it is kept.
    listings = {0: listing("A", "2026-03-01T00:00:00Z"), 1: listing("B", "2026-01-01T00:00:00Z"),
                2: listing("C", "2026-02-01T00:00:00Z")}  # fmt: skip
    links = [found(1, 2, distance=1), found(1, 0, distance=4, edits=(CROPPED,)), found(2, 0, distance=5)]
    (group,) = group_duplicates(links, listings, 64, {0: PHOTO, 1: PHOTO, 2: PHOTO})
    assert ids([group]) == [["C", "B", "A"]] and group.keep_by == "registered"
    assert group.keep_reason == "B is A cropped; registered before A, which the pictures do not tell from it"
    # A registered before C: A is kept, the original of B, registered before C.
    listings[0] = listing("A", "2026-01-15T00:00:00Z")
    (group,) = group_duplicates(links, listings, 64, {0: PHOTO, 1: PHOTO, 2: PHOTO})
    assert ids([group]) == [["A", "B", "C"]]
    assert (
        group.keep_reason == "the original of B (cropped); registered before C, which the pictures do not tell from it"
    )
    # Without what the pictures show, B, registered first, keeps its copies and A.
    (group,) = group_duplicates(links, listings, 64)
    assert ids([group]) == [["B", "A", "C"]] and group.keep_by == "registered"


def test_an_original_that_is_no_duplicate_of_every_record_of_a_group_does_not_take_it_over() -> None:
    # B keeps C (closest); A is B's original but was never called the same picture as C: A cannot
    # keep the group, and B, a copy of A, may not keep A: A-B stays a related pair.
    listings = {0: listing("A", "2026-03-01T00:00:00Z"), 1: listing("B", "2026-01-01T00:00:00Z"),
                2: listing("C", "2026-02-01T00:00:00Z")}  # fmt: skip
    groups = group_duplicates([found(1, 2, distance=1), found(1, 0, edits=(CROPPED,))], listings, 64,
                              {0: PHOTO, 1: PHOTO})  # fmt: skip
    assert ids(groups) == [["B", "C"]] and related(groups[0]) == [("B", "A")]


def test_the_group_keeps_the_oldest_even_when_newer_records_were_linked_first() -> None:
    # B-C are closest and grouped first; A, kept before both, is the duplicate of each: the
    # group is A's, whatever order its pairs were found in.
    links = [found(1, 2, distance=0), found(0, 1, distance=5), found(2, 0, distance=6)]
    (group,) = group_duplicates(links, LISTINGS, 64)
    assert [item.entity_id for item in group.items] == ["A", "B", "C"] and group.related == ()


def test_both_directions_of_a_pair_make_one_pair_named_as_the_second_record_checked_against_the_first() -> None:
    # B is A cropped: B's check against A names the crop; A's against B (further, a lower score)
    # names what turns B into A, which is not what a person removing B wants to read.
    groups = group_duplicates(
        [found(1, 0, distance=3, score=96.34, edits=(CROPPED,)),
         found(0, 1, distance=6, score=93.0, edits=(MIRRORED,))],
        LISTINGS, 64,
    )  # fmt: skip
    (pair,) = groups[0].pairs
    assert (pair.a, pair.b, pair.distance, pair.match_percent, pair.edits) == ("A", "B", 3, 96.3, (CROPPED,))
    assert pair.to_dict() == {
        "a": "A", "b": "B", "verdict": "duplicate", "match_percent": 96.3, "distance": 3,
        "edit": "cropped (10% off the left)", "edits": [{"edit": "cropped", "left": 0.1, "right": 0.0, "top": 0.0,
                                                         "bottom": 0.0}],
    }  # fmt: skip


def test_a_pair_only_the_first_record_called_the_same_reads_its_edits_backwards() -> None:
    # Only A's check against B called them the same picture: it names what turns B into A (B
    # cropped); what turns A into B is that read backwards (A padded), as B's check would say.
    (pair,) = group_duplicates([found(0, 1, edits=(CROPPED, MIRRORED))], LISTINGS, 64)[0].pairs
    assert (pair.a, pair.b, pair.edit_summary) == ("A", "B", "padded (left) and mirrored")
    (pair,) = group_duplicates([found(0, 1, edits=(Edit("rotated", {"degrees": 3.0}),))], LISTINGS, 64)[0].pairs
    assert pair.edit_summary == "rotated about 3° clockwise"
    # What has no inverse the service names (colour taken away, text or a badge) is not said at all.
    (pair,) = group_duplicates([found(0, 1, edits=(GRAYSCALE,))], LISTINGS, 64)[0].pairs
    assert pair.edits is None and pair.to_dict()["edit"] is None and pair.to_dict()["edits"] is None
    # A check that named nothing (the same picture again) says so.
    (pair,) = group_duplicates([found(0, 1, edits=None)], LISTINGS, 64)[0].pairs
    assert pair.edit_summary == "no visible edit"


def test_a_pair_in_words() -> None:
    assert Pair("A", "B", 0, 100.0, ()).in_words() == "The same picture (100% match): no visible edit."
    assert Pair("A", "B", 2, 96.9, (CROPPED,)).in_words() == "The same picture (97% match): cropped (10% off the left)."
    assert Pair("A", "B", 2, 96.9, (CROPPED, MIRRORED)).in_words() == (
        "The same picture (97% match): cropped (10% off the left) and mirrored."
    )
    assert Pair("A", "B", 2, 96.9, None).in_words() == "The same picture (97% match)."


def test_the_original_is_kept_where_both_checks_name_its_badged_copy_the_copy() -> None:
    """The badged copy B was registered first. B's check names the badge on B; A's check, read
    the other way round, names it on B too (found as B's): A is kept, whatever the order. One
    check alone naming it is that check's default, not a reading."""
    listings = {0: listing("A", "2026-03-01T00:00:00Z"), 1: listing("B", "2026-01-01T00:00:00Z")}
    badge = Edit("overlay", {"where": "top right", "share": 0.03})
    (group,) = group_duplicates([found(1, 0, edits=(badge,)), found(1, 0, edits=(badge,))], listings, 64, {})
    assert group.keep.entity_id == "A" and group.keep_by == "pictures"
    (group,) = group_duplicates([found(1, 0, edits=(badge,))], listings, 64, {})
    assert group.keep.entity_id == "B" and group.keep_by == "registered"


def test_of_two_checks_naming_a_pair_one_way_round_the_fuller_naming_is_kept_in_either_order() -> None:
    """B's own check names the frame, the saturation and the badge; A's, read the other way
    round, only the frame: whichever was saved first, the pair says all three."""
    listings = {0: listing("A", "2026-03-01T00:00:00Z"), 1: listing("B", "2026-01-01T00:00:00Z")}
    framed = Edit("framed", {"left": 0.05, "right": 0.05, "top": 0.05, "bottom": 0.05})
    fuller = (framed, Edit("saturation", {"change": -0.5}), Edit("overlay", {"where": "top right", "share": 0.02}))
    for order in ([fuller, (framed,)], [(framed,), fuller]):
        (group,) = group_duplicates([found(1, 0, edits=edits) for edits in order], listings, 64, {})
        (pair,) = group.pairs
        assert pair.edits == fuller
