"""template.yaml: lint, no dependency cycles, and what the deployed stack really holds (moto, in process and server)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import boto3
import pytest
from ingest_stack import REGION, ROOT, TEMPLATE, DeployedStack

from imagelift.config import StorageConfig, VisionConfig
from infra.localstack.cloudformation import deploy_stack, expand_sam, load_template

FUNCTION = "ClassifyImageFunction"


# ------------------------------------------------------------------ static checks


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--include-checks", "I", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _references(value: Any) -> set[str]:
    """Logical ids a property value refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for fn, arg in value.items():
            if fn == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif fn == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif fn == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if not isinstance(arg, str):
                    found.update(_references(arg[1]))
            else:
                found.update(_references(arg))
    elif isinstance(value, list):
        for item in value:
            found.update(_references(item))
    return found


def dependency_cycle(template: dict[str, Any]) -> list[str] | None:
    """A cycle among the resources of a (SAM-expanded) template, or None."""
    resources = template["Resources"]
    graph = {}
    for logical, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        graph[logical] = {r for r in _references(resource.get("Properties", {})) | set(depends) if r in resources}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_expanded_template_has_no_dependency_cycle():
    assert dependency_cycle(expand_sam(TEMPLATE)) is None


def test_cycle_check_catches_the_bucket_function_trap(tmp_path):
    """A function policy that used !Ref UploadsBucket would close bucket -> permission -> function -> role -> bucket."""
    text = TEMPLATE.read_text(encoding="utf-8")
    bad = text.replace(
        'Resource: !Sub "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}-uploads/${ImagesPrefix}*"',
        'Resource: !Sub "arn:${AWS::Partition}:s3:::${UploadsBucket}/${ImagesPrefix}*"',
    )
    assert bad != text
    path = tmp_path / "template.yaml"
    path.write_text(bad, encoding="utf-8")
    cycle = dependency_cycle(expand_sam(path))
    assert cycle is not None and "UploadsBucket" in cycle and "ClassifyImageFunction" in cycle


def test_function_is_a_container_image_built_from_the_dockerfile():
    function = load_template(TEMPLATE)["Resources"][FUNCTION]
    assert function["Properties"]["PackageType"] == "Image"
    metadata = function["Metadata"]
    assert metadata["DockerContext"] == "."
    dockerfile = ROOT / metadata["DockerContext"] / metadata["Dockerfile"]
    text = dockerfile.read_text(encoding="utf-8")
    assert text.startswith("#") and "FROM public.ecr.aws/lambda/python:3.12" in text
    assert "imagelift models build --out /models" in text and "COPY --from=models /models ./models" in text
    assert 'CMD ["app.lambda_handler"]' in text


def test_template_environment_names_are_ones_the_code_reads():
    """Every variable the template sets is read by a config class (or powertools): template and code cannot drift."""
    env = load_template(TEMPLATE)["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    globals_env = load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    vision = {f"{VisionConfig._PREFIX}{f.name.upper()}" for f in fields(VisionConfig)}
    storage = {f.metadata.get("env", f.name.upper()) for f in fields(StorageConfig)}
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    unknown = set(env) | set(globals_env)
    unknown -= vision | storage | powertools
    assert not unknown, f"template sets variables nothing reads: {sorted(unknown)}"
    assert "CATEGORIES_TABLE" in env and "IMAGELIFT_FACE_MIN_CONFIDENCE" in env


# ------------------------------------------------------------------ the deployed stack (moto, in process)


def test_stack_outputs_and_function_environment(stack: DeployedStack):
    outputs = stack.info.outputs
    assert outputs["UploadsBucketName"] == stack.uploads_bucket == "imagelift-123456789012-us-east-1-uploads"
    assert outputs["ImageCategoriesTableName"] == stack.table_name
    assert outputs["DataBucketName"] == stack.info.physical("DataBucket")
    assert outputs["ClassifyImageFunctionArn"].endswith(outputs["ClassifyImageFunctionName"])
    assert stack.env["CATEGORIES_TABLE"] == stack.table_name
    assert stack.env["IMAGELIFT_FACE_MIN_CONFIDENCE"] == ""  # empty parameter: the library default applies
    assert VisionConfig.from_env(stack.env).face_min_confidence == VisionConfig().face_min_confidence


@pytest.mark.parametrize("bucket_id", ["UploadsBucket", "DataBucket"])
def test_buckets_are_private_encrypted_versioned_owner_enforced(stack: DeployedStack, bucket_id: str):
    s3, bucket = stack.s3, stack.info.physical(bucket_id)
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256" and rule["BucketKeyEnabled"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_uploads_under_images_notify_the_function(stack: DeployedStack):
    config = stack.s3.get_bucket_notification_configuration(Bucket=stack.uploads_bucket)
    function_arn = stack.info.outputs["ClassifyImageFunctionArn"]
    notifications = config["LambdaFunctionConfigurations"]
    assert sorted(e for n in notifications for e in n["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    for notification in notifications:
        assert notification["LambdaFunctionArn"] == function_arn
        assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "images/"}]
    policy = json.loads(boto3.client("lambda", region_name=REGION).get_policy(FunctionName=function_arn)["Policy"])
    assert {s["Principal"]["Service"] for s in policy["Statement"]} == {"s3.amazonaws.com"}


def test_categories_table_on_demand_with_pitr_and_encryption(stack: DeployedStack):
    ddb = stack.dynamodb
    table = ddb.describe_table(TableName=stack.table_name)["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True
    backups = ddb.describe_continuous_backups(TableName=stack.table_name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    expanded = expand_sam(TEMPLATE)["Resources"]["ImageCategoriesTable"]["Properties"]
    assert expanded["SSESpecification"] == {"SSEEnabled": True}  # moto does not report SSE; the template asks for it


def test_async_invoke_config_sends_failures_to_the_queue(stack: DeployedStack):
    lam = boto3.client("lambda", region_name=REGION)
    config = lam.get_function_event_invoke_config(FunctionName=stack.info.physical(FUNCTION))
    assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] == 21600
    queue_url = stack.info.physical("ClassifyFailuresQueue")
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == attrs["Attributes"]["QueueArn"]
    assert attrs["Attributes"]["SqsManagedSseEnabled"] == "true"
    assert attrs["Attributes"]["MessageRetentionPeriod"] == "1209600"


def test_function_role_is_least_privilege(stack: DeployedStack):
    iam = boto3.client("iam", region_name=REGION)
    role = stack.info.physical("ClassifyImageFunctionRole")
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto's CloudFormation stores the dict's repr, AWS returns JSON
            document = ast.literal_eval(document) if document.startswith("{'") else json.loads(document)
        statements.extend(document["Statement"])
    table_arn = stack.dynamodb.describe_table(TableName=stack.table_name)["Table"]["TableArn"]
    bucket_arn = f"arn:aws:s3:::{stack.uploads_bucket}"
    allowed = {
        "s3:GetObject": {f"{bucket_arn}/images/*"},
        "s3:GetObjectVersion": {f"{bucket_arn}/images/*"},
        "s3:ListBucket": {bucket_arn},
        "s3:ListBucketVersions": {bucket_arn},
        "dynamodb:GetItem": {table_arn},
        "dynamodb:PutItem": {table_arn},
        "dynamodb:UpdateItem": {table_arn},
        "sqs:SendMessage": {attrs_arn(stack)},
    }
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            granted.setdefault(action, set()).update(resources)
    assert granted == allowed
    managed = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
    template_managed = expand_sam(TEMPLATE)["Resources"]["ClassifyImageFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert set(template_managed) == {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # logs
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # Tracing: Active
    }
    assert managed <= set(template_managed)


def attrs_arn(stack: DeployedStack) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    url = stack.info.physical("ClassifyFailuresQueue")
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_what_moto_cannot_reproduce_is_reported_not_hidden(stack: DeployedStack):
    gaps = "\n".join(stack.info.not_reproduced)
    assert "ClassifyImageFunction: PackageType Image" in gaps
    assert "UploadsBucketPolicy: statement DenyInsecureTransport" in gaps


# ------------------------------------------------------------------ parameters, and a moto server on 127.0.0.1


def test_parameters_reach_the_function_and_its_config(dummy_aws_env):
    from moto import mock_aws

    with mock_aws():
        info = deploy_stack(
            TEMPLATE,
            stack_name="ImageLift-Params",
            region=REGION,
            parameters={
                "BucketNamePrefix": "shoes-test",
                "ClassifyMemorySize": "3008",
                "ClassifyTimeout": "120",
                "ClassifyMaximumRetryAttempts": "1",
                "FaceMinConfidence": "0.95",
                "PersonMinConfidence": "0.6",
                "MaxImageBytes": "5000000",
            },
        )
        lam = boto3.client("lambda", region_name=REGION)
        config = lam.get_function_configuration(FunctionName=info.physical(FUNCTION))
        invoke = lam.get_function_event_invoke_config(FunctionName=info.physical(FUNCTION))
    assert (config["MemorySize"], config["Timeout"], invoke["MaximumRetryAttempts"]) == (3008, 120, 1)
    assert info.physical("UploadsBucket") == "shoes-test-123456789012-us-east-1-uploads"
    vision = VisionConfig.from_env(info.function_env[FUNCTION])
    assert (vision.face_min_confidence, vision.person_min_confidence, vision.max_bytes) == (0.95, 0.6, 5_000_000)


def test_prefix_parameters_reach_filters_policies_and_both_functions(dummy_aws_env):
    """The key prefixes are parameters: a stack with others must filter, authorise and configure by them alone."""
    from moto import mock_aws

    prefixes = {"ImagesPrefix": "photos/in/", "SalesPrefix": "exports/", "ReportsPrefix": "weekly/"}
    prefixes["BucketNamePrefix"] = "prefix-test"  # bucket names are global in moto too
    with mock_aws():
        # its own bucket names: the module's stack may still hold the default ones in the same moto backend
        info = deploy_stack(
            TEMPLATE,
            stack_name="ImageLift-Prefixes",
            region=REGION,
            parameters={**prefixes, "BucketNamePrefix": "prefixes-test"},
        )
        s3 = boto3.client("s3", region_name=REGION)
        notifications = s3.get_bucket_notification_configuration(Bucket=info.physical("UploadsBucket"))
        filters = [n["Filter"]["Key"]["FilterRules"] for n in notifications["LambdaFunctionConfigurations"]]
    assert filters == [[{"Name": "prefix", "Value": "photos/in/"}]] * 2
    classify = StorageConfig.from_env(info.function_env[FUNCTION])
    report = StorageConfig.from_env(info.function_env["InfluenceReportFunction"])
    assert classify.images_prefix == "photos/in/"
    assert (report.sales_prefix, report.reports_prefix) == ("exports/", "weekly/")
    policies = json.dumps(expand_sam(TEMPLATE)["Resources"])
    for default in ("/images/", "/sales/", "/reports/", '"sales/"'):
        assert default not in policies, f"{default} is written into the template instead of its parameter"
