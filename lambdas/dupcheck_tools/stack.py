"""What a deployed dupcheck stack says about itself: its CloudFormation outputs.

CDK gives the records table a generated name (`Dupcheck-HashesTable...`), so tools that write
to it (the backfill notebook) read the name from the stack's `TableName` output rather than
guess it; `dupcheck-hashes` is the OpenSearch index, not the table.
"""

from __future__ import annotations

from typing import Any

from dupcheck_tools.catalog import CatalogError

# infra/app.py's default stack name (cdk.json's `dupcheck:stackName` context changes it).
STACK_NAME = "Dupcheck"
TABLE_OUTPUT = "TableName"


def stack_output(key: str, *, stack: str = STACK_NAME, region: str | None = None, client: Any = None) -> str:
    """One output of a stack (`aws cloudformation describe-stacks`), from the standard AWS
    settings (region, credentials, AWS_ENDPOINT_URL). Raises CatalogError (a usage error) when
    the stack or the output is not there."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or boto3.client("cloudformation", region_name=region or None)
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise CatalogError(f"cannot read the stack {stack!r}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for s in stacks for o in s.get("Outputs", [])}
    if key not in outputs:
        raise CatalogError(f"the stack {stack!r} has no output {key!r} (it has: {', '.join(outputs) or 'none'})")
    return str(outputs[key])
