"""scripts/bench/cost.py: docs/deploy.md's cost arithmetic on measured inputs (docs/results/cost.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support.scripts import load_script

RECORD = Path(__file__).resolve().parents[3] / "docs" / "results" / "cost.json"


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    return load_script("bench/cost.py")


@pytest.fixture
def inputs() -> dict[str, Any]:
    return copy.deepcopy(json.loads(RECORD.read_text())["output"]["inputs"])


def test_a_catalog_whose_graph_outgrows_half_a_nodes_ram_is_priced_on_a_memory_optimised_node(cost, inputs):
    sizes = (100_000, 1_000_000, 5_000_000, 10_000_000, 20_000_000)
    nodes = [catalog["node"] for catalog in cost.totals(inputs, sizes)["catalogs"]]
    # ~880 bytes a record (the hash and its two halves), both copies over two nodes: 4 GiB of k-NN
    # memory holds ~4.9M records, 8 GiB ~9.8M
    assert nodes == ["m6g.large.search"] * 2 + ["r7g.large.search", "r7g.xlarge.search", "r7g.2xlarge.search"]
    with pytest.raises(ValueError, match="more nodes"):
        cost.totals(inputs, (200_000_000,))


def test_the_fixed_cost_grows_with_the_catalog_and_a_check_costs_the_same_at_any_size(cost, inputs):
    catalogs = cost.totals(inputs, (100_000, 1_000_000, 10_000_000))["catalogs"]
    fixed = [catalog["fixed_per_month_usd"] for catalog in catalogs]
    assert fixed == sorted(fixed) and fixed[0] < fixed[-1]
    assert len({catalog["per_million_checks_usd"] for catalog in catalogs}) == 1


def test_a_checks_items_add_up_to_its_total_and_its_duration_follows_the_measured_cpu(cost, inputs):
    before = cost.totals(inputs)
    items = before["per_million_checks"]
    assert round(sum(items.values())) == before["catalogs"][0]["per_million_checks_usd"]
    inputs["find_cpu_ms"]["copy"]["median"] *= 2
    after = cost.totals(inputs)["per_million_checks"]
    assert after["lambda_duration"] > items["lambda_duration"]
    assert {k: v for k, v in after.items() if k != "lambda_duration"} == {
        k: v for k, v in items.items() if k != "lambda_duration"
    }


def test_an_import_pays_the_gated_writes_units_and_dev_costs_less_than_prod(cost, inputs):
    before = cost.totals(inputs)
    assert before["dev_profile_per_month_usd"] < before["catalogs"][0]["fixed_per_month_usd"]
    inputs["gated_write"]["write_units"]["median"] += 16  # $0.625 a million units: $10 more
    assert cost.totals(inputs)["import_per_million_rows_usd"] == before["import_per_million_rows_usd"] + 10


def test_the_record_is_this_arithmetic_on_its_own_inputs(cost):
    """docs/results/cost.json's totals are what cost.py gives on the inputs it records: a change of
    price or rule re-records it."""
    recorded = json.loads(RECORD.read_text())["output"]
    assert cost.totals(recorded["inputs"]) == recorded
