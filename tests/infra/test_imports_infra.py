"""The imports' part of the template: jobs table, bucket and its events, queues and their DLQ,
dispatcher and worker (batching, partial failures, concurrency), permissions, alarm, outputs."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template
from test_stack import FIND_SIMILAR_HANDLER, actions, function, owned, records_table, role_id  # pytest's own copy

from dupcheck.core.settings import Settings
from tests.infra.conftest import synth

DISPATCH = "dupcheck.handlers.import_dispatch.handler"
WORKER = "dupcheck.handlers.import_worker.handler"


def queue(template: Template, name: str) -> str:
    return owned(template, "AWS::SQS::Queue", f"Imports{name}")


def granted(template: Template, handler: str) -> dict[str, set[str]]:
    """Resource (as text) -> actions, for every statement of the handler's role."""
    role = role_id(template, handler)
    out: dict[str, set[str]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                resources = statement["Resource"]
                for resource in resources if isinstance(resources, list) else [resources]:
                    out.setdefault(str(resource), set()).update(actions(statement))
    return out


def objects(template: Template, prefix: str) -> str:
    bucket = owned(template, "AWS::S3::Bucket", "ImportsBucket")
    return str({"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{prefix}*"]]})


def test_the_jobs_table_is_keyed_by_job_and_item_lists_recent_jobs_and_expires(template: Template) -> None:
    table = owned(template, "AWS::DynamoDB::Table", "ImportsJobsTable")
    properties = template.to_json()["Resources"][table]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"},
                                       {"AttributeName": "item", "KeyType": "RANGE"}]  # fmt: skip
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "recent"
    assert index["KeySchema"] == [{"AttributeName": "listed", "KeyType": "HASH"},
                                  {"AttributeName": "created_at", "KeyType": "RANGE"}]  # fmt: skip


def test_the_bucket_is_private_encrypted_retained_and_announces_new_catalogs(template: Template) -> None:
    bucket = owned(template, "AWS::S3::Bucket", "ImportsBucket")
    resource = template.to_json()["Resources"][bucket]
    properties = resource["Properties"]
    assert resource["DeletionPolicy"] == "Retain"  # kept images are records' pictures
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # fmt: skip
    assert properties["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}
    assert (rules["CatalogsExpire"]["Prefix"], rules["CatalogsExpire"]["ExpirationInDays"]) == ("catalogs/", 30)
    # The web app posts a catalog to its presigned form, and fetches a results CSV from its presigned link.
    assert properties["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"] == ["POST", "GET"]
    assert (rules["ExportsExpire"]["Prefix"], rules["ExportsExpire"]["ExpirationInDays"]) == ("exports/", 1)
    template.has_resource_properties("AWS::S3::BucketPolicy", {"Bucket": {"Ref": bucket}, "PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({"Effect": "Deny", "Condition": {
            "Bool": {"aws:SecureTransport": "false"}}})])}})  # fmt: skip

    (rule,) = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Ref": bucket}]}, "object": {"key": [{"prefix": "catalogs/"}]}}}  # fmt: skip
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue(template, "StartsQueue"), "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue(template, "DeadLetterQueue"), "Arn"]}}


def test_both_queues_are_encrypted_and_send_what_fails_five_times_to_the_dlq(template: Template) -> None:
    resources = template.to_json()["Resources"]
    dlq = queue(template, "DeadLetterQueue")
    visibility = {"StartsQueue": 16 * 60, "RowsQueue": 6 * 60}  # over the dispatcher's 15 min; 6 x the worker's 60 s
    for name, seconds in visibility.items():
        properties = resources[queue(template, name)]["Properties"]
        assert properties["SqsManagedSseEnabled"] is True and properties["VisibilityTimeout"] == seconds
        redrive = {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}, "maxReceiveCount": 5}
        assert properties["RedrivePolicy"] == redrive
    assert resources[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    for name in ("StartsQueue", "RowsQueue", "DeadLetterQueue"):
        template.has_resource_properties("AWS::SQS::QueuePolicy", {"Queues": [{"Ref": queue(template, name)}],
            "PolicyDocument": {"Statement": Match.array_with([Match.object_like({"Effect": "Deny"})])}})  # fmt: skip


def test_the_dispatcher_takes_one_start_at_a_time_for_up_to_15_minutes(template: Template) -> None:
    name, dispatcher = function(template, DISPATCH)
    assert (dispatcher["Properties"]["Timeout"], dispatcher["Properties"]["MemorySize"]) == (900, 1024)
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": name}, "EventSourceArn": {"Fn::GetAtt": [queue(template, "StartsQueue"), "Arn"]},
        "BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"]})  # fmt: skip


def test_the_worker_takes_batches_reports_partial_failures_and_is_capped(template: Template) -> None:
    name, worker = function(template, WORKER)
    assert (worker["Properties"]["Timeout"], worker["Properties"]["ReservedConcurrentExecutions"]) == (60, 10)
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": name}, "EventSourceArn": {"Fn::GetAtt": [queue(template, "RowsQueue"), "Arn"]},
        "BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 10}})  # fmt: skip


def test_the_concurrency_comes_from_context(dev: tuple[Stack, Template]) -> None:
    _, template = dev
    name, worker = function(template, WORKER)
    assert worker["Properties"]["ReservedConcurrentExecutions"] == 4
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": name}, "ScalingConfig": {"MaximumConcurrency": 4}})  # fmt: skip
    with pytest.raises(Exception, match="at least 2"):
        synth(**{"dupcheck:importConcurrency": "1"})


@pytest.mark.parametrize("handler", [FIND_SIMILAR_HANDLER, DISPATCH, WORKER])
def test_the_functions_of_imports_are_told_where_everything_is(template: Template, handler: str) -> None:
    env = function(template, handler)[1]["Properties"]["Environment"]["Variables"]
    expected = {
        "imports_table": {"Ref": owned(template, "AWS::DynamoDB::Table", "ImportsJobsTable")},
        "imports_bucket": {"Ref": owned(template, "AWS::S3::Bucket", "ImportsBucket")},
        "import_starts_queue_url": {"Ref": queue(template, "StartsQueue")},
        "import_rows_queue_url": {"Ref": queue(template, "RowsQueue")},
        "table_name": {"Ref": records_table(template)},
    }
    assert {name: env[Settings.env_name(name)] for name in expected} == expected
    deployed = {k: "resolved-at-deploy" for k, v in env.items() if k.startswith("DUPCHECK_") and not isinstance(v, str)}
    settings = Settings.from_env({**{k: v for k, v in env.items() if isinstance(v, str)}, **deployed})
    assert settings.store == "dynamodb" and settings.imports_table


def test_each_function_may_touch_only_what_it_uses(template: Template) -> None:
    jobs = str({"Fn::GetAtt": [owned(template, "AWS::DynamoDB::Table", "ImportsJobsTable"), "Arn"]})
    records = str({"Fn::GetAtt": [records_table(template), "Arn"]})
    starts, rows = (str({"Fn::GetAtt": [queue(template, n), "Arn"]}) for n in ("StartsQueue", "RowsQueue"))
    catalogs, images = objects(template, "catalogs/"), objects(template, "images/")
    read_write = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"}

    api = granted(template, FIND_SIMILAR_HANDLER)
    assert read_write <= api[jobs]
    assert api[catalogs] == {"s3:GetObject", "s3:PutObject"}  # signs upload forms
    # Keeps pictures (tagged unclaimed), deletes one on request; lists images/ alone (a missing one is a 404).
    assert api[images] == {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"}
    assert "sqs:SendMessage" in api[starts] and rows not in api
    # Writes results CSVs a part at a time (their progress beside them) and signs their links.
    exports = objects(template, "exports/")
    assert api[exports] == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListMultipartUploadParts"}
    assert all(exports not in granted(template, handler) for handler in (DISPATCH, WORKER))

    dispatcher = granted(template, DISPATCH)
    assert read_write <= dispatcher[jobs] and records not in dispatcher and images not in dispatcher
    assert dispatcher[catalogs] == {"s3:GetObject", "s3:PutObject"}
    assert "sqs:SendMessage" in dispatcher[rows] and "sqs:SendMessage" in dispatcher[starts]
    assert "sqs:ReceiveMessage" in dispatcher[starts] and "sqs:DeleteMessage" in dispatcher[starts]

    worker = granted(template, WORKER)
    assert read_write <= worker[jobs] and {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"} <= worker[records]
    assert worker[images] == {"s3:GetObject"} and catalogs not in worker  # reads kept images, writes nothing there
    assert "sqs:ReceiveMessage" in worker[rows] and "sqs:SendMessage" not in str(worker.get(rows))


def test_kept_pictures_no_record_claimed_expire_and_stream_sync_deletes_the_last_records(template: Template) -> None:
    bucket = owned(template, "AWS::S3::Bucket", "ImportsBucket")
    rules = {rule["Id"]: rule for rule in
             template.to_json()["Resources"][bucket]["Properties"]["LifecycleConfiguration"]["Rules"]}  # fmt: skip
    unclaimed = rules["UnclaimedPicturesExpire"]
    # Only pictures still tagged unclaimed, under images/ alone: a claimed one has lost the tag.
    assert unclaimed["Status"] == "Enabled" and unclaimed["ExpirationInDays"] == 1
    assert unclaimed["Prefix"] == "images/"
    assert unclaimed["TagFilters"] == [{"Key": "dupcheck-kept", "Value": "unclaimed"}]

    sync = granted(template, "dupcheck.handlers.stream_sync.handler")
    images = objects(template, "images/")
    assert sync[images] == {"s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectTagging"}
    assert objects(template, "catalogs/") not in sync
    # It asks the records' index by picture, and reads the record just changed; it writes no record.
    records = {"Fn::GetAtt": [records_table(template), "Arn"]}
    index = str({"Fn::Join": ["", [records, "/index/*"]]})
    assert sync[str(records)] == sync[index] == {"dynamodb:Query", "dynamodb:GetItem"}
    listing = sync[str({"Fn::GetAtt": [bucket, "Arn"]})]
    assert listing == {"s3:ListBucket"}


def test_an_alarm_watches_the_imports_dlq_and_both_functions(template: Template) -> None:
    dlq = queue(template, "DeadLetterQueue")
    alarms = [a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()]
    (dlq_alarm,) = [a for a in alarms if a.get("Dimensions") == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]]  # fmt: skip
    assert (dlq_alarm["MetricName"], dlq_alarm["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 1)
    errors = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms if a.get("MetricName") == "Errors"}
    assert {function(template, DISPATCH)[0], function(template, WORKER)[0]} <= errors


def test_outputs_name_the_bucket_and_the_dlq(template: Template) -> None:
    outputs: dict[str, Any] = template.to_json()["Outputs"]
    assert outputs["ImportsBucketName"]["Value"] == {"Ref": owned(template, "AWS::S3::Bucket", "ImportsBucket")}
    assert outputs["ImportsDeadLetterQueueUrl"]["Value"] == {"Ref": queue(template, "DeadLetterQueue")}
