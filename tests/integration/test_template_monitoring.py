"""template.yaml's monitoring and deploy hygiene, in the stack moto creates from it: alarms to one topic, log
retention, the dashboard, retained data, the invoke permission's SourceArn, listing under the images prefix only,
reserved concurrency as a parameter."""

from __future__ import annotations

import ast
import json
from typing import Any

import boto3
import pytest
from ingest_stack import REGION, TEMPLATE, DeployedStack

from infra.localstack.cloudformation import deploy_stack, expand_sam, load_template, local_alarm_name

DATA_RESOURCES = ("UploadsBucket", "DataBucket", "ImageCategoriesTable", "InfluenceReportsTable")


def alarms_by_id(info: Any) -> dict[str, dict[str, Any]]:
    """Logical id -> the alarm, for every alarm the template declares (all must exist)."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    declared = [
        logical for logical, r in load_template(TEMPLATE)["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    return {logical: alarms[local_alarm_name(info.stack_name, logical)] for logical in declared}


def dimensions(alarm: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def queue_name(info: Any, logical: str) -> str:
    return info.physical(logical).rsplit("/", 1)[-1]


# ------------------------------------------------------------------ item 1: monitoring


def test_every_alarm_notifies_the_topic_when_it_fires_and_clears(stack: DeployedStack):
    alarms = alarms_by_id(stack.info)
    topic = stack.info.outputs["AlarmTopicArn"]
    assert topic == stack.info.physical("AlarmTopic")
    assert len(alarms) == 7
    for logical, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], logical
        assert alarm["TreatMissingData"] == "notBreaching", logical  # quiet weeks are not incidents
        assert alarm["AlarmDescription"], logical


@pytest.mark.parametrize("queue", ["ClassifyFailuresQueue", "ReportFailuresQueue"])
def test_each_failure_queue_alarms_on_its_first_visible_message(stack: DeployedStack, queue: str):
    watching = [
        a
        for a in alarms_by_id(stack.info).values()
        if a["Namespace"] == "AWS/SQS" and dimensions(a) == {"QueueName": queue_name(stack.info, queue)}
    ]
    assert len(watching) == 1, f"no alarm watches {queue}"
    alarm = watching[0]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1.0, "GreaterThanOrEqualToThreshold")


@pytest.mark.parametrize("function", ["ClassifyImageFunction", "InfluenceReportFunction"])
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_function_alarms_on_errors_and_throttles(stack: DeployedStack, function: str, metric: str):
    name = stack.info.physical(function)
    watching = [
        a
        for a in alarms_by_id(stack.info).values()
        if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == metric and dimensions(a) == {"FunctionName": name}
    ]
    assert len(watching) == 1, f"no {metric} alarm on {function}"
    assert watching[0]["Statistic"] == "Sum" and watching[0]["Threshold"] == 1.0


def test_rejected_share_alarm_watches_the_metric_the_report_emits(stack: DeployedStack):
    """The alarm's namespace, name and dimension are those of the report's own EMF output (test_report_handler)."""
    from imagelift.services.report_metrics import REJECTED_SHARE_METRIC

    alarm = alarms_by_id(stack.info)["ReportRejectedRowsAlarm"]
    globals_env = load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    report_env = stack.info.function_env["InfluenceReportFunction"]
    assert alarm["Namespace"] == globals_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["MetricName"] == REJECTED_SHARE_METRIC
    assert dimensions(alarm) == {"service": report_env["POWERTOOLS_SERVICE_NAME"]}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (5.0, "GreaterThanThreshold")


def test_log_groups_of_both_functions_have_the_retention(stack: DeployedStack):
    logs = boto3.client("logs", region_name=REGION)
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]}
    for function in ("ClassifyImageFunction", "InfluenceReportFunction"):
        group = groups[f"/aws/lambda/{stack.info.physical(function)}"]
        assert group["retentionInDays"] == 90, function


def test_dashboard_shows_both_functions_queues_and_report_metrics(stack: DeployedStack):
    from imagelift.services.report_metrics import REJECTED_SHARE_METRIC

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    name = stack.info.outputs["DashboardName"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    text = json.dumps(body)
    assert len(body["widgets"]) >= 4
    assert f'"{stack.info.physical("ClassifyImageFunction")}"' in text
    for queue in ("ClassifyFailuresQueue", "ReportFailuresQueue"):
        assert f'"{queue_name(stack.info, queue)}"' in text
    assert f'"{REJECTED_SHARE_METRIC}"' in text and '"records_classified"' in text
    assert "${" not in text, "a substitution was left unresolved"


def test_no_mail_subscription_without_an_address(stack: DeployedStack):
    sns = boto3.client("sns", region_name=REGION)
    topic = stack.info.outputs["AlarmTopicArn"]
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


# ------------------------------------------------------------------ item 2: deploy hygiene


def test_data_is_retained_and_tables_protected(stack: DeployedStack):
    template = load_template(TEMPLATE)["Resources"]
    for logical in DATA_RESOURCES:
        assert template[logical]["DeletionPolicy"] == "Retain", logical
        assert template[logical]["UpdateReplacePolicy"] == "Retain", logical
    for table in ("ImageCategoriesTable", "InfluenceReportsTable"):
        described = stack.dynamodb.describe_table(TableName=stack.info.physical(table))["Table"]
        assert described["DeletionProtectionEnabled"] is True, table
        with pytest.raises(stack.dynamodb.exceptions.ClientError, match="DeletionProtectionEnabled"):
            stack.dynamodb.delete_table(TableName=stack.info.physical(table))


def test_only_the_uploads_bucket_of_this_account_may_invoke_the_classifier(stack: DeployedStack):
    lam = boto3.client("lambda", region_name=REGION)
    policy = json.loads(lam.get_policy(FunctionName=stack.info.physical("ClassifyImageFunction"))["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": f"arn:aws:s3:::{stack.uploads_bucket}"},
        "StringEquals": {"AWS:SourceAccount": "123456789012"},
    }
    expanded = expand_sam(TEMPLATE)["Resources"]
    s3_permissions = [
        logical
        for logical, r in expanded.items()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["Principal"] == "s3.amazonaws.com"
    ]
    assert s3_permissions == ["ClassifyImageInvokeFromUploads"]  # no SAM S3 event adds one without SourceArn
    assert expanded["UploadsBucket"]["DependsOn"] == "ClassifyImageInvokeFromUploads"


def test_the_classifier_lists_only_under_the_images_prefix(stack: DeployedStack):
    iam = boto3.client("iam", region_name=REGION)
    role = stack.info.physical("ClassifyImageFunctionRole")
    listing = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto's CloudFormation stores the dict's repr, AWS returns JSON
            document = ast.literal_eval(document) if document.startswith("{'") else json.loads(document)
        listing += [s for s in document["Statement"] if "s3:ListBucket" in json.dumps(s["Action"])]
    assert len(listing) == 1
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["images/", "images/*"]}}


def test_no_reserved_concurrency_by_default(stack: DeployedStack):
    lam = boto3.client("lambda", region_name=REGION)
    concurrency = lam.get_function_concurrency(FunctionName=stack.info.physical("ClassifyImageFunction"))
    assert "ReservedConcurrentExecutions" not in concurrency


def test_monitoring_and_hygiene_parameters_reach_the_stack(dummy_aws_env):
    from moto import mock_aws

    with mock_aws():
        info = deploy_stack(
            TEMPLATE,
            stack_name="ImageLift-Ops",
            region=REGION,
            parameters={
                "BucketNamePrefix": "ops-test",
                "AlarmEmail": "oncall@example.com",
                "LogRetentionDays": "14",
                "ReportRejectedSharePercent": "2",
                "TableDeletionProtection": "false",
                "ClassifyReservedConcurrency": "25",
            },
        )
        sns = boto3.client("sns", region_name=REGION)
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=info.outputs["AlarmTopicArn"])["Subscriptions"]
        logs = boto3.client("logs", region_name=REGION)
        retention = {
            g["logGroupName"]: g["retentionInDays"]
            for function in ("ClassifyImageFunction", "InfluenceReportFunction")
            for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{info.physical(function)}")["logGroups"]
        }
        rejected = alarms_by_id(info)["ReportRejectedRowsAlarm"]
        ddb = boto3.client("dynamodb", region_name=REGION)
        protection = ddb.describe_table(TableName=info.physical("ImageCategoriesTable"))["Table"]
        lam = boto3.client("lambda", region_name=REGION)
        concurrency = lam.get_function_concurrency(FunctionName=info.physical("ClassifyImageFunction"))
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall@example.com")]
    assert set(retention.values()) == {14} and len(retention) == 2
    assert rejected["Threshold"] == 2.0
    assert protection["DeletionProtectionEnabled"] is False
    assert concurrency["ReservedConcurrentExecutions"] == 25
