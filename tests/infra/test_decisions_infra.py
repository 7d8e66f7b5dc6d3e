"""The decisions table's part of the template: its keys and indexes as the adapter queries them,
kept with the stack and restorable, and only the API function may touch it."""

from __future__ import annotations

from aws_cdk.assertions import Template
from test_imports_infra import granted  # pytest's own copies
from test_stack import FIND_SIMILAR_HANDLER, SCAN_HANDLER, function, owned

from dupcheck.adapters.dynamodb_decisions import MEMBER_INDEX, RECENT_INDEX
from dupcheck.core.settings import Settings


def decisions_table(template: Template) -> str:
    return owned(template, "AWS::DynamoDB::Table", "DuplicateDecisions")


def test_the_table_has_the_keys_and_indexes_the_adapter_queries(template: Template) -> None:
    resource = template.to_json()["Resources"][decisions_table(template)]
    properties = resource["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "decision_id", "KeyType": "HASH"},
                                       {"AttributeName": "item", "KeyType": "RANGE"}]  # fmt: skip
    indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"]["ProjectionType"])
               for i in properties["GlobalSecondaryIndexes"]}  # fmt: skip
    assert indexes == {
        RECENT_INDEX: ([{"AttributeName": "listed", "KeyType": "HASH"},
                        {"AttributeName": "position", "KeyType": "RANGE"}], "ALL"),
        MEMBER_INDEX: ([{"AttributeName": "member", "KeyType": "HASH"},
                        {"AttributeName": "decision_id", "KeyType": "RANGE"}], "KEYS_ONLY"),
    }  # fmt: skip
    assert properties["BillingMode"] == "PAY_PER_REQUEST" and "TimeToLiveSpecification" not in properties


def test_decisions_are_the_shops_record_kept_with_the_stack_and_restorable(template: Template) -> None:
    resource = template.to_json()["Resources"][decisions_table(template)]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = resource["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True


def test_the_api_knows_the_table_and_alone_may_read_and_write_it(template: Template) -> None:
    table = decisions_table(template)
    env = function(template, FIND_SIMILAR_HANDLER)[1]["Properties"]["Environment"]["Variables"]
    assert env[Settings.env_name("decisions_table")] == {"Ref": table}
    arn = str({"Fn::GetAtt": [table, "Arn"]})
    api = granted(template, FIND_SIMILAR_HANDLER)
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem"} <= api[arn]  # fmt: skip
    assert "dynamodb:Query" in api[str({"Fn::Join": ["", [{"Fn::GetAtt": [table, "Arn"]}, "/index/*"]]})]
    assert arn not in granted(template, SCAN_HANDLER)
