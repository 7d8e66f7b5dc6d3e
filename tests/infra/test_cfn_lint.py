"""cfn-lint on the synthesised templates (both profiles): no error, and no warning but the ones
docs/deploy.md lists as kept on purpose ("cfn-lint").

cfn-lint checks the template against CloudFormation's own resource specifications (property
names, types, allowed values, references, region availability), which cdk-nag does not.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

REGION = "us-east-1"


def findings(template: Template) -> list[Any]:
    return lint(json.dumps(template.to_json()), config=ManualArgs(regions=[REGION]))


def kept_on_purpose(match: Any, resources: dict[str, Any]) -> bool:
    """W3005 on a Lambda function's DependsOn naming its own service role: CDK always adds that
    entry beside the `Fn::GetAtt` of the role, which already orders them (harmless; the other
    entry, the role's default policy, is the one that matters). docs/deploy.md, "cfn-lint"."""
    if match.rule.id != "W3005" or match.path[:1] != ["Resources"]:
        return False
    function_id = match.path[1]
    function = resources.get(function_id, {})
    depends_on = function.get("DependsOn", [])
    named = depends_on[match.path[3]] if len(match.path) > 3 else None
    role = function.get("Properties", {}).get("Role", {}).get("Fn::GetAtt", [None])[0]
    return function.get("Type") == "AWS::Lambda::Function" and named == role


@pytest.mark.parametrize("profile", ["prod", "dev"])
def test_the_template_has_no_cfn_lint_error_and_no_unlisted_warning(
    profile: str, prod: tuple[Stack, Template], dev: tuple[Stack, Template]
) -> None:
    template = prod[1] if profile == "prod" else dev[1]
    resources = template.to_json()["Resources"]
    matches = findings(template)
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in errors)
    unlisted = [m for m in matches if not kept_on_purpose(m, resources)]
    assert not unlisted, "\n".join(f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in unlisted)
    # The kept warnings are what docs/deploy.md says: one per function.
    functions = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    assert sorted(m.path[1] for m in matches) == sorted(functions)


def test_cfn_lint_finds_a_wrong_property() -> None:
    """The check can fail: a template with a misspelt property is an error."""
    broken = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeoutt": 30}},
        }
    }
    matches = lint(json.dumps(broken), config=ManualArgs(regions=[REGION]))
    assert any(m.rule.id.startswith("E") and "VisibilityTimeoutt" in m.message for m in matches)
