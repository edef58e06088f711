"""Integration fixtures: template.yaml itself deployed into moto, and the classifier handler run with its environment.

``stack`` (one per test module): ``mock_aws`` started, the SAM template expanded and created in moto's
CloudFormation, and ``os.environ`` set to exactly what the template gives ClassifyImageFunction (plus dummy
credentials). ``classify_app`` imports functions/classify_image/app.py the way Lambda does at container init
(models loaded at import, once per test session) and rebinds its service to the current stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from ingest_stack import (
    _APP_MODULES,
    _RUNTIME_ENV,
    FUNCTION,
    REGION,
    TEMPLATE,
    DeployedStack,
    LambdaContext,
    import_app,
)


@pytest.fixture(scope="module")
def stack() -> Iterator[DeployedStack]:
    """template.yaml deployed into moto (in process); os.environ = the classifier's environment from the template."""
    from moto import mock_aws

    from infra.localstack.cloudformation import deploy_stack

    with pytest.MonkeyPatch.context() as mp:
        for name, value in _RUNTIME_ENV.items():
            mp.setenv(name, value)
        with mock_aws():
            info = deploy_stack(TEMPLATE, stack_name="ImageLift-Test", region=REGION)
            env = info.function_env[FUNCTION]
            for name, value in env.items():
                mp.setenv(name, value)
            yield DeployedStack(
                info=info,
                env=env,
                s3=boto3.client("s3", region_name=REGION),
                dynamodb=boto3.client("dynamodb", region_name=REGION),
            )


@pytest.fixture(scope="module")
def classify_app(stack: DeployedStack, models_dir: Path) -> Iterator[ModuleType]:
    """functions/classify_image/app.py with the real models, wired to this module's stack.

    The first use imports the module (Cascade.load at import, like a cold start); later modules keep its loaded
    models and rebuild the service from the new stack's environment, like a new container would.
    """
    from imagelift.services.classify_service import ClassifyService

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGELIFT_MODELS_DIR", str(models_dir))
        if "app" not in _APP_MODULES:
            _APP_MODULES["app"] = import_app()
        module = _APP_MODULES["app"]
        mp.setattr(module, "service", ClassifyService.from_env(classifier=module.service.classifier))
        yield module


@pytest.fixture()
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture(scope="session")
def cascade(models_dir: Path):
    """The real classifier, loaded once for the session."""
    from imagelift.config import VisionConfig
    from imagelift.vision.cascade import Cascade

    return Cascade.load(VisionConfig.from_env({}, models_dir=models_dir))


@pytest.fixture(scope="session")
def rie() -> Path:
    """The Lambda Runtime Interface Emulator binary; tests that need it skip where this machine has none."""
    from infra.localstack.rie import RieUnavailable, rie_binary

    try:
        return rie_binary()
    except RieUnavailable as exc:
        pytest.skip(f"no Runtime Interface Emulator here: {exc}")


@pytest.fixture()
def dummy_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and the test region in os.environ, for a stack a test deploys itself."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
