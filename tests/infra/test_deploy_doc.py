"""docs/deploy.md against the synthesised template and the bundles' measured sizes: its list of
resources, the counts its prose gives, its outputs and its bundle sizes, so the guide describes the
stack that deploys. Expected values come from the template (prod profile, as `make synth`), so a
change to the stack fails here until deploy.md is updated; the message says what to write."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra import bundling
from infra.stack import PROFILE_DEFAULTS
from support.scripts import load_script

REPO_ROOT = bundling.REPO_ROOT

DEPLOY_MD = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
NUMBERS = {"one": 1, "two": 2, "both": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
NUMBERS |= {"nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
# Phrases deploy.md uses for the whole stack's parts (a subset is named otherwise: "both queues" of imports).
COUNTED = r"(Lambda functions|SQS queues|dead-letter queues|DLQs|CloudWatch alarms)"


def deploy_md() -> str:
    return DEPLOY_MD.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """From the `## heading` line to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/deploy.md has no section '## {heading}'"
    return match.group(1)


def table(text: str) -> dict[str, str]:
    """The rows of a Markdown table whose first cell is `code`: {first cell: second cell}."""
    return dict(re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", text, re.M))


def resources(template: Template) -> dict[str, Any]:
    return template.to_json()["Resources"]


def dead_letter_queues(template: Template) -> set[str]:
    """Queues something sends its failures to: a queue's redrive target, or an event source
    mapping's on-failure destination."""
    targets = set()
    for resource in resources(template).values():
        props = resource.get("Properties", {})
        redrive = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        for ref in (redrive, on_failure):
            if isinstance(ref, dict) and "Fn::GetAtt" in ref:
                targets.add(ref["Fn::GetAtt"][0])
    return {key for key in targets if resources(template)[key]["Type"] == "AWS::SQS::Queue"}


def alarm_metrics(template: Template) -> int:
    """Metrics the alarms watch (CloudWatch bills each): one, or each of a math alarm's."""
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    return sum(
        len([m for m in alarm["Properties"]["Metrics"] if "MetricStat" in m]) if "Metrics" in alarm["Properties"] else 1
        for alarm in alarms
    )


def counts(template: Template) -> dict[str, int]:
    """What deploy.md's prose counts, from the template."""
    types = Counter(resource["Type"] for resource in resources(template).values())
    dlqs = len(dead_letter_queues(template))
    return {
        "Lambda functions": types["AWS::Lambda::Function"],
        "SQS queues": types["AWS::SQS::Queue"],
        "dead-letter queues": dlqs,
        "DLQs": dlqs,
        "CloudWatch alarms": types["AWS::CloudWatch::Alarm"],
    }


def test_the_resource_table_counts_what_the_template_holds(template: Template) -> None:
    types = Counter(resource["Type"] for resource in resources(template).values())
    listed = re.findall(r"`(AWS::\w+::\w+)` (\d+)", section(deploy_md(), "What the stack holds"))
    written = {kind: int(count) for kind, count in listed}
    expected = ", ".join(f"`{kind}` {count}" for kind, count in sorted(types.items()))
    assert written == dict(types), (
        f"docs/deploy.md's resource table differs from the template; it should be:\n{expected}"
    )


def test_the_outputs_listed_are_the_stacks(template: Template) -> None:
    outputs = set(template.to_json()["Outputs"])
    listed = set(table(section(deploy_md(), "What the stack holds")))
    assert listed == outputs, f"missing from docs/deploy.md: {outputs - listed}; not outputs: {listed - outputs}"


def test_every_count_of_the_stacks_parts_in_the_guide_is_the_templates(template: Template) -> None:
    """ "7 Lambda functions", "3 dead-letter queues", "both DLQs": each number said of the stack's
    functions, queues, dead-letter queues and alarms is the template's."""
    expected = counts(template)
    found = re.findall(rf"\b(\d+|{'|'.join(NUMBERS)}) {COUNTED}\b", deploy_md(), re.I)
    assert len(found) >= 4  # the summary under the resource table at least
    for number, noun in found:
        said = int(number) if number.isdigit() else NUMBERS[number.lower()]
        assert said == expected[noun], f"docs/deploy.md says {number} {noun}; the template has {expected[noun]}"
    assert expected["dead-letter queues"] == 3 and expected["SQS queues"] == 6  # the rule above finds them


def test_the_alarms_cost_counts_the_templates_alarms_and_metrics(template: Template) -> None:
    alarms, metrics = len(template.find_resources("AWS::CloudWatch::Alarm")), alarm_metrics(template)
    # Words may wrap anywhere in the paragraph.
    priced = r"(\d+)\s+CloudWatch\s+alarms\s+over\s+(\d+)\s+metrics\s+at\s+\$0\.10 = \$(\d+\.\d\d)"
    match = re.search(priced, deploy_md())
    assert match, "docs/deploy.md's cost section no longer prices the alarms"
    assert (int(match[1]), int(match[2])) == (alarms, metrics)
    assert match[3] == f"{metrics * 0.10:.2f}"


def test_the_cost_script_prices_the_templates_alarm_metrics_and_every_profiles_node(template: Template) -> None:
    cost = load_script("bench/cost.py")
    assert alarm_metrics(template) == cost.ALARM_METRICS
    assert {profile["searchInstanceType"] for profile in PROFILE_DEFAULTS.values()} <= set(cost.NODES)


def test_the_bundle_sizes_come_from_one_generated_place() -> None:
    """A build writes the bundles' unzipped sizes beside the assembly (cdk.out/bundle_sizes.json, not
    tracked: `make synth` leaves the checkout clean); docs/results/bundles.json records them for
    docs/results.md and for deploy.md's generated block (`make results`): the only MiB figures in
    deploy.md are Lambda's limit and that block's. After a build, the record must be its sizes."""
    assert bundling.BUNDLE_SIZES == REPO_ROOT / "cdk.out" / "bundle_sizes.json"
    assert not (REPO_ROOT / "infra" / "bundle_sizes.json").exists()
    recorded = json.loads((REPO_ROOT / "docs" / "results" / "bundles.json").read_text())["output"]
    assert set(recorded) == {"dupcheck", "products"}
    results_md = (REPO_ROOT / "docs" / "results.md").read_text()
    assert all(f"{size:.1f} MiB" in results_md for size in recorded.values())
    text = deploy_md()
    block = re.search(r"<!-- generated: bundles .*?-->\n(.*?)<!-- /generated -->", text, re.S)
    assert block, "docs/deploy.md lost its generated bundle sizes: `<!-- generated: bundles` (make results)"
    assert all(f"{size:.1f} MiB" in block.group(1) for size in recorded.values()), "run `make results`"
    said = {float(figure) for figure in re.findall(r"(\d+(?:\.\d+)?) MiB", text.replace(block.group(0), ""))}
    assert said <= {250.0}, f"docs/deploy.md gives {sorted(said)} MiB outside its generated block"
    intro = text.split("## What the stack holds")[0]
    assert "cdk.out/bundle_sizes.json" in intro and "results.md#what-it-costs" in intro and block.group(0) in intro
    if bundling.BUNDLE_SIZES.is_file():  # a build happened here
        built = json.loads(bundling.BUNDLE_SIZES.read_text())
        assert built == recorded, (
            f"the last build measured {built}, docs/results/bundles.json says {recorded}: "
            "scripts/results.py --record bundles --from cdk.out/bundle_sizes.json"
        )


def test_a_built_bundle_records_its_size(tmp_path: Path) -> None:
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"products": 152.4}))
    bundling.record_size("dupcheck", 3 * bundling.MIB + 100_000, sizes)
    assert json.loads(sizes.read_text()) == {"dupcheck": 3.1, "products": 152.4}  # the other kept


def test_the_node_version_the_guide_asks_for_is_the_one_the_tools_run_on() -> None:
    """deploy.md asked for Node.js 22+ while the Makefile (and infra/) silenced jsii's end-of-life
    warning for Node 20, on which `make synth` and these tests run: the guide's minimum is the version
    silenced everywhere, and the Node on this machine (when there is one) meets it."""
    asked = re.search(r"^- Node\.js (\d+)\+", deploy_md(), re.M)
    assert asked, "docs/deploy.md's prerequisites name no Node.js version"
    silenced = {
        "Makefile": re.findall(r"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := (\d+)",
                               (REPO_ROOT / "Makefile").read_text()),
        "infra/__init__.py": re.findall(r'"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "(\d+)"',
                                        (REPO_ROOT / "infra" / "__init__.py").read_text()),
        "tests/conftest.py": re.findall(r'JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="(\d+)"',
                                        (REPO_ROOT / "tests" / "conftest.py").read_text()),
    }  # fmt: skip
    assert all(found == [asked.group(1)] for found in silenced.values()), (asked.group(1), silenced)
    if node := shutil.which("node"):
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
        assert int(version.lstrip("v").split(".")[0]) >= int(asked.group(1)), version
