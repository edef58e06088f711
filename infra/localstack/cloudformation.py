"""Create template.yaml's stack without AWS: expand the SAM transform offline, then let moto's CloudFormation build it.

moto does not run the ``AWS::Serverless-2016-10-31`` transform, so :func:`expand_sam` runs it here with
``samtranslator`` (the library ``sam`` and CloudFormation use), with no network: managed policy names are not looked
up (the template uses ARNs and inline statements only). :func:`deploy_stack` then creates the plain CloudFormation
template in moto, either in process (under ``moto.mock_aws``) or on a moto server (``endpoint_url``,
e.g. a ``ThreadedMotoServer`` on 127.0.0.1), and reports what the stack holds: physical names, outputs, and each
function's environment exactly as CloudFormation resolved it from the template. Tests and the local stack run the
handlers with that environment, so template and code cannot drift apart.

Image functions have no image before ``sam build``; they get a placeholder ``ImageUri`` (moto stores it, and never
runs it: moto invokes nothing here).

moto's CloudFormation (5.x) silently skips some resource types and properties this template relies on. After the
stack is created, :func:`_apply_what_moto_skips` sets them through the service APIs from the same expanded template,
so the local resources are what the template says: bucket versioning, public access block, ownership controls,
lifecycle rules, bucket-key encryption and event notifications; bucket policies (statements without a Condition:
moto ignores conditions, so a conditional Deny would deny everything); DynamoDB point-in-time recovery;
Lambda event invoke configs; CloudWatch alarms; SNS subscriptions. Resources whose ``Condition`` is false are left out, as
CloudFormation does. What is still not reproduced is listed in ``StackInfo.not_reproduced`` (never silent).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

DEFAULT_REGION = "us-east-1"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class StackError(RuntimeError):
    """The template could not be expanded or the stack could not be created."""


@dataclass(frozen=True)
class StackInfo:
    """What a deployed stack holds, by logical id from template.yaml."""

    stack_name: str
    stack_id: str
    region: str
    endpoint_url: str | None
    status: str
    resources: dict[str, str]
    """Logical id -> physical id (bucket name, table name, function name, queue URL, ...)."""
    resource_types: dict[str, str]
    """Logical id -> CloudFormation type, after the SAM transform."""
    outputs: dict[str, str]
    parameters: dict[str, str]
    function_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Logical id of each AWS::Lambda::Function -> its Environment Variables as the stack resolved them."""
    not_reproduced: list[str] = field(default_factory=list)
    """Template features moto does not reproduce even after :func:`_apply_what_moto_skips` (e.g. PackageType)."""

    def physical(self, logical_id: str) -> str:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise KeyError(
                f"stack {self.stack_name} has no resource {logical_id!r}; it has {sorted(self.resources)}"
            ) from None


def _cfn_loader() -> type[yaml.SafeLoader]:
    """A YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as their long form."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag_suffix == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", construct)
    return Loader


def load_template(template_path: str | Path) -> dict[str, Any]:
    """template.yaml as a dict, short-form intrinsic functions turned into their long form."""
    text = Path(template_path).read_text(encoding="utf-8")
    template = yaml.load(text, Loader=_cfn_loader())
    if not isinstance(template, dict) or "Resources" not in template:
        raise StackError(f"{template_path} is not a CloudFormation template (no Resources)")
    return template


def _placeholder_image_uris(template: dict[str, Any], region: str, account_id: str) -> None:
    """Give image functions the ImageUri `sam build` would; moto records it and runs nothing."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.setdefault("Properties", {})
        if props.get("PackageType") == "Image" and not props.get("ImageUri"):
            tag = (resource.get("Metadata") or {}).get("DockerTag", "latest")
            props["ImageUri"] = f"{account_id}.dkr.ecr.{region}.amazonaws.com/{logical_id.lower()}:{tag}"


def expand_sam(
    template_path: str | Path,
    *,
    parameters: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    account_id: str = "123456789012",
) -> dict[str, Any]:
    """Run the SAM transform offline; returns a plain CloudFormation template (dict) without ``Transform``."""
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = load_template(template_path)
    if "Transform" not in template:
        return template
    template = copy.deepcopy(template)
    _placeholder_image_uris(template, region, account_id)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    values = {"AWS::Region": region, "AWS::AccountId": account_id, **(parameters or {})}
    try:
        return translator.translate(template, parameter_values=values, get_managed_policy_map=lambda: {})
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise StackError(f"SAM transform of {template_path} failed: {causes}") from exc


def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url)


def deploy_stack(
    template_path: str | Path,
    *,
    stack_name: str,
    parameters: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    endpoint_url: str | None = None,
) -> StackInfo:
    """Expand template.yaml and create it as a stack in moto; returns what the stack holds.

    Works in process under ``moto.mock_aws`` (``endpoint_url=None``) or against a moto server. Credentials are
    whatever boto3 finds (tests and the local stack set dummy ones).
    """
    cfn = _client("cloudformation", region, endpoint_url)
    account_id = _client("sts", region, endpoint_url).get_caller_identity()["Account"]
    parameters = {k: str(v) for k, v in (parameters or {}).items()}
    expanded = choose_conditions(
        expand_sam(template_path, parameters=parameters, region=region, account_id=account_id), parameters
    )
    response = cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(expanded),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
    )
    stack_id = response["StackId"]
    cfn.get_waiter("stack_create_complete").wait(StackName=stack_id, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    info = describe_stack(stack_id, region=region, endpoint_url=endpoint_url)
    not_reproduced = _apply_what_moto_skips(expanded, info, account_id=account_id)
    info.not_reproduced.extend(not_reproduced)
    return info


def choose_conditions(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The template with its conditions decided for ``parameters``: resources whose condition is false left out,
    each ``Fn::If`` replaced by its chosen branch, ``AWS::NoValue`` dropped.

    CloudFormation decides them at deploy time; moto's CloudFormation keeps a ``Fn::If`` that yields ``AWS::NoValue``
    as a null (and then fails on it), so the local deploy decides them first.
    """
    conditions = template.get("Conditions") or {}
    if not conditions:
        return template
    values = {
        name: str(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    values.update(parameters)
    decided: dict[str, bool] = {}

    def ref(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in values:
            return values[value["Ref"]]
        return value

    def truth(expression: Any) -> bool:
        ((fn, arg),) = expression.items()
        if fn == "Fn::Equals":
            left, right = (ref(v) for v in arg)
            if isinstance(left, dict) or isinstance(right, dict):
                raise StackError(f"the local deploy cannot decide the condition {expression}")
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not truth(arg[0])
        if fn == "Fn::And":
            return all(truth(v) for v in arg)
        if fn == "Fn::Or":
            return any(truth(v) for v in arg)
        if fn == "Condition":
            return condition(arg)
        raise StackError(f"the local deploy cannot decide the condition {expression}")

    def condition(name: str) -> bool:
        if name not in decided:
            decided[name] = truth(conditions[name])
        return decided[name]

    no_value = object()

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (walk(v) for v in value) if item is not no_value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return walk(when_true if condition(name) else when_false)
        if value == {"Ref": "AWS::NoValue"}:
            return no_value
        return {k: v for k, v in ((k, walk(v)) for k, v in value.items()) if v is not no_value}

    chosen = copy.deepcopy(template)
    chosen["Resources"] = {
        logical: walk({k: v for k, v in resource.items() if k != "Condition"})
        for logical, resource in template["Resources"].items()
        if "Condition" not in resource or condition(resource["Condition"])
    }
    chosen["Outputs"] = {
        name: walk({k: v for k, v in output.items() if k != "Condition"})
        for name, output in (template.get("Outputs") or {}).items()
        if "Condition" not in output or condition(output["Condition"])
    }
    return chosen


def describe_stack(
    stack_name_or_id: str, *, region: str = DEFAULT_REGION, endpoint_url: str | None = None
) -> StackInfo:
    """StackInfo of an existing stack (e.g. one a moto server already holds)."""
    cfn = _client("cloudformation", region, endpoint_url)
    stack = cfn.describe_stacks(StackName=stack_name_or_id)["Stacks"][0]
    if stack["StackStatus"] not in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}:
        raise StackError(f"stack {stack['StackName']} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    resources: dict[str, str] = {}
    types: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack["StackId"]):
        for item in page["StackResourceSummaries"]:
            if not item["LogicalResourceId"]:
                continue  # moto lists the resource types it skipped with empty ids
            resources[item["LogicalResourceId"]] = item["PhysicalResourceId"]
            types[item["LogicalResourceId"]] = item["ResourceType"]
    function_env: dict[str, dict[str, str]] = {}
    functions = [logical for logical, kind in types.items() if kind == "AWS::Lambda::Function"]
    if functions:
        lambda_client = _client("lambda", region, endpoint_url)
        for logical in functions:
            config = lambda_client.get_function_configuration(FunctionName=resources[logical])
            function_env[logical] = dict((config.get("Environment") or {}).get("Variables") or {})
    return StackInfo(
        stack_name=stack["StackName"],
        stack_id=stack["StackId"],
        region=region,
        endpoint_url=endpoint_url,
        status=stack["StackStatus"],
        resources=resources,
        resource_types=types,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        function_env=function_env,
    )


# ------------------------------------------------------------------ what moto's CloudFormation skips


class _Resolver:
    """Resolves the intrinsic functions the expanded template uses, against the created stack."""

    def __init__(self, template: dict[str, Any], info: StackInfo, account_id: str) -> None:
        self.template = template
        self.info = info
        params = {
            name: spec.get("Default")
            for name, spec in (template.get("Parameters") or {}).items()
            if isinstance(spec, dict) and "Default" in spec
        }
        params.update(info.parameters)
        params.update(
            {
                "AWS::Region": info.region,
                "AWS::AccountId": account_id,
                "AWS::Partition": "aws",
                "AWS::StackName": info.stack_name,
                "AWS::StackId": info.stack_id,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": None,
            }
        )
        self.params = params
        self._arns: dict[str, str] = {}

    def ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        return self.info.physical(name)

    def arn(self, logical_id: str) -> str:
        if logical_id in self._arns:
            return self._arns[logical_id]
        kind = self.info.resource_types.get(logical_id) or self.template["Resources"][logical_id]["Type"]
        physical = self.info.physical(logical_id)
        region, endpoint = self.info.region, self.info.endpoint_url
        if kind == "AWS::S3::Bucket":
            arn = f"arn:aws:s3:::{physical}"
        elif kind == "AWS::Lambda::Function":
            arn = _client("lambda", region, endpoint).get_function_configuration(FunctionName=physical)["FunctionArn"]
        elif kind == "AWS::SQS::Queue":
            attrs = _client("sqs", region, endpoint).get_queue_attributes(
                QueueUrl=physical, AttributeNames=["QueueArn"]
            )
            arn = attrs["Attributes"]["QueueArn"]
        elif kind == "AWS::DynamoDB::Table":
            arn = _client("dynamodb", region, endpoint).describe_table(TableName=physical)["Table"]["TableArn"]
        elif kind == "AWS::IAM::Role":
            arn = _client("iam", region, endpoint).get_role(RoleName=physical)["Role"]["Arn"]
        elif kind == "AWS::SNS::Topic":
            arn = physical
        else:
            raise StackError(f"cannot resolve Fn::GetAtt {logical_id}.Arn for {kind}")
        self._arns[logical_id] = arn
        return arn

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "QueueName":
            return self.info.physical(logical_id).rstrip("/").rsplit("/", 1)[-1]
        raise StackError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self(v) for v in value) if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if fn == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self.sub(text, variables)
            if fn == "Fn::Join":
                return str(self(arg[0])).join(str(v) for v in self(arg[1]))
            if fn == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if fn == "Fn::Split":
                return str(self(arg[1])).split(self(arg[0]))
            if fn.startswith("Fn::") or fn == "Condition":
                raise StackError(f"intrinsic function {fn} is not supported by the local deploy")
        return {k: v for k, v in ((k, self(v)) for k, v in value.items()) if v is not None}


def _filter_rules(filter_spec: dict[str, Any] | None) -> dict[str, Any]:
    rules = ((filter_spec or {}).get("S3Key") or {}).get("Rules") or []
    return {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}} if rules else {}


def _bucket_notifications(props: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source, target, arn_key, api_arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        for item in props.get(source) or []:
            entry = {api_arn_key: item[arn_key], "Events": [item["Event"]]}
            entry.update({"Filter": f} if (f := _filter_rules(item.get("Filter"))) else {})
            config.setdefault(target, []).append(entry)
    if props.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        config["EventBridgeConfiguration"] = {}
    return config


def _apply_bucket(s3: Any, bucket: str, props: dict[str, Any]) -> None:
    if "BucketEncryption" in props:
        rules = []
        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
            api_rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            if "BucketKeyEnabled" in rule:
                api_rule["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
            rules.append(api_rule)
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    if "PublicAccessBlockConfiguration" in props:
        block = {k: bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()}
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
    if "LifecycleConfiguration" in props:
        rules = []
        for rule in props["LifecycleConfiguration"]["Rules"]:
            api_rule = {
                "ID": rule.get("Id", ""),
                "Status": rule["Status"],
                "Filter": {"Prefix": rule.get("Prefix", "")},
            }
            if "NoncurrentVersionExpiration" in rule:
                api_rule["NoncurrentVersionExpiration"] = {
                    "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
                }
            if "AbortIncompleteMultipartUpload" in rule:
                days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
                api_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
            if "ExpirationInDays" in rule:
                api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
            rules.append(api_rule)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    if "NotificationConfiguration" in props:
        config = _bucket_notifications(props["NotificationConfiguration"])
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


_APPLIED_TYPES = {
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::DynamoDB::Table",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::Function",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Subscription",
}

_ALARM_INTEGERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")


def local_alarm_name(stack_name: str, logical_id: str) -> str:
    """The name an alarm without AlarmName gets here (CloudFormation would add a random suffix)."""
    return f"{stack_name}-{logical_id}"


def _apply_what_moto_skips(template: dict[str, Any], info: StackInfo, *, account_id: str) -> list[str]:
    """Set what moto's CloudFormation ignored; returns what remains different from the template.

    ``template`` has its conditions decided already (:func:`choose_conditions`): no resource is conditional and no
    ``Fn::If`` is left.
    """
    resolve = _Resolver(template, info, account_id)
    region, endpoint = info.region, info.endpoint_url
    not_reproduced: list[str] = []
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind not in _APPLIED_TYPES:
            if logical_id not in info.resources:
                not_reproduced.append(f"{logical_id}: {kind} is not supported by moto's CloudFormation")
            continue
        props = resolve(resource.get("Properties") or {})
        if kind == "AWS::S3::Bucket":
            _apply_bucket(_client("s3", region, endpoint), info.physical(logical_id), props)
        elif kind == "AWS::S3::BucketPolicy":
            # moto ignores Condition blocks: a conditional Deny (e.g. aws:SecureTransport false) would deny all.
            policy = dict(props["PolicyDocument"])
            kept = [st for st in policy["Statement"] if "Condition" not in st]
            for statement in policy["Statement"]:
                if "Condition" in statement:
                    sid = statement.get("Sid", "(no Sid)")
                    not_reproduced.append(f"{logical_id}: statement {sid} (moto does not evaluate its Condition)")
            if kept:
                policy["Statement"] = kept
                _client("s3", region, endpoint).put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(policy))
        elif kind == "AWS::DynamoDB::Table":
            pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
            if pitr:
                _client("dynamodb", region, endpoint).update_continuous_backups(
                    TableName=info.physical(logical_id),
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
        elif kind == "AWS::Lambda::EventInvokeConfig":
            kwargs: dict[str, Any] = {
                "FunctionName": props["FunctionName"],
                "Qualifier": props.get("Qualifier", "$LATEST"),
            }
            for name in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
                if name in props:
                    kwargs[name] = int(props[name])
            if "DestinationConfig" in props:
                kwargs["DestinationConfig"] = props["DestinationConfig"]
            _client("lambda", region, endpoint).put_function_event_invoke_config(**kwargs)
        elif kind == "AWS::CloudWatch::Alarm":
            alarm = {k: v for k, v in props.items() if k != "ActionsEnabled"}
            alarm.setdefault("AlarmName", local_alarm_name(info.stack_name, logical_id))
            alarm.update({k: int(alarm[k]) for k in _ALARM_INTEGERS if k in alarm})
            alarm["Threshold"] = float(alarm["Threshold"])
            _client("cloudwatch", region, endpoint).put_metric_alarm(**alarm)
        elif kind == "AWS::SNS::Subscription":
            _client("sns", region, endpoint).subscribe(
                TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
            )
        elif kind == "AWS::Lambda::Function" and props.get("PackageType") == "Image":
            not_reproduced.append(f"{logical_id}: PackageType Image (moto records a zip function; nothing runs it)")
    return not_reproduced
