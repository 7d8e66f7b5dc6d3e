"""The duplicate gate's claims table in the template: keyed as the adapter writes it, its leftovers
expiring, kept with the stack (it holds kept images' holds), and written by exactly the
functions that claim, commit, hold or confirm (adapters/dynamodb_claims.py)."""

from __future__ import annotations

from aws_cdk.assertions import Template
from test_imports_infra import granted  # pytest's own copies
from test_stack import (
    FIND_SIMILAR_HANDLER,
    IMPORT_DISPATCH_HANDLER,
    IMPORT_WORKER_HANDLER,
    SCAN_HANDLER,
    STREAM_SYNC_HANDLER,
    function,
    owned,
)

from dupcheck.core.settings import Settings


def claims_table(template: Template) -> str:
    return owned(template, "AWS::DynamoDB::Table", "GateClaims")


def test_the_table_is_keyed_as_the_adapter_writes_it_expires_leftovers_and_is_kept(template: Template) -> None:
    resource = template.to_json()["Resources"][claims_table(template)]
    properties = resource["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}]  # fmt: skip
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_writers_the_dispatcher_and_stream_sync_know_and_write_it_and_the_scan_does_not(template: Template) -> None:
    table = claims_table(template)
    arn = str({"Fn::GetAtt": [table, "Arn"]})
    for handler in (FIND_SIMILAR_HANDLER, IMPORT_WORKER_HANDLER, IMPORT_DISPATCH_HANDLER, STREAM_SYNC_HANDLER):
        env = function(template, handler)[1]["Properties"]["Environment"]["Variables"]
        assert env[Settings.env_name("claims_table")] == {"Ref": table}, handler
        # Claims, commits (transactions of their items), holds and confirmations.
        needed = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query",
                  "dynamodb:ConditionCheckItem", "dynamodb:BatchGetItem"}  # fmt: skip
        assert needed <= granted(template, handler)[arn], handler
    assert arn not in granted(template, SCAN_HANDLER)
