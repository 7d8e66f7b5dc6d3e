"""CloudWatch alarms for what needs a human, all sent to one encrypted SNS topic.

- the DLQ holds any message: a stream record could not be indexed (search results are stale);
- the imports' DLQ holds any message: a start or a row no function could handle (the job stalls);
- the products' DLQ holds any message: a record's picture could not be embedded and indexed;
- a function reported errors (unhandled exceptions, timeouts);
- the API answered 5XX of its own for a noticeable share of requests: API Gateway's 5XX count
  less the answers that blame an image or catalog host (502 `upstream_error`, 504
  `upstream_timeout`, which the function counts as `UpstreamFaults`), so a caller's bad image URL
  never pages anyone; what is left is the service's own faults (index or store unavailable,
  an unhandled error, a timeout, a throttled function). A single one is not an incident; a
  sustained rate is;
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

from dupcheck.observability import NAMESPACE, SERVICE, UPSTREAM_FAULTS_METRIC

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
        products_dlq: sqs.IQueue | None = None,
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
        if products_dlq is not None:
            add(
                "ProductsDlqNotEmpty",
                "Stream records failed to reach the product index (similar products miss them); see docs/deploy.md",
                products_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            )
        for name, function in functions.items():
            add(
                f"{name}Errors",
                f"The {name} function reported errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
            )
        add(
            "Api5xx",
            "More than 5% of API requests returned a 5XX of the service's own for 15 minutes "
            "(an image host's failures are left out); see docs/deploy.md",
            api_own_5xx_rate(rest_api),
            threshold=API_5XX_RATE,
            periods=API_5XX_PERIODS,
        )
        add(
            "ClusterRed",
            "OpenSearch cluster status is red",
            domain.metric_cluster_status_red(period=Duration.minutes(1), statistic="Maximum"),
            missing=cloudwatch.TreatMissingData.MISSING,
        )


def api_own_5xx_rate(rest_api: apigw.RestApi) -> cloudwatch.MathExpression:
    """The share of requests answered with a 5XX that is the service's fault (module doc)."""
    upstream = cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=UPSTREAM_FAULTS_METRIC,
        dimensions_map={"service": SERVICE},  # Powertools' default dimension
        statistic="Sum",
        period=PERIOD,
    )
    return cloudwatch.MathExpression(
        # FILL: a period without any upstream fault (or without any 5XX) publishes no data point.
        expression="IF(FILL(requests, 0) > 0, (FILL(errors, 0) - FILL(upstream, 0)) / FILL(requests, 1), 0)",
        using_metrics={
            "errors": rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            "upstream": upstream,
            "requests": rest_api.metric_count(period=PERIOD, statistic="Sum"),
        },
        label="API 5XX of the service's own, share of requests",
        period=PERIOD,
    )
