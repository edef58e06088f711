"""InfluenceReportFunction end to end in moto: template.yaml deployed, categories in the table, exports in S3,
the handler run with the function's own environment -> report files in S3 and the summary item in the table."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from imagelift.config import ReportConfig
from imagelift.influence.simulate import SimulationSpec, simulate

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "InfluenceReportFunction"
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2025-06-02T06:00:00Z",  # the Monday after the simulated 20 weeks: the report's date
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/Weekly"],
    "detail": {},
}


def _import_handler():
    spec = importlib.util.spec_from_file_location("influence_report_app", ROOT / "functions/influence_report/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report_env(stack):
    """os.environ as the template gives InfluenceReportFunction (the stack fixture set the classifier's)."""
    env = stack.info.function_env[FUNCTION]
    with pytest.MonkeyPatch.context() as mp:
        for name in stack.env:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def simulation():
    return simulate(SimulationSpec(products=80, weeks=20, bad_rows=7, seed=21))


@pytest.fixture(scope="module")
def loaded(stack, report_env, simulation):
    """Two exports (one gzipped) and a stray file under sales/, every simulated record in ImageCategories."""
    s3 = stack.s3
    bucket = report_env["DATA_BUCKET"]
    sales = simulation.sales
    half = len(sales) // 2
    s3.put_object(Bucket=bucket, Key="sales/2025/part-1.csv", Body=sales.iloc[:half].to_csv(index=False).encode())
    s3.put_object(
        Bucket=bucket,
        Key="sales/2025/part-2.csv.gz",
        Body=gzip.compress(sales.iloc[half:].to_csv(index=False).encode()),
    )
    s3.put_object(Bucket=bucket, Key="sales/README.txt", Body=b"exports land here")
    table = boto3.resource("dynamodb", region_name=stack.info.region).Table(report_env["CATEGORIES_TABLE"])
    with table.batch_writer() as batch:
        for record in simulation.records:  # simulated records carry the table's pk and sk
            batch.put_item(Item=record)
    return bucket


def test_handler_writes_reports_and_summary(stack, report_env, loaded, simulation, lambda_context, tmp_path):
    app = _import_handler()
    summary = app.lambda_handler(SCHEDULED_EVENT, lambda_context)

    date = summary["report_date"]
    s3 = stack.s3
    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket=loaded, Prefix="reports/")["Contents"]}
    for folder in (date, "latest"):
        assert {f"reports/{folder}/influence.{ext}" for ext in ("json", "csv", "html")} <= keys
    head = s3.head_object(Bucket=loaded, Key=f"reports/{date}/influence.html")
    assert head["ContentType"].startswith("text/html")
    # the page's links are relative: each names a file stored beside it, under the dated and the latest prefix
    for folder in (date, "latest"):
        page = s3.get_object(Bucket=loaded, Key=f"reports/{folder}/influence.html")["Body"].read().decode()
        links = set(re.findall(r"href='([^']+)'", page))
        assert links == {"influence.csv", "influence.json"}
        assert {f"reports/{folder}/{link}" for link in links} <= keys
    report = json.loads(s3.get_object(Bucket=loaded, Key="reports/latest/influence.json")["Body"].read())

    # the rows, the rejections (one of each reason planted) and the records all went through
    counts = report["counts"]
    assert counts["rows"] == len(simulation.sales)
    assert counts["rows_rejected"] == simulation.truth["expected_rejections"]
    assert counts["files"] == [f"s3://{loaded}/sales/2025/part-1.csv", f"s3://{loaded}/sales/2025/part-2.csv.gz"]
    assert counts["records"]["read"] == len(simulation.records)
    assert counts["records"]["excluded"]["failed"] > 0
    for entry in report["effects"]:
        low, high = entry["effect_pct_ci"]
        assert low <= simulation.truth["effects_pct"][entry["category_name"]] <= high

    # the same numbers as the command line on the same inputs
    from imagelift.services.report_service import build_report

    local = build_report(
        [("s", simulation.sales.to_csv(index=False).encode())], simulation.records, ReportConfig.from_env({})
    ).report
    assert [e.estimate for e in local.effects] == pytest.approx([e["estimate"] for e in report["effects"]])

    item = stack.dynamodb.get_item(TableName=report_env["REPORTS_TABLE"], Key={"report_date": {"S": date}})["Item"]
    assert float(item["model_effect_pct"]["N"]) == pytest.approx(report["effects"][0]["effect_pct"])
    assert item["files"]["M"]["influence.html"]["S"] == f"s3://{loaded}/reports/{date}/influence.html"
    assert int(item["rows_rejected"]["N"]) == counts["rows_rejected_total"]
    assert summary["effects"]["model"] == pytest.approx(report["effects"][0]["effect_pct"])
    # one summary shape: the table item and the return value say the same
    assert summary["rows_rejected"] == int(item["rows_rejected"]["N"])
    assert summary["rows_rejected_by_reason"] == counts["rows_rejected"]
    assert len(summary["warnings"]) == int(item["warnings"]["N"])
    assert summary["period"] == report["period"]


def test_template_schedules_the_function_weekly(stack):
    events = boto3.client("events", region_name=stack.info.region)
    rules = events.list_rules()["Rules"]
    function_arn = boto3.client("lambda", region_name=stack.info.region).get_function(
        FunctionName=stack.info.physical(FUNCTION)
    )["Configuration"]["FunctionArn"]
    weekly = [
        r
        for r in rules
        if r.get("ScheduleExpression") == stack.info.parameters.get("ReportSchedule", "cron(0 6 ? * MON *)")
    ]
    assert weekly, rules
    targets = events.list_targets_by_rule(Rule=weekly[0]["Name"])["Targets"]
    assert [t["Arn"] for t in targets] == [function_arn]


def test_no_sales_exports_yet_is_a_report_that_says_so(stack, report_env, lambda_context):
    from imagelift.config import StorageConfig
    from imagelift.services.report_service import run_scheduled

    storage = StorageConfig.from_env(sales_prefix="nothing-here/", reports_prefix="reports-empty/")
    summary = run_scheduled(storage, ReportConfig.from_env({}), now=datetime(2025, 6, 2, 6, tzinfo=UTC))
    assert summary["rows"] == 0 and summary["effects"] == {"model": None, "worn": None}
    assert summary["warnings"][0].startswith("No sales exports yet")
    assert summary["period"] == {"from": None, "to": None}


def test_handler_emits_the_run_metrics_the_alarm_and_dashboard_use(
    stack, report_env, loaded, simulation, lambda_context, capsys
):
    """One EMF document per run (powertools prints it to stdout, CloudWatch turns it into metrics)."""
    from imagelift.services.report_metrics import REJECTED_SHARE_METRIC

    app = _import_handler()
    capsys.readouterr()
    summary = app.lambda_handler(SCHEDULED_EVENT, lambda_context)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(documents) == 1
    # powertools writes each value as a list of the run's data points: one point per metric here
    emf = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in documents[0].items()}
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "imagelift" and directive["Dimensions"] == [["service"]]
    assert emf["service"] == "influence-report"
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["rows"] == "Count" and units[REJECTED_SHARE_METRIC] == "Percent"
    assert units["duration_seconds"] == "Seconds"
    expected_rejected = sum(simulation.truth["expected_rejections"].values())
    assert emf["rows"] == len(simulation.sales) == summary["rows"]
    assert emf["rows_rejected"] == expected_rejected
    assert emf[REJECTED_SHARE_METRIC] == pytest.approx(100 * expected_rejected / len(simulation.sales))
    assert emf["effects_estimated"] == 2
    assert emf["effect_pct_model"] == pytest.approx(summary["effects"]["model"])
    assert 0 < emf["duration_seconds"] < 300
