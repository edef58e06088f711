"""template.yaml's PhotoEventDelivery: direct S3 notifications, EventBridge, or an SQS queue with a redrive policy.

Each choice is deployed into moto (no other stack is active in this module: bucket names are per account); with
``sqs``, a real upload's notification, as moto puts it on the queue, goes through the service as the SQS batch
Lambda would receive.
"""

from __future__ import annotations

import json

import boto3
import pytest
from ingest_stack import REGION, TEMPLATE

from infra.localstack.cloudformation import deploy_stack, expand_sam

FUNCTION = "ClassifyImageFunction"


def _deploy(delivery: str):  # type: ignore[no-untyped-def]
    return deploy_stack(
        TEMPLATE, stack_name=f"ImageLift-{delivery}", region=REGION, parameters={"PhotoEventDelivery": delivery}
    )


@pytest.mark.parametrize("delivery", ["direct", "eventbridge", "sqs"])
def test_each_delivery_expands_to_its_own_resources(delivery: str) -> None:
    from infra.localstack.cloudformation import choose_conditions

    chosen = choose_conditions(
        expand_sam(TEMPLATE, parameters={"PhotoEventDelivery": delivery}), {"PhotoEventDelivery": delivery}
    )
    resources = chosen["Resources"]
    present = {name for name in resources if name.startswith(("ClassifyInvokeFrom", "PhotoEvents"))}
    expected = {
        "direct": {"ClassifyInvokeFromS3Permission"},
        "eventbridge": {"PhotoEventsRule", "ClassifyInvokeFromEventBridgePermission", "PhotoEventsRuleFailuresPolicy"},
        "sqs": {"PhotoEventsQueue", "PhotoEventsQueuePolicy", "PhotoEventsQueueSource"},
    }[delivery]
    assert present == expected
    notification = resources["UploadsBucket"]["Properties"]["NotificationConfiguration"]
    assert (
        set(notification)
        == {
            "direct": {"LambdaConfigurations"},
            "eventbridge": {"EventBridgeConfiguration"},
            "sqs": {"QueueConfigurations"},
        }[delivery]
    )
    role_policies = json.dumps(resources[f"{FUNCTION}Role"]["Properties"]["Policies"])
    assert ("sqs:ReceiveMessage" in role_policies) == (delivery == "sqs")


def test_eventbridge_delivery_on_moto(dummy_aws_env) -> None:  # type: ignore[no-untyped-def]
    from moto import mock_aws

    with mock_aws():
        info = _deploy("eventbridge")
        s3 = boto3.client("s3", region_name=REGION)
        config = s3.get_bucket_notification_configuration(Bucket=info.physical("UploadsBucket"))
        # moto accepts EventBridgeConfiguration but does not report it back; no S3 -> Lambda or SQS is left
        assert "LambdaFunctionConfigurations" not in config and "QueueConfigurations" not in config
        rule = boto3.client("events", region_name=REGION).describe_rule(Name=info.physical("PhotoEventsRule"))
        pattern = json.loads(rule["EventPattern"])
        assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
        assert pattern["detail"]["object"]["key"] == [{"prefix": "images/"}]


def test_sqs_delivery_on_moto_classifies_a_real_notification(dummy_aws_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from moto import mock_aws
    from test_ingest_records import FakeClassifier

    from imagelift.services.classify_service import ClassifyService

    with mock_aws():
        info = _deploy("sqs")
        for name, value in info.function_env[FUNCTION].items():
            monkeypatch.setenv(name, value)
        s3, sqs = boto3.client("s3", region_name=REGION), boto3.client("sqs", region_name=REGION)
        queue_url = info.physical("PhotoEventsQueue")
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        failures_arn = sqs.get_queue_attributes(
            QueueUrl=info.physical("ClassifyFailuresQueue"), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        assert redrive == {"deadLetterTargetArn": failures_arn, "maxReceiveCount": 3}
        config = s3.get_bucket_notification_configuration(Bucket=info.physical("UploadsBucket"))
        assert "LambdaFunctionConfigurations" not in config
        assert {q["QueueArn"] for q in config["QueueConfigurations"]} == {attrs["QueueArn"]}

        lambda_client = boto3.client("lambda", region_name=REGION)
        (mapping,) = lambda_client.list_event_source_mappings(FunctionName=info.physical(FUNCTION))[
            "EventSourceMappings"
        ]
        assert mapping["EventSourceArn"] == attrs["QueueArn"] and mapping["BatchSize"] == 10
        # moto would hand each message to a Docker Lambda it cannot run (and its queue keeps the mapping after a
        # delete): here the service is the consumer
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
        from moto.sqs.models import sqs_backends

        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        queue = sqs_backends[account][REGION].queues[queue_url.rsplit("/", 1)[-1]]
        queue.lambda_event_source_mappings.clear()

        s3.put_object(Bucket=info.physical("UploadsBucket"), Key="images/P-Q/L-1/shoe.jpg", Body=b"SHOE")
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        batch = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": attrs["QueueArn"],
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }
        service = ClassifyService.from_env(classifier=FakeClassifier())
        response, summary = service.handle_delivery(batch)
        assert response == {"batchItemFailures": []}
        assert summary.counts.get("classified") == 1
