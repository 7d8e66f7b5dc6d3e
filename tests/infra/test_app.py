"""infra/app.py: context options reach the stack however the app is run (`make synth CONTEXT=...`,
`python -m infra.app -c ...`, the CDK CLI), an unknown `dupcheck:` key is refused, and a synth
prints no warning (SnapStart's is acknowledged, every feature flag is set)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match, Template

from infra import app as infra_app

REPO_ROOT = Path(__file__).resolve().parents[2]
OPTIONS = "dupcheck:profile=dev dupcheck:searchVolumeGiB=12 dupcheck:skipBundling=true"
# What CDK CLI 2.1148.1 adds to cdk.json's context and the -c options in CDK_CONTEXT_JSON (read from
# the environment it gave an app): the metadata defaults and bundling of every stack.
CLI_ADDS = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
}


def synth_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "AWS_"))}  # environment-agnostic
    return {**env, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "lambdas"), str(REPO_ROOT)]),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}  # fmt: skip


@pytest.fixture(scope="module")
def make_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The command `make synth CONTEXT=...` runs (make -n: the venv is not rebuilt), run into a
    temporary folder: the template it writes."""
    planned = subprocess.run(
        ["make", "-n", "-s", "-o", ".venv/.installed-stamp", "synth", f"CONTEXT={OPTIONS}",
         f"BIN={Path(sys.executable).parent}"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()  # fmt: skip
    (command,) = [line for line in planned if "infra.app" in line]  # (venv's first: the checkout on its path)
    argv = shlex.split(command)
    assert argv[1:] == ["-m", "infra.app", *(arg for o in OPTIONS.split() for arg in ("-c", o))]
    out = tmp_path_factory.mktemp("make-synth")
    subprocess.run([*argv, "-o", str(out)], cwd=REPO_ROOT, env=synth_env(), check=True, capture_output=True)
    return out / "Dupcheck.template.json"


def test_make_synth_passes_the_context_options_to_the_stack(make_synth: Path) -> None:
    domain = next(
        r["Properties"]
        for r in json.loads(make_synth.read_text())["Resources"].values()
        if r["Type"] == "AWS::OpenSearchService::Domain"
    )
    assert domain["ClusterConfig"]["InstanceType"] == "t3.small.search"  # prod's is m6g.large.search
    assert domain["ClusterConfig"]["InstanceCount"] == 1
    assert domain["EBSOptions"]["VolumeSize"] == 12  # neither profile's default


def test_make_synth_writes_the_template_the_cdk_cli_writes(make_synth: Path, tmp_path: Path) -> None:
    """The app run as the CLI runs it (CDK_CONTEXT_JSON: cdk.json's context, the -c options, what
    the CLI adds; CDK_OUTDIR) writes the same bytes as `make synth` with the same options."""
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    context = {**cdk_json["context"], **dict(o.split("=", 1) for o in OPTIONS.split()), **CLI_ADDS}
    env = {**synth_env(), "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "infra.app"], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    assert (tmp_path / "Dupcheck.template.json").read_bytes() == make_synth.read_bytes()


def test_an_unknown_dupcheck_key_is_refused_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        infra_app.ContextError, match="unknown context key dupcheck:profle: did you mean dupcheck:profile"
    ):
        infra_app.build(App(context={"dupcheck:profle": "dev"}))
    with pytest.raises(SystemExit) as exit_info:
        infra_app.main(["-c", "dupcheck:serchNodeCount=3", "-o", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown context key dupcheck:serchNodeCount: did you mean dupcheck:searchNodeCount?" in err
    assert all(key in err for key in infra_app.known_keys())
    assert not (tmp_path / "Dupcheck.template.json").exists()
    infra_app.check_keys({"@aws-cdk/core:checkSecretUsage": True, "dupcheck:stackName": "Other"})  # others pass


def test_a_known_key_without_its_prefix_is_refused(tmp_path: Path) -> None:
    """`make synth CONTEXT="profile=dev"` must not build the prod stack: the app stops, naming the key
    it takes (the real command, so its exit status is the one `make` sees)."""
    with pytest.raises(infra_app.ContextError, match="context key profile has no dupcheck: prefix: did you mean "
                       "dupcheck:profile\\?"):  # fmt: skip
        infra_app.build(App(context={"profile": "dev"}))
    run = subprocess.run(
        [sys.executable, "-m", "infra.app", "-c", "profile=dev", "-c", "dupcheck:skipBundling=true",
         "-o", str(tmp_path)],
        cwd=REPO_ROOT, env=synth_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "did you mean dupcheck:profile?" in run.stderr
    assert not (tmp_path / "Dupcheck.template.json").exists()
    infra_app.check_keys({"profile2": "x", "@aws-cdk/core:target": True})  # not the app's keys: left to CDK


def test_a_context_option_must_be_key_equals_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        infra_app.main(["-c", "dupcheck:profile"])
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_deploy_md_lists_exactly_the_keys_the_app_reads() -> None:
    text = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(dupcheck:\w+)` \|", text, re.M)
    assert sorted(listed) == infra_app.known_keys()


def test_the_cli_context_is_merged_as_the_cli_merges_it(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"a": 1, "b": 1}}))
    (tmp_path / "cdk.context.json").write_text(json.dumps({"a": 0, "c": 0}))
    merged = infra_app.project_context([("b", "2")], root=tmp_path)
    assert {k: merged[k] for k in "abc"} == {"a": 1, "b": "2", "c": 0}  # -c, then cdk.json, then cached
    assert {k: merged[k] for k in CLI_ADDS} == CLI_ADDS


@pytest.mark.parametrize("profile", ["prod", "dev"])
def test_a_synth_prints_no_warning(profile: str, prod: tuple[Stack, Template], dev: tuple[Stack, Template]) -> None:
    stack = (prod if profile == "prod" else dev)[0]
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_every_feature_flag_is_set(stack: Stack) -> None:
    """What `cdk synth` counts as "feature flags not configured": a flag without a value whose
    default differs from the recommended one (the assembly's feature flag report)."""
    root = stack.node.root
    assert isinstance(root, App)
    manifest = json.loads((Path(root.synth().directory) / "manifest.json").read_text())
    (report,) = [a for a in manifest["artifacts"].values() if a["type"] == "cdk:feature-flag-report"]
    flags: dict[str, Any] = report["properties"]["flags"]
    unset = [name for name, flag in flags.items() if "userValue" not in flag
             and flag.get("unconfiguredBehavesLike", {}).get("v2", False) != flag["recommendedValue"]]  # fmt: skip
    assert len(flags) > 50 and unset == []
