"""What the duplicate gate adds to registering an item, against one find_similar.

In process, one thread, over a 250-picture generated catalog: per call, the CPU time of
`find_similar_bytes`, of `register_checked` with `allow` (hashed for storing, stored) and with
`warn` (hashed once as a query with the record's thumbnail, checked on find_similar's path,
stored), for 80 new pictures (each registered then removed, so the catalog stays as it was).
CPU time (not wall time): what a call costs whatever else the machine runs. Three rounds.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench/gate_cost_bench.py
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dupcheck.bootstrap import build_service
from dupcheck.core.models import OnDuplicate
from dupcheck.core.settings import Settings
from dupcheck_tools.samples import encode, product_image


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        service = build_service(Settings.from_env({}, data_dir=Path(work)))
        pictures = [encode(product_image(i)) for i in range(330)]
        for i, data in enumerate(pictures[:250]):
            service.registrar.register_bytes(
                entity_id=f"E{i}", sku="", image_url=f"https://shop.test/{i}.jpg", data=data
            )
        new = pictures[250:]

        def cpu_ms(run: Callable[[bytes], object]) -> float:
            for data in new[:3]:  # warm-up
                run(data)
            started = time.process_time()
            for data in new:
                run(data)
            return round((time.process_time() - started) / len(new) * 1000, 1)

        def register(policy: OnDuplicate) -> Callable[[bytes], object]:
            def run(data: bytes) -> None:
                service.registrar.register_checked(entity_id="T", sku="", image_url="https://shop.test/t.jpg",
                                                   data=data, on_duplicate=policy)  # fmt: skip
                service.records.remove("T")

            return run

        rounds: dict[str, list[float]] = {}
        for _ in range(3):
            rounds.setdefault("find_similar_ms", []).append(cpu_ms(service.lookups.find_similar_bytes))
            rounds.setdefault("register_allow_ms", []).append(cpu_ms(register(OnDuplicate.ALLOW)))
            rounds.setdefault("register_warn_ms", []).append(cpu_ms(register(OnDuplicate.WARN)))
    print(json.dumps(rounds))


if __name__ == "__main__":
    main()
