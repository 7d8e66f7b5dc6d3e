"""CloudWatch alarms for what needs a human, all sent to one encrypted SNS topic.

- the DLQ holds any message: a stream record could not be indexed (search results are stale);
- the imports' DLQ holds any message: a start or a row no function could handle (the job stalls);
- a function reported errors (unhandled exceptions, timeouts);
- the API returned 5XX for a noticeable share of requests (the API maps upstream failures to
  502/504, so a single 5XX is not an incident; a sustained rate is);
- the OpenSearch cluster is red (a primary shard is unassigned).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)  # SQS and OpenSearch publish at 1-5 minute resolution
API_5XX_RATE = 0.05  # share of requests over 5 minutes; see module docstring
API_5XX_PERIODS = 3  # ... for 3 consecutive periods (15 minutes)


class Alarms(Construct):
    """Alarms on the DLQ, each function's errors, API 5XX rate and cluster health."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dlq: sqs.IQueue,
        import_dlq: sqs.IQueue | None = None,
        functions: Mapping[str, lambda_.IFunction],
        rest_api: apigw.RestApi,
        domain: opensearch.IDomain,
        email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="dupcheck alarms",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def add(
            name: str,
            description: str,
            metric: cloudwatch.IMetric,
            *,
            threshold: float = 1,
            periods: int = 1,
            missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        ) -> None:
            """An alarm at >= threshold for `periods` periods, notifying on alarm and on recovery."""
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=periods,
                treat_missing_data=missing,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[name] = alarm

        add(
            "DlqNotEmpty",
            "Stream records failed to sync to OpenSearch; see docs/deploy.md",
            dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
        )
        if import_dlq is not None:
            add(
                "ImportsDlqNotEmpty",
                "Import messages could not be handled (a start or rows): their jobs cannot finish; see docs/deploy.md",
                import_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            )
        for name, function in functions.items():
            add(
                f"{name}Errors",
                f"The {name} function reported errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
            )
        add(
            "Api5xx",
            "More than 5% of API requests returned 5XX for 15 minutes",
            # Average of the 0/1 5XXError metric is the share of requests that failed.
            rest_api.metric_server_error(period=PERIOD, statistic="Average"),
            threshold=API_5XX_RATE,
            periods=API_5XX_PERIODS,
        )
        add(
            "ClusterRed",
            "OpenSearch cluster status is red",
            domain.metric_cluster_status_red(period=Duration.minutes(1), statistic="Maximum"),
            missing=cloudwatch.TreatMissingData.MISSING,
        )
