"""The seller and operator commands as a person runs them against the local stack (template.yaml in a moto server on
127.0.0.1, reached through AWS_ENDPOINT_URL), each a separate process: redrive a failed upload, see the listing's
category, correct it, see the correction win, export, list what is left to review."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.localstack.server import client_env
from infra.localstack.stack import TEMPLATE, LocalStack, running_local_stack

STACK = "imagelift-sellertest"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalStack]:
    with running_local_stack(stack_name=STACK) as stack:
        yield stack


def imagelift(local: LocalStack, *args: str, models_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CATEGORIES_TABLE"}
    env.update(client_env(local.endpoint_url, local.region), IMAGELIFT_REVIEWER="ana")
    if models_dir is not None:
        env["IMAGELIFT_MODELS_DIR"] = str(models_dir)
    return subprocess.run(
        [sys.executable, "-m", "imagelift", *args, "--stack", STACK],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=TEMPLATE.parent,
        env=env,
    )


def test_a_failed_upload_is_redriven_seen_and_corrected(local: LocalStack, models_dir, labelled_photos, tmp_path):
    product_shot = next(path for path, label in labelled_photos if label == 3)
    key = "images/LS-1/L-1/main.jpg"
    s3 = local.client("s3")
    response = s3.put_object(Bucket=local.uploads_bucket, Key=key, Body=product_shot.read_bytes())
    # the classifier gave up on this upload: Lambda's destination put the event in the failure queue
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": local.region,
                "eventTime": "2026-11-23T09:15:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": local.uploads_bucket, "arn": f"arn:aws:s3:::{local.uploads_bucket}"},
                    "object": {
                        "key": key,
                        "size": product_shot.stat().st_size,
                        "eTag": response["ETag"].strip('"'),
                        **({"versionId": response["VersionId"]} if response.get("VersionId") else {}),
                        "sequencer": "0067A1B2C3D4E5F6AA",
                    },
                },
            }
        ]
    }
    destination = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}
    local.client("sqs").send_message(QueueUrl=local.classify_failures_queue_url, MessageBody=json.dumps(destination))

    redrive = imagelift(local, "redrive", "--wait", "0", models_dir=models_dir)
    assert redrive.returncode == 0, redrive.stderr
    summary = json.loads(redrive.stdout)
    assert (summary["redriven"], summary["records"]) == (1, {"classified": 1})

    shown = imagelift(local, "categories", "--listing", "L-1", "--json")
    assert shown.returncode == 0, shown.stderr
    (row,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert (row["product_id"], row["key"], row["status"], row["corrected"]) == ("LS-1", key, "classified", False)
    other = {1: "model", 2: "worn", 3: "product"}[1 if row["category"] != 1 else 2]

    corrected = imagelift(local, "correct", key, "--category", other, "--note", "seen by a person")
    assert corrected.returncode == 0, corrected.stderr
    assert json.loads(corrected.stdout)["correction"]["by"] == "ana"
    export = tmp_path / "categories.csv"
    exported = imagelift(local, "categories", "--export", str(export))
    assert exported.returncode == 0, exported.stderr
    (line,) = [r for r in csv.DictReader(export.open(encoding="utf-8")) if r["listing_id"] == "L-1"]
    assert (line["category_name"], line["corrected"], line["classifier_category"]) == (
        other,
        "True",
        str(row["category"]),
    )
    review = imagelift(local, "review", "--product", "LS-1")
    assert review.returncode == 0 and review.stdout == "" and "0 photo(s) to review" in review.stderr
