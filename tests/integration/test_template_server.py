"""The stack from template.yaml on a moto server on 127.0.0.1 (how the local stack runs it), classifying over HTTP."""

from __future__ import annotations

import boto3
from ingest_stack import REGION, TEMPLATE, s3_event, s3_record

from imagelift.adapters.categories_table import CategoriesTable
from imagelift.adapters.s3 import PhotoStore
from imagelift.config import VisionConfig
from imagelift.services.classify_service import ClassifyService
from infra.localstack.cloudformation import deploy_stack

FUNCTION = "ClassifyImageFunction"


def test_deploy_against_a_moto_server_on_localhost(labelled_photos, cascade, dummy_aws_env):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        info = deploy_stack(TEMPLATE, stack_name="ImageLift-Server", region=REGION, endpoint_url=endpoint)
        env = info.function_env[FUNCTION]
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
        ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
        service = ClassifyService(
            cascade,
            PhotoStore(s3),
            CategoriesTable(env["CATEGORIES_TABLE"], client=ddb),
            max_bytes=VisionConfig.from_env(env).max_bytes,
            images_prefix=env["IMAGES_PREFIX"],
        )
        bucket = info.outputs["UploadsBucketName"]
        key = "images/P-S/L-S/over http.jpg"
        data = labelled_photos[0][0].read_bytes()
        put = s3.put_object(Bucket=bucket, Key=key, Body=data)
        record = s3_record(
            "ObjectCreated:Put",
            bucket,
            key,
            version_id=put["VersionId"],
            etag=put["ETag"].strip('"'),
            size=len(data),
        )
        assert service.handle_event(s3_event(record)).counts == {"classified": 1}
        items = CategoriesTable(env["CATEGORIES_TABLE"], client=ddb).history(f"s3://{bucket}/{key}")
        assert [i.status for i in items] == ["classified"]
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    finally:
        server.stop()
