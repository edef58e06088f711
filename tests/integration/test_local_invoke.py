"""Handlers under the Lambda Runtime Interface Emulator (from the aws-sam-cli wheel) with awslambdaric, no Docker.

A trivial handler of our own shows the emulator's contract (response, environment, logs, errors, 127.0.0.1);
then the real ClassifyImageFunction is run through ``imagelift local invoke`` with a real S3 event
(tests/events/put_special_key.json) against the local stack, and its record checked in the table.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.localstack.rie import RieFunction, rie_arch
from infra.localstack.runner import start_function
from infra.localstack.samples import bundled_photos
from infra.localstack.stack import LocalStack, running_local_stack

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).resolve().parent / "local_handlers"
EVENTS = ROOT / "tests" / "events"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_local_stack(stack_name="imagelift-invoketest") as local:
        yield local


def test_rie_arch_names() -> None:
    assert rie_arch("x86_64", "Linux") == "x86_64"
    assert rie_arch("aarch64", "Linux") == "arm64"
    assert rie_arch("arm64", "Darwin") is None  # the emulator is a Linux binary: macOS runs in process
    assert rie_arch("riscv64", "Linux") is None


def test_trivial_handler_under_the_emulator(rie: Path) -> None:
    env = {"LOCAL_TEST_MARKER": "from-the-template", "AWS_LAMBDA_FUNCTION_NAME": "echo-fn"}
    with RieFunction(HANDLERS, "app.echo", env, binary=rie, name="echo") as function:
        assert f"127.0.0.1:{function.port}" in function.url
        first = function.invoke({"hello": ["world", 1]})
        second = function.invoke({"n": 2})
    assert first.ok, first.error
    assert first.payload["event"] == {"hello": ["world", 1]}
    assert first.payload["marker"] == "from-the-template"
    assert first.payload["cwd"] == str(HANDLERS)
    assert first.payload["function_name"] == "echo-fn"
    assert first.payload["remaining_ms_positive"] is True
    assert "echo handler saw request" in first.logs
    assert "REPORT RequestId" in first.logs
    assert second.ok and second.payload["event"] == {"n": 2}
    assert "echo handler saw request" in second.logs and first.logs not in second.logs  # logs are per invocation


def test_handler_error_comes_back_as_lambda_error(rie: Path) -> None:
    with RieFunction(HANDLERS, "app.boom", {}, binary=rie, name="boom") as function:
        result = function.invoke({"why": "testing errors"})
        after = function.invoke({})
    assert not result.ok
    assert result.payload["errorType"] == "ValueError"
    assert result.error == "ValueError: boom: testing errors"
    assert not after.ok  # the runtime survives a failed invocation and takes the next


def test_emulator_listens_on_loopback_only(rie: Path) -> None:
    function = RieFunction(HANDLERS, "app.echo", {}, binary=rie, name="loopback")
    function.start()
    try:
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        ours = [line.split() for line in listening if line.split()[1].endswith(f":{function.port:04X}")]
        assert ours, "the emulator's port is not listening"
        assert all(fields[1].startswith("0100007F:") for fields in ours)  # 127.0.0.1, not 0.0.0.0
    finally:
        function.stop()
    assert function.pid is None


def _event_for_uploaded_photo(stack: LocalStack, tmp_path: Path) -> tuple[Path, str]:
    """tests/events/put_special_key.json with the photo really uploaded at its key (version and etag from S3)."""
    event = json.loads((EVENTS / "put_special_key.json").read_text(encoding="utf-8"))
    record = event["Records"][0]
    key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
    assert record["s3"]["bucket"]["name"] == stack.uploads_bucket  # the event file names the local stack's bucket
    photo = bundled_photos()[0]  # the astronaut: a face, category 1
    response = stack.client("s3").put_object(Bucket=stack.uploads_bucket, Key=key, Body=photo.data)
    patched = copy.deepcopy(event)
    obj = patched["Records"][0]["s3"]["object"]
    obj.update({"size": len(photo.data), "eTag": response["ETag"].strip('"'), "versionId": response["VersionId"]})
    path = tmp_path / "event.json"
    path.write_text(json.dumps(patched), encoding="utf-8")
    return path, key


@pytest.mark.slow
def test_local_invoke_runs_classify_through_the_emulator(
    rie: Path, stack: LocalStack, models_dir: Path, tmp_path: Path
) -> None:
    event_path, key = _event_for_uploaded_photo(stack, tmp_path)
    command = [
        sys.executable, "-m", "imagelift", "local", "invoke", "classify",
        "--event", str(event_path), "--endpoint", stack.endpoint_url, "--stack-name", stack.stack_name,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "under the Lambda Runtime Interface Emulator" in done.stderr
    assert "REPORT RequestId" in done.stderr
    response = json.loads(done.stdout)
    assert response["counts"] == {"classified": 1}
    assert response["results"][0]["key"] == key
    assert response["results"][0]["category"] == 1
    items = stack.client("dynamodb").scan(TableName=stack.categories_table)["Items"]
    ours = [item for item in items if item["key"]["S"] == key]
    assert len(ours) == 1
    assert ours[0]["status"]["S"] == "classified"
    assert ours[0]["category"]["N"] == "1"
    assert ours[0]["decided_by"]["S"] == "mtcnn"


@pytest.mark.slow
def test_without_the_emulator_the_handler_runs_in_process_and_says_so(
    stack: LocalStack, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infra.localstack.rie as rie_module

    # as on macOS, where the emulator (a Linux binary) cannot run
    monkeypatch.setattr(rie_module, "rie_arch", lambda *args: None)
    event_path, key = _event_for_uploaded_photo(stack, tmp_path)  # a new version of the photo
    event = json.loads(event_path.read_text(encoding="utf-8"))
    said: list[str] = []
    function = start_function(stack, "classify", runner="auto", say=said.append)
    assert len(said) == 1 and "Linux x86_64/arm64 binary" in said[0] and "in process instead" in said[0]
    result = function.invoke(event)
    assert function.runner == "in-process"
    assert result.ok, result.error
    assert result.payload["results"][0] == {"key": key, "outcome": "classified", "status": "classified", "category": 1}
    assert "START RequestId" in result.logs and "in process" in result.logs
