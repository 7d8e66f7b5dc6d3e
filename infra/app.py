"""The CDK app: one App, one `DupcheckStack`, cdk-nag AwsSolutions checks on everything.

Run by `cdk synth|deploy` (cdk.json: `python3 -m infra.app`, from the project root) or
`make synth`, with the project's virtualenv active (it has the `dupcheck` package installed).
Context keys (`-c dupcheck:KEY=VALUE`) are listed in docs/deploy.md and `infra/stack.py`;
`-c dupcheck:skipBundling=true` skips building the Lambda bundle (no pip, no network) for
synth-only checks; never deploy such a synth.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment
from cdk_nag import AwsSolutionsChecks

from infra.stack import CONTEXT_PREFIX, DupcheckConfig, DupcheckStack

_ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "Dupcheck"
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def build(app: App) -> DupcheckStack:
    """Add the stack and the nag checks to `app`; the tests call this too."""
    if _truthy(app.node.try_get_context(CONTEXT_PREFIX + "skipBundling")):
        app.node.set_context(BUNDLING_STACKS_CONTEXT, [])
    config = DupcheckConfig.from_context(app.node)
    stack_name = app.node.try_get_context(CONTEXT_PREFIX + "stackName") or STACK_NAME
    stack = DupcheckStack(
        app,
        stack_name,
        config=config,
        description="dupcheck: near-duplicate image detection (API Gateway, Lambda, DynamoDB, OpenSearch)",
        # Environment-agnostic unless the CLI supplies an account/region.
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stack


def main() -> None:
    if "CDK_CONTEXT_JSON" in os.environ or "CDK_OUTDIR" in os.environ:
        app = App()  # run by the CDK CLI, which passes cdk.json's context and the outdir
    else:
        # `make synth` / `python -m infra.app`: same context as the CLI would pass, into cdk.out.
        cdk_json = json.loads((_ROOT / "cdk.json").read_text())
        app = App(context=cdk_json.get("context", {}), outdir=str(_ROOT / "cdk.out"))
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
