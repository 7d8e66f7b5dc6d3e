"""The CDK app: one App, one `DupcheckStack`, cdk-nag AwsSolutions checks on everything.

Run by `cdk synth|deploy` (cdk.json: `python3 -m infra.app`, from the project root) or by
`make synth CONTEXT="KEY=VALUE ..."` (`python -m infra.app [-o DIR] -c KEY=VALUE ...`), with the project's
virtualenv active (it has the `dupcheck` package installed). Either way the app gets the same
context: the CLI hands it over in CDK_CONTEXT_JSON; run on its own, the app merges it as the CLI
does (the CLI's defaults, `cdk.context.json`, `cdk.json`'s context, then `-c`), so both write the
same template. Context keys (`-c dupcheck:KEY=VALUE`) are listed in docs/deploy.md; an unknown
`dupcheck:` key, or a known one without its prefix (`-c profile=dev`), is an error naming the
known ones. `-c dupcheck:skipBundling=true` skips building the Lambda bundles (no pip, no network)
for synth-only checks; never deploy such a synth.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment
from cdk_nag import AwsSolutionsChecks

from infra.stack import CONTEXT_PREFIX, DupcheckConfig, DupcheckStack

_ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "Dupcheck"
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"
# The app's own keys, beside the stack's configuration (DupcheckConfig).
APP_KEYS = ("stackName", "skipBundling")
# What `cdk synth` adds to every app's context unless told otherwise: construct paths and asset
# metadata on the resources, the CDKMetadata resource (the CLI's --path-metadata, --asset-metadata
# and --version-reporting, all on by default), and every stack's assets bundled.
CLI_DEFAULTS: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    BUNDLING_STACKS_CONTEXT: ["**"],
}


class ContextError(ValueError):
    """A `dupcheck:` context key the app does not know."""


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def known_keys() -> list[str]:
    """Every `dupcheck:` context key the app reads."""
    return sorted(CONTEXT_PREFIX + key for key in (*DupcheckConfig.context_keys(), *APP_KEYS))


def check_keys(context: dict[str, Any]) -> None:
    """Refuse a `dupcheck:` key nothing reads, and one of the app's keys given without its
    `dupcheck:` prefix (`-c profile=dev`): either would otherwise deploy the default."""
    known = known_keys()
    for key in sorted(context):
        unprefixed = [k for k in known if k.lower() == (CONTEXT_PREFIX + key).lower()]
        if unprefixed:
            raise ContextError(
                f"context key {key} has no {CONTEXT_PREFIX} prefix: did you mean {unprefixed[0]}? "
                f"the known ones are {', '.join(known)}"
            )
        if key.startswith(CONTEXT_PREFIX) and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ContextError(f"unknown context key {key}: {hint}the known ones are {', '.join(known)}")


def build(app: App) -> DupcheckStack:
    """Add the stack and the nag checks to `app`; the tests call this too."""
    check_keys(app.node.get_all_context())
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


def context_pair(text: str) -> tuple[str, str]:
    """`KEY=VALUE` as the CDK CLI's `-c` takes it: the value is a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def project_context(pairs: Sequence[tuple[str, str]] = (), root: Path = _ROOT) -> dict[str, Any]:
    """The context `cdk synth -c KEY=VALUE ...` would pass from `root`: the CLI's defaults, then
    cdk.context.json (cached lookups), cdk.json's `context`, and the `-c` pairs, later ones winning."""
    cached = root / "cdk.context.json"
    return {
        **CLI_DEFAULTS,
        **(json.loads(cached.read_text()) if cached.is_file() else {}),
        **json.loads((root / "cdk.json").read_text()).get("context", {}),
        **dict(pairs),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.app", description="Synthesise the dupcheck stack.")
    parser.add_argument(
        "-c", "--context", type=context_pair, action="append", default=[], metavar="KEY=VALUE",
        help="a context value, as `cdk -c` takes it (repeatable)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, default=_ROOT / "cdk.out", help="the cloud assembly's folder")
    args = parser.parse_args(argv)
    if "CDK_CONTEXT_JSON" in os.environ or "CDK_OUTDIR" in os.environ:
        if args.context:
            parser.error("run by the CDK CLI: give -c to `cdk`, which passes it on")
        app = App()  # the CLI passes the merged context and the outdir
    else:
        app = App(context=project_context(args.context), outdir=str(args.output))
    try:
        build(app)
    except ValueError as exc:  # an unknown key (ContextError) or a bad value
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    app.synth()


if __name__ == "__main__":
    main()
