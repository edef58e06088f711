"""template.yaml created in a moto server, and what a local runner needs to run its functions against it.

:func:`deploy_local_stack` deploys the template with :func:`infra.localstack.cloudformation.deploy_stack` (SAM
transform expanded offline, then moto's CloudFormation), then routes the uploads bucket's notifications through an
SQS queue: moto delivers S3 notifications to SQS, never to Lambda, so each Lambda notification configuration of
the template becomes a queue configuration with the same events and filters, and a local runner
(:mod:`infra.localstack.delivery`) invokes the function with each S3 event it reads from that queue.

:class:`LocalStack` holds the names (buckets, tables, queues), and for each function where its code is, its
handler, and its environment: the template's variables as CloudFormation resolved them, plus what a Lambda
container would have (region, function name, timeout) and what points it at the local stack
(``AWS_ENDPOINT_URL``, dummy credentials, the models directory).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.localstack.server import DUMMY_CREDENTIALS, LOCAL_REGION, client_env, patched_environ

ROOT = Path(__file__).resolve().parents[2]


def default_template() -> Path:
    """The working directory's template.yaml when it has one, else the checkout's (this file's) own."""
    here = Path.cwd() / "template.yaml"
    return here if here.is_file() else ROOT / "template.yaml"


TEMPLATE = default_template()
DEFAULT_STACK_NAME = "imagelift-local"
NOTIFICATION_QUEUE_SUFFIX = "-s3-notifications"

# Short names accepted wherever a function is named (``imagelift local invoke classify``).
FUNCTION_ALIASES = {
    "classify": "ClassifyImageFunction",
    "classify_image": "ClassifyImageFunction",
    "report": "InfluenceReportFunction",
    "influence_report": "InfluenceReportFunction",
}


class LocalStackError(RuntimeError):
    """The local stack could not be created or a function of it cannot be run."""


@dataclass
class FunctionSpec:
    """One AWS::Serverless::Function of template.yaml, as a local runner starts it."""

    logical_id: str
    function_name: str
    """Physical name in the stack (what ``aws lambda`` would call it)."""
    code_dir: str
    """Folder holding the handler module (functions/<name>/)."""
    handler: str
    """``module.function``: the Dockerfile's CMD for image functions, Handler for zip functions."""
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    """The template's Environment Variables as the deployed stack resolved them."""
    architecture: str = "x86_64"
    max_retry_attempts: int = 2
    """Lambda's retries of a failed asynchronous invocation (EventInvokeConfig), before the on-failure queue."""


@dataclass
class LocalStack:
    """Names and functions of template.yaml deployed into a moto server at ``endpoint_url``."""

    endpoint_url: str
    region: str
    stack_name: str
    resources: dict[str, str]
    """Logical id -> physical id (bucket and table names, queue URLs, function names)."""
    outputs: dict[str, str]
    functions: dict[str, FunctionSpec]
    notification_queue_url: str
    """Where the uploads bucket's S3 notifications go (moto cannot invoke Lambda)."""
    not_reproduced: list[str] = field(default_factory=list)
    models_dir: str = str(ROOT / "models")

    @property
    def uploads_bucket(self) -> str:
        return self.resources["UploadsBucket"]

    @property
    def data_bucket(self) -> str:
        return self.resources["DataBucket"]

    @property
    def categories_table(self) -> str:
        return self.resources["ImageCategoriesTable"]

    @property
    def reports_table(self) -> str | None:
        return self.resources.get("InfluenceReportsTable")

    @property
    def classify_failures_queue_url(self) -> str | None:
        return self.resources.get("ClassifyFailuresQueue")

    def function(self, name: str) -> FunctionSpec:
        """A function by logical id, physical name or short alias (classify, report)."""
        logical = FUNCTION_ALIASES.get(name.lower().replace("-", "_"), name)
        if logical in self.functions:
            return self.functions[logical]
        for spec in self.functions.values():
            if spec.function_name == name:
                return spec
        known = ", ".join(sorted(self.functions)) or "none"
        raise LocalStackError(f"no function {name!r} in the stack (functions: {known}; aliases: classify, report)")

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def runtime_env(self, function: str | FunctionSpec) -> dict[str, str]:
        """Everything a Lambda container of ``function`` would have in its environment, pointed at this stack."""
        spec = function if isinstance(function, FunctionSpec) else self.function(function)
        env = dict(spec.environment)
        env.update(client_env(self.endpoint_url, self.region))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
                "LAMBDA_TASK_ROOT": spec.code_dir,
                # In the image the models are baked in at $LAMBDA_TASK_ROOT/models; locally `make models` builds them here.
                "IMAGELIFT_MODELS_DIR": self.models_dir,
            }
        )
        return env

    def summary(self) -> dict[str, Any]:
        """Names a person or script needs to use the stack."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "stack_name": self.stack_name,
            "uploads_bucket": self.uploads_bucket,
            "data_bucket": self.data_bucket,
            "categories_table": self.categories_table,
            "reports_table": self.reports_table,
            "notification_queue_url": self.notification_queue_url,
            "functions": {k: v.function_name for k, v in self.functions.items()},
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LocalStack:
        data = json.loads(text)
        data["functions"] = {k: FunctionSpec(**v) for k, v in data["functions"].items()}
        return cls(**data)


def _dockerfile_cmd(dockerfile: Path) -> str:
    """The handler of an image function: the exec-form CMD of its Dockerfile."""
    text = dockerfile.read_text(encoding="utf-8")
    matches = re.findall(r"^\s*CMD\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    if not matches:
        raise LocalStackError(f'{dockerfile} has no exec-form CMD ["module.function"] naming the handler')
    return str(json.loads(matches[-1])[0])


def function_sources(template_path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    """Logical id -> code dir, handler, timeout, memory, architecture of each function in the (unexpanded) template."""
    from infra.localstack.cloudformation import load_template

    template = load_template(template_path)
    base = template_path.resolve().parent
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    parameters = {k: v.get("Default") for k, v in (template.get("Parameters") or {}).items()}

    def value(raw: Any, default: Any) -> Any:
        if isinstance(raw, dict) and "Ref" in raw:
            return parameters.get(raw["Ref"], default)
        return default if raw is None else raw

    sources: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        if props.get("PackageType") == "Image":
            dockerfile = base / (resource.get("Metadata") or {}).get("Dockerfile", "")
            if not dockerfile.is_file():
                raise LocalStackError(f"{logical_id}: Metadata.Dockerfile {dockerfile} does not exist")
            code_dir, handler = dockerfile.parent, _dockerfile_cmd(dockerfile)
        else:
            code_dir = base / str(props.get("CodeUri") or globals_.get("CodeUri") or ".")
            handler = str(props.get("Handler") or globals_.get("Handler") or "")
            if not handler:
                raise LocalStackError(f"{logical_id}: no Handler in the template")
        architectures = props.get("Architectures") or globals_.get("Architectures") or ["x86_64"]
        sources[logical_id] = {
            "code_dir": str(code_dir.resolve()),
            "handler": handler,
            "timeout_s": int(value(props.get("Timeout", globals_.get("Timeout")), 3)),
            "memory_mb": int(value(props.get("MemorySize", globals_.get("MemorySize")), 128)),
            "architecture": str(architectures[0]),
            "max_retry_attempts": int(value((props.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts"), 2)),
        }
    return sources


def route_notifications_to_queue(
    s3: Any, sqs: Any, bucket: str, queue_name: str, visibility_timeout_s: int
) -> tuple[str, list[dict[str, Any]]]:
    """Replace the bucket's Lambda notifications with one SQS queue receiving the same events and filters.

    Returns the queue URL and the Lambda configurations it stands in for.
    """
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    lambda_configs = current.get("LambdaFunctionConfigurations") or []
    if not lambda_configs:
        raise LocalStackError(f"bucket {bucket} has no Lambda notification to route: check the template's S3 events")
    queue_url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={"VisibilityTimeout": str(visibility_timeout_s), "MessageRetentionPeriod": "1209600"},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_configs = []
    for config in lambda_configs:
        entry: dict[str, Any] = {"QueueArn": queue_arn, "Events": config["Events"]}
        if config.get("Id"):
            entry["Id"] = config["Id"]
        if config.get("Filter"):
            entry["Filter"] = config["Filter"]
        queue_configs.append(entry)
    configuration = {k: v for k, v in current.items() if k in {"TopicConfigurations", "QueueConfigurations"}}
    configuration["QueueConfigurations"] = [*configuration.get("QueueConfigurations", []), *queue_configs]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)
    # S3 (and moto) post an s3:TestEvent when a queue is configured; drop it so the queue holds only real events.
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        test_events = [m for m in messages if json.loads(m["Body"]).get("Event") == "s3:TestEvent"]
        for message in messages:
            if message in test_events:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        if not test_events:
            break
    return queue_url, lambda_configs


def _build_local_stack(
    info: Any, endpoint_url: str, region: str, template_path: Path, models_dir: Path | None
) -> LocalStack:
    sources = function_sources(template_path)
    functions: dict[str, FunctionSpec] = {}
    for logical_id, source in sources.items():
        if logical_id not in info.resources:
            raise LocalStackError(f"{logical_id} is in the template but not in the deployed stack")
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            function_name=info.resources[logical_id],
            environment=dict(info.function_env.get(logical_id, {})),
            **source,
        )
    return LocalStack(
        endpoint_url=endpoint_url,
        region=region,
        stack_name=info.stack_name,
        resources=dict(info.resources),
        outputs=dict(info.outputs),
        functions=functions,
        notification_queue_url="",
        not_reproduced=list(info.not_reproduced),
        models_dir=str((models_dir or ROOT / "models").resolve()),
    )


def attach_local_stack(
    endpoint_url: str,
    *,
    stack_name: str = DEFAULT_STACK_NAME,
    template_path: Path = TEMPLATE,
    region: str = LOCAL_REGION,
    models_dir: Path | None = None,
) -> LocalStack:
    """The LocalStack of a stack a moto server at ``endpoint_url`` already holds (``imagelift local up``'s)."""
    from infra.localstack.cloudformation import StackError, describe_stack

    with dummy_credentials():
        try:
            info = describe_stack(stack_name, region=region, endpoint_url=endpoint_url)
        except StackError as exc:
            raise LocalStackError(str(exc)) from exc
        except Exception as exc:  # botocore: no server there, or no such stack
            raise LocalStackError(f"no stack {stack_name!r} at {endpoint_url}: {exc}") from exc
    stack = _build_local_stack(info, endpoint_url, region, template_path, models_dir)
    sqs = stack.client("sqs")
    queue_name = f"{stack_name}{NOTIFICATION_QUEUE_SUFFIX}"
    # A stack deployed by something else (a test) has no S3 event routing; invoking its functions still works.
    with suppress(sqs.exceptions.QueueDoesNotExist):
        stack.notification_queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    return stack


def dummy_credentials() -> AbstractContextManager[None]:
    """Dummy AWS credentials in os.environ for the duration (boto3 clients that take no explicit ones use them).

    Real credentials a user has set are never sent to the local stack.
    """
    return patched_environ(DUMMY_CREDENTIALS)


def deploy_local_stack(
    endpoint_url: str,
    *,
    template_path: Path = TEMPLATE,
    stack_name: str = DEFAULT_STACK_NAME,
    region: str = LOCAL_REGION,
    parameters: dict[str, str] | None = None,
    models_dir: Path | None = None,
) -> LocalStack:
    """Create every resource of ``template_path`` in the moto server at ``endpoint_url``; S3 events go to a queue."""
    from infra.localstack.cloudformation import deploy_stack

    with dummy_credentials():
        info = deploy_stack(
            template_path, stack_name=stack_name, parameters=parameters, region=region, endpoint_url=endpoint_url
        )
    stack = _build_local_stack(info, endpoint_url, region, template_path, models_dir)
    classify = stack.functions.get("ClassifyImageFunction")
    visibility = (classify.timeout_s if classify else 60) * 6  # AWS's advice for a queue feeding a Lambda
    queue_url, replaced = route_notifications_to_queue(
        stack.client("s3"),
        stack.client("sqs"),
        stack.uploads_bucket,
        f"{stack_name}{NOTIFICATION_QUEUE_SUFFIX}",
        visibility,
    )
    stack.notification_queue_url = queue_url
    stack.not_reproduced.append(
        f"UploadsBucket: {len(replaced)} S3 -> Lambda notification(s) go to SQS queue {queue_url} instead "
        "(moto does not invoke Lambda); the local runner invokes the function with each event from it"
    )
    stack.not_reproduced.append(
        "UploadsBucket: moto sends no ObjectRemoved:DeleteMarkerCreated event when a delete makes a delete marker "
        "(the bucket is versioned): deletes reach the function only through `imagelift local invoke` with an event"
    )
    stack.not_reproduced.append(
        "UploadsBucket: moto's S3 events carry no versionId and no sequencer (S3's do): records of local uploads are "
        "keyed by ETag and ordered by eventTime, so replaying an S3-shaped event with a versionId makes a second item"
    )
    return stack


@contextmanager
def running_local_stack(
    *,
    template_path: Path = TEMPLATE,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
    models_dir: Path | None = None,
    port: int = 0,
) -> Iterator[LocalStack]:
    """A moto server on 127.0.0.1 holding template.yaml's stack, stopped when the block ends."""
    import logging
    import warnings

    from infra.localstack.server import MotoServer

    with MotoServer(port=port) as server:
        # moto logs and warns for each resource type its CloudFormation skips; cloudformation.py applies those
        # itself and lists what remains in not_reproduced, so the noise would only hide the progress.
        moto_cfn_log = logging.getLogger("moto")
        level = moto_cfn_log.level
        moto_cfn_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                stack = deploy_local_stack(
                    server.url,
                    template_path=template_path,
                    stack_name=stack_name,
                    parameters=parameters,
                    models_dir=models_dir,
                )
        finally:
            moto_cfn_log.setLevel(level)
        yield stack
