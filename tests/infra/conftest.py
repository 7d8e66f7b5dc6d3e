"""Synthesises the stack once per session, without bundling (no pip, no network).

`aws:cdk:bundling-stacks = []` makes CDK stage the Lambda source as-is instead of running the
local pip bundler; the template is otherwise identical to a real synth.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.app import build, project_context

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


def synth(**context: Any) -> tuple[Stack, Template]:
    """Same context as `make synth` and `cdk synth` (cdk.json's, the CLI's defaults), plus
    overrides, minus bundling."""
    app = App(context={**project_context(), **NO_BUNDLING, **context})
    stack = build(app)
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="session")
def prod() -> tuple[Stack, Template]:
    """The default (prod profile) stack."""
    return synth()


@pytest.fixture(scope="session")
def stack(prod: tuple[Stack, Template]) -> Stack:
    return prod[0]


@pytest.fixture(scope="session")
def template(prod: tuple[Stack, Template]) -> Template:
    return prod[1]


@pytest.fixture(scope="session")
def dev() -> tuple[Stack, Template]:
    """The cheap dev profile, with a few context values passed as strings like `cdk -c` does."""
    return synth(
        **{
            "dupcheck:profile": "dev",
            "dupcheck:apiRateLimit": "5",
            "dupcheck:alarmEmail": "ops@example.com",
            "dupcheck:apiKeyVersion": "2",
            "dupcheck:importConcurrency": "4",
        }
    )
