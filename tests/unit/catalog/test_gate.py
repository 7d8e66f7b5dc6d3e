"""The duplicate gate under concurrency (core/catalog/gate.py): claims, fences and commits.

Two writers' steps (claim, check, commit) are run in every order they can interleave, against the
SQLite claims; then many writers at once on threads; then a writer killed between its steps.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from dupcheck.adapters.sqlite_claims import SqliteClaims
from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.gate import EXPIRED, ClaimsNear, Gate, Passage, nearest_claims
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import DuplicateImage
from dupcheck.core.models import Claim, ClaimState, Entry, HashPart, HashValue, OnDuplicate
from dupcheck.core.settings import Settings
from dupcheck_tools.samples import encode, product_image
from support.catalogs import EDIT_SEEDS, edited_copies
from support.concurrency import at_once
from support.fakes import FakeFetcher, make_record

ROOT = Path(__file__).parents[3]


@pytest.fixture
def service(settings: Settings) -> DupcheckService:
    svc = build_service(settings, fetcher=FakeFetcher({}))
    for i in range(6):  # a catalog to search, none of it like the pictures written below
        svc.registrar.register_bytes(entity_id=f"C{i}", sku="", image_url=f"https://shop.test/c{i}.jpg",
                                     data=encode(product_image(i)))  # fmt: skip
    return svc


def stored_of(service: DupcheckService, prefix: str) -> list[str]:
    return sorted(r.entity_id for r in service.parts.store.scan() if r.entity_id.startswith(prefix))


@dataclass
class Writer:
    """One write's steps, run one at a time: claim, check (and decide), commit."""

    service: DupcheckService
    entity_id: str
    data: bytes
    policy: OnDuplicate = OnDuplicate.REJECT
    claim: Claim | None = None
    passage: Passage | None = None
    outcome: str = ""

    def __post_init__(self) -> None:
        self.entry, self.query = self.service.registrar.query_entry(entity_id=self.entity_id, sku="",
                                                                    image_url=f"https://shop.test/{self.entity_id}.jpg",
                                                                    data=self.data)  # fmt: skip

    def open(self) -> None:
        self.claim = self.service.parts.gate.open(self.entry, self.policy)

    def check(self) -> None:
        found = self.service.registrar._gate_check(self.query, self.entity_id, self.claim, self.policy)
        self.passage = self.service.parts.gate.decide(self.policy, self.claim, found)

    def commit(self) -> None:
        assert self.passage is not None
        if not self.passage.passed:
            self.outcome = "refused: " + ",".join(m.entity_id for m in self.passage.duplicates)
            return
        try:
            self.service.records.save(self.entry, self.passage.claim)
            self.outcome = "stored"
        except DuplicateImage as exc:
            self.outcome = "beaten: " + exc.message


def interleavings(a: list[str], b: list[str]) -> list[list[tuple[int, str]]]:
    """Every order of two writers' steps, each writer's own steps in order."""
    orders = []
    for slots in itertools.combinations(range(len(a) + len(b)), len(a)):
        steps, ia, ib = [], iter(a), iter(b)
        for i in range(len(a) + len(b)):
            steps.append((0, next(ia)) if i in slots else (1, next(ib)))
        orders.append(steps)
    return orders


@pytest.mark.parametrize("policies", [(OnDuplicate.REJECT, OnDuplicate.REJECT), (OnDuplicate.REJECT, OnDuplicate.SKIP)])
def test_two_writes_of_one_picture_in_every_order_store_it_once(
    service: DupcheckService, policies: tuple[OnDuplicate, OnDuplicate]
) -> None:
    data = encode(product_image(900))
    steps = ["open", "check", "commit"]
    for n, order in enumerate(interleavings(steps, steps)):
        writers = [Writer(service, f"W{n}-{i}", data, policy) for i, policy in enumerate(policies)]
        for who, step in order:
            getattr(writers[who], step)()
        stored = stored_of(service, f"W{n}-")
        assert len(stored) == 1, (order, [w.outcome for w in writers])
        loser = next(w for w in writers if w.entity_id not in stored)
        assert stored[0] in loser.outcome, (order, loser.outcome)  # the refused write names the stored one
        service.records.remove(stored[0])  # the next order starts from the same catalog


def test_a_warn_and_a_reject_in_every_order_are_as_if_one_came_after_the_other(service: DupcheckService) -> None:
    """warn always stores; the reject is stored only where it came first: then warn names it."""
    data = encode(product_image(902))
    steps = ["open", "check", "commit"]
    for n, order in enumerate(interleavings(steps, steps)):
        warn, reject = Writer(service, f"V{n}-w", data, OnDuplicate.WARN), Writer(service, f"V{n}-r", data)
        writers = [warn, reject]
        for who, step in order:
            getattr(writers[who], step)()
        stored = stored_of(service, f"V{n}-")
        assert warn.entity_id in stored, order
        if reject.entity_id in stored:
            assert [m.entity_id for m in warn.passage.duplicates] == [reject.entity_id], order  # type: ignore[union-attr]
        else:
            assert warn.entity_id in reject.outcome, (order, reject.outcome)
        for entity_id in stored:
            service.records.remove(entity_id)


def test_warn_stores_both_and_at_least_one_names_the_other(service: DupcheckService) -> None:
    data = encode(product_image(901))
    steps = ["open", "check", "commit"]
    for n, order in enumerate(interleavings(steps, steps)):
        writers = [Writer(service, f"N{n}-{i}", data, OnDuplicate.WARN) for i in range(2)]
        for who, step in order:
            getattr(writers[who], step)()
        assert stored_of(service, f"N{n}-") == [f"N{n}-0", f"N{n}-1"]
        named = [[m.entity_id for m in w.passage.duplicates] for w in writers if w.passage is not None]
        assert named[0] == [f"N{n}-1"] or named[1] == [f"N{n}-0"], (order, named)
        for writer in writers:
            service.records.remove(writer.entity_id)


def race(service: DupcheckService, pictures: list[bytes], prefix: str, policy: OnDuplicate) -> list[str]:
    """Every picture registered at once, one thread each; the answers ("stored", or the error codes)."""

    def write(i: int) -> str:
        service.registrar.register_checked(entity_id=f"{prefix}{i}", sku="", image_url=f"https://shop.test/{prefix}{i}.jpg",
                                           data=pictures[i], on_duplicate=policy)  # fmt: skip
        return "stored"

    answers = at_once([partial(write, i) for i in range(len(pictures))])
    return [a if isinstance(a, str) else getattr(a, "code", repr(a)) for a in answers]


def test_eight_rejects_at_once_store_one(service: DupcheckService) -> None:
    for round_ in range(4):
        answers = race(service, [encode(product_image(910 + round_))] * 8, f"R{round_}-", OnDuplicate.REJECT)
        assert answers.count("stored") == 1 and answers.count("duplicate_image") == 7, answers
        assert len(stored_of(service, f"R{round_}-")) == 1


def test_eight_different_copies_of_one_picture_at_once_store_one(service: DupcheckService, settings: Settings) -> None:
    pictures = [encode(p) for p in edited_copies(EDIT_SEEDS[0])]
    # The gate's promise is for pictures that are each other's duplicates: checked one by one first.
    alone = build_service(
        settings.model_copy(update={"data_dir": settings.data_dir / "alone"}), fetcher=FakeFetcher({})
    )
    for i, data in enumerate(pictures):
        alone.registrar.register_bytes(entity_id=f"A{i}", sku="", image_url="https://shop.test/a.jpg", data=data)
        for j, other in enumerate(pictures):
            if j != i:
                assert alone.registrar.duplicates_of(alone.lookups.fingerprint(other)), (i, j)
        alone.records.remove(f"A{i}")
    for round_ in range(3):  # each round the copies in another order: another one claims first
        answers = race(service, pictures[round_:] + pictures[:round_], f"E{round_}-", OnDuplicate.REJECT)
        assert answers.count("stored") == 1, answers
        (stored,) = stored_of(service, f"E{round_}-")
        service.records.remove(stored)


def test_eight_edits_one_after_the_other_store_one_in_any_order(service: DupcheckService) -> None:
    """One pair, one judgement: whichever of a photograph's edits came first (a crop, the
    original, a grey copy...), every later one is refused as its duplicate. 20 pictures, each
    registered in an order of its own."""
    order = random.Random(82)
    for round_, seed in enumerate(EDIT_SEEDS):
        pictures = [encode(p) for p in edited_copies(seed)]
        order.shuffle(pictures)
        prefix = f"S{round_}-"
        for i, data in enumerate(pictures):
            try:
                service.registrar.register_checked(entity_id=f"{prefix}{i}", sku="", image_url=f"https://shop.test/{prefix}{i}.jpg",
                                                   data=data, on_duplicate=OnDuplicate.REJECT)  # fmt: skip
            except DuplicateImage:
                continue
        assert len(stored_of(service, prefix)) == 1, (seed, stored_of(service, prefix))


def test_eight_warns_at_once_store_all_and_each_but_one_names_another(service: DupcheckService) -> None:
    data = encode(product_image(930))

    def write(i: int) -> list[str]:
        done = service.registrar.register_checked(entity_id=f"M{i}", sku="", image_url="https://shop.test/m.jpg",
                                                  data=data, on_duplicate=OnDuplicate.WARN)  # fmt: skip
        return [m.entity_id for m in done.duplicates]

    named = at_once([partial(write, i) for i in range(8)])
    assert len(stored_of(service, "M")) == 8
    assert sum(1 for names in named if not names) <= 1, named  # of any two, one saw the other


# -- the claims themselves ------------------------------------------------------------------------


def claim(claims: SqliteClaims, claim_id: str, *, yields: bool, lease_until: float, entity_id: str = "X") -> Claim:
    record = make_record(entity_id, hash_hex="00" * 16)
    made = Claim(claim_id, entity_id, record.hash, yields=yields, lease_until=lease_until)
    claims.open(made, Entry(record, b"thumb"))
    return made


def test_a_fence_stops_a_claim_that_gives_way_and_spares_one_that_does_not(settings: Settings) -> None:
    store = build_service(settings).parts.store
    claims = SqliteClaims(store)  # type: ignore[arg-type]
    now = time.time()
    giving = claim(claims, "a" * 32, yields=True, lease_until=now + 10)
    holding = claim(claims, "b" * 32, yields=False, lease_until=now + 10, entity_id="Y")
    assert claims.fence(giving, "Z", now) is ClaimState.BEATEN
    assert claims.fence(holding, "Z", now) is ClaimState.PENDING  # warn is never fenced within its lease
    assert claims.fence(holding, "Z", now + 11) is ClaimState.BEATEN  # past it, whatever it is
    assert claims.commit([(make_record("X", hash_hex="00" * 16), giving)]) == ["Z"]  # the write that fenced it
    assert claims.commit([(make_record("Y", hash_hex="00" * 16), holding)]) == [EXPIRED]
    assert store.get("X") is None and store.get("Y") is None  # neither record was written
    assert claims.live(None) == []


def test_a_claim_committed_meanwhile_is_judged_as_its_record(settings: Settings) -> None:
    store = build_service(settings).parts.store
    claims = SqliteClaims(store)  # type: ignore[arg-type]
    made = claim(claims, "c" * 32, yields=True, lease_until=2e9)
    assert not claims.entries([made])[made.claim_id].committed  # pending: the picture it claimed with
    assert claims.commit([(make_record("X", hash_hex="00" * 16), made)]) == [None]
    assert claims.fence(made, "Z", 1.0) is ClaimState.COMMITTED  # too late to fence
    read = claims.entries([made])[made.claim_id]
    assert read.committed and read.entry.record.entity_id == "X"
    assert claims.live(store.latest_change() - 1)[0].entity_id == "X"  # an index one change behind misses it


def test_the_gate_gives_a_check_the_claims_near_it_as_pictures_to_judge(settings: Settings) -> None:
    """A pending claim is judged as the picture it claimed with, under a key of its own; a committed
    one as the record it wrote; a withdrawn one, or one another pipeline made, not at all."""
    store = build_service(settings).parts.store
    claims = SqliteClaims(store)  # type: ignore[arg-type]
    gate = Gate(claims)
    pending = claim(claims, "a" * 32, yields=True, lease_until=2e9, entity_id="P")
    committed = claim(claims, "b" * 32, yields=True, lease_until=2e9, entity_id="C")
    withdrawn = claim(claims, "c" * 32, yields=True, lease_until=2e9, entity_id="W")
    assert claims.commit([(make_record("C", hash_hex="00" * 16), committed)]) == [None]
    gate.withdraw(withdrawn)
    near = [(pending, 1), (committed, 2), (withdrawn, 3)]
    got = gate.claimed(near, reads={"phash64-v1"})
    ((record, distance, its_claim),) = got.pending
    assert got.holds(record.entity_id) and not got.holds("P") and (distance, its_claim) == (1, pending)
    assert got.records[record.entity_id].entity_id == "P" and got.thumbnails[record.entity_id] == b"thumb"
    assert list(got.committed) == ["C"]
    stored, distance, its_claim = got.committed["C"]
    assert stored.entity_id == "C" and distance == 2 and its_claim.state is ClaimState.COMMITTED
    assert gate.claimed(near, reads={"another-pipeline"}) == ClaimsNear()  # its hashes mean nothing here


def test_nearest_claims_answers_as_the_index_would() -> None:
    def at(claim_id: str, hex_hash: str) -> Claim:
        return Claim(claim_id, claim_id, HashValue.from_hex(hex_hash), yields=True, lease_until=0.0)

    near, far, other, late = at("1", "0000"), at("2", "000f"), at("3", "ff00"), at("4", "f0ff")
    query = [HashValue.from_hex("0001")]
    assert nearest_claims([far, other, near], query, 2) == [(near, 1), (far, 3)]
    # Past the k nearest, part after part, each part's nearest not found before: "3" begins like
    # the part asked for, "4" ends like it.
    halves = (HashPart("first", 0, 8), HashPart("second", 8, 8))
    part = [HashValue.from_hex("ff")]
    claims = [far, other, near, late]
    assert nearest_claims(claims, query, 1, part, 1, halves) == [(near, 1), (other, 9), (late, 11)]
    assert nearest_claims(claims, query, 1, part, 1, halves[1:]) == [(near, 1), (late, 11)]
    assert nearest_claims(claims, query, 1, part, 1) == [(near, 1)]  # no parts: the whole hash alone


def killed_writer(settings: Settings, tmp_path: Path, data: bytes, steps: str) -> None:
    """A process of its own over the same data dir runs `steps` (the writer's: `service`, `entry`,
    `OnDuplicate` in scope) on the picture `data`, then is killed (kill -9)."""
    (tmp_path / "picture.jpg").write_bytes(data)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from dupcheck.bootstrap import build_service
        from dupcheck.core.models import OnDuplicate
        from dupcheck.core.settings import Settings
        from support.fakes import FakeFetcher
        service = build_service(Settings.from_env({{}}, data_dir={str(settings.data_dir)!r}, products="off"),
                                fetcher=FakeFetcher({{}}))
        data = open({str(tmp_path / "picture.jpg")!r}, "rb").read()
        entry, _ = service.registrar.query_entry(entity_id="K", sku="", image_url="https://shop.test/k.jpg", data=data)
    """) + textwrap.dedent(steps) + textwrap.dedent("""
        print("done", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9 and "done" in done.stdout, done.stderr


def pending(service: DupcheckService) -> int:
    """The claims still pending in the records' file, read as they are (no check fences any)."""
    return int(service.parts.store._query("SELECT count(*) FROM claims WHERE state = 'pending'", ())[0][0])  # type: ignore[attr-defined]


def test_a_writer_killed_between_its_claim_and_its_commit_holds_nobody_up(
    service: DupcheckService, settings: Settings, tmp_path: Path
) -> None:
    """A process claims a picture and is killed before it commits (kill -9): the claim names a writer
    that no longer runs, so the next write of the picture is stored at once, not after the lease."""
    data = encode(product_image(940))
    killed_writer(settings, tmp_path, data, "service.parts.gate.open(entry, OnDuplicate.REJECT)")
    assert pending(service) == 1  # what the kill left
    service.registrar.register_checked(entity_id="L", sku="", image_url="https://shop.test/l.jpg", data=data,
                                       on_duplicate=OnDuplicate.REJECT)  # fmt: skip
    assert service.parts.store.get("K") is None and service.parts.store.get("L") is not None
    assert pending(service) == 0  # fenced by the check that read it: it stores nothing


def test_eight_warns_at_once_name_no_write_of_a_killed_writer(
    service: DupcheckService, settings: Settings, tmp_path: Path
) -> None:
    """A process stores the picture once, then claims it eight times (warn, as eight uploads at once)
    and is killed: eight warns of the picture at once each name the stored record and each other,
    never a write of the killed process (it stores nothing)."""
    data = encode(product_image(945))
    killed_writer(settings, tmp_path, data, """
        from dataclasses import replace
        service.registrar.register_checked(entity_id="S", sku="", image_url="https://shop.test/s.jpg", data=data,
                                           on_duplicate=OnDuplicate.WARN)
        for i in range(8):
            service.parts.gate.open(replace(entry, record=replace(entry.record, entity_id=f"K{i}")), OnDuplicate.WARN)
    """)  # fmt: skip
    assert pending(service) == 8

    def write(i: int) -> list[str]:
        done = service.registrar.register_checked(entity_id=f"W{i}", sku="", image_url="https://shop.test/w.jpg",
                                                  data=data, on_duplicate=OnDuplicate.WARN)  # fmt: skip
        return [m.entity_id for m in done.duplicates]

    named = at_once([partial(write, i) for i in range(8)])
    assert all("S" in names for names in named), named
    assert all(service.parts.store.get(entity_id) is not None for names in named for entity_id in names), named
    assert pending(service) == 0


def test_the_claims_of_killed_writers_are_cleared_at_start_and_by_the_housekeeping(
    service: DupcheckService, settings: Settings, tmp_path: Path
) -> None:
    from dupcheck_tools.local.housekeeping import Housekeeping

    claim_eight = """
        from dataclasses import replace
        for i in range(8):
            service.parts.gate.open(replace(entry, record=replace(entry.record, entity_id=f"K{i}")), OnDuplicate.REJECT)
    """
    data = encode(product_image(946))
    killed_writer(settings, tmp_path, data, claim_eight)
    assert pending(service) == 8  # the running process learns of them at its next check or pass
    assert Housekeeping(service, []).run_once()["claims"] == 8 and pending(service) == 0
    killed_writer(settings, tmp_path, data, claim_eight)
    assert pending(service) == 8
    SqliteClaims(service.parts.store)  # type: ignore[arg-type]  # a process that starts on the data dir
    assert pending(service) == 0
    assert Housekeeping(service, []).run_once()["claims"] == 0
