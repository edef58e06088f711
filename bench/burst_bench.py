"""Burst benchmark: many uploads at once into the local stack, classified at a concurrency of N; nothing lost or doubled.

    .venv/bin/python bench/burst_bench.py [--uploads 1000] [--concurrency 4] [--corrupt-share 0.01]
        [--hostile-share 0.02] [--duplicate-share 0.01]

template.yaml's stack runs in moto on 127.0.0.1; ClassifyImageFunction runs as N instances of the Lambda Runtime
Interface Emulator (N execution environments) reading the uploads bucket's S3 notification queue. The uploads
are copies of the sample photos under distinct keys, plus a share of corrupt files (empty, truncated, random
bytes) and of hostile files (infra.localstack.hostile: scan bombs, forged sizes, damaged data, ...), put from 8
threads as fast as moto takes them; a share of the S3 events is delivered twice (S3 delivers at least once).
Then the check: exactly one ImageCategories record per upload, none missing, none doubled, every corrupt or
hostile file a ``failed`` record with its expected reason and every photo a ``classified`` one of its label's
category. Throughput is uploads per second from the first upload to the last record; the same
run first measures one instance on a small batch as the reference, and reports the ratio.

Prints the figures and writes bench/results/burst.json (or --out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imagelift.records.categories import CATEGORY_NAMES  # noqa: E402
from infra.localstack.delivery import Delivery, QueueDelivery, classify_delivery  # noqa: E402
from infra.localstack.runner import start_function  # noqa: E402
from infra.localstack.samples import bundled_photos, corrupt_variants, photos_from_dir  # noqa: E402
from infra.localstack.stack import LocalStack, running_local_stack  # noqa: E402


def plan_uploads(
    count: int, corrupt_share: float, photos: list[Any], prefix: str, hostile_share: float = 0.0
) -> list[dict[str, Any]]:
    """``count`` distinct keys; every ``1/corrupt_share``-th one a corrupt file, every ``1/hostile_share``-th one a
    hostile file (a quick case of infra.localstack.hostile), the rest photo copies."""
    from infra.localstack.hostile import CASES

    corrupt_every = round(1 / corrupt_share) if corrupt_share > 0 else 0
    hostile_every = round(1 / hostile_share) if hostile_share > 0 else 0
    hostile = [(c, c.make()) for c in CASES if not c.big and c.status == "failed"]
    broken = corrupt_variants(photos[0])
    plan = []
    for i in range(count):
        product, listing = f"B{prefix}{i // 4:04d}", f"L{prefix}{i:05d}"
        if hostile_every and i % hostile_every == 1:
            item, data = hostile[(i // hostile_every) % len(hostile)]
            key = f"images/{product}/{listing}/{item.name}.jpg"
            plan.append({"key": key, "data": data, "corrupt": True, "label": None, "expected_code": item.code})
        elif corrupt_every and i % corrupt_every == corrupt_every // 2:
            name, data = broken[(i // corrupt_every) % len(broken)]
            plan.append({"key": f"images/{product}/{listing}/{name}", "data": data, "corrupt": True, "label": None})
        else:
            photo = photos[i % len(photos)]
            plan.append(
                {
                    "key": f"images/{product}/{listing}/{photo.name}",
                    "data": photo.data,
                    "corrupt": False,
                    "label": photo.label,
                }
            )
    return plan


def _scan(stack: LocalStack) -> list[dict[str, Any]]:
    items = []
    for page in (
        stack.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=stack.categories_table,
            ProjectionExpression="#k, #s, category, #e",
            ExpressionAttributeNames={"#k": "key", "#s": "status", "#e": "error"},
        )
    ):
        for item in page["Items"]:
            items.append(
                {
                    "key": item["key"]["S"],
                    "status": item["status"]["S"],
                    "category": int(item["category"]["N"]) if "category" in item else None,
                    "error_code": item.get("error", {}).get("M", {}).get("code", {}).get("S"),
                }
            )
    return items


class DuplicatingRunner:
    """A runner that, the first time it sees one of ``keys``, puts a copy of the event back on the queue first."""

    def __init__(self, inner: Any, sqs: Any, queue_url: str, keys: set[str], sent: set[str], lock: Any) -> None:
        self.inner, self.sqs, self.queue_url, self.keys, self.sent, self.lock = inner, sqs, queue_url, keys, sent, lock
        self.name = getattr(inner, "name", "?")
        self.runner = getattr(inner, "runner", "?")

    def invoke(self, event: Any, timeout_s: float | None = None) -> Any:
        from infra.localstack.delivery import event_keys

        chosen = [key for key in event_keys(event) if key in self.keys]
        with self.lock:
            fresh = [key for key in chosen if key not in self.sent]
            self.sent.update(fresh)
        if fresh:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(event))
        return self.inner.invoke(event, timeout_s)


def _burst(
    stack: LocalStack,
    plan: list[dict[str, Any]],
    runners: list[Any],
    progress: bool,
    receive_batch: int = 1,
    duplicate_keys: set[str] | None = None,
) -> tuple[float, QueueDelivery, list[float], Counter[str]]:
    s3 = stack.client("s3")
    durations: list[float] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    step = max(1, len(plan) // 10)
    if duplicate_keys:
        sent: set[str] = set()
        sqs = stack.client("sqs")
        runners = [DuplicatingRunner(r, sqs, stack.notification_queue_url, duplicate_keys, sent, lock) for r in runners]

    def on_delivery(delivery: Delivery) -> None:
        payload = delivery.invocation.payload if delivery.ok else None
        with lock:
            durations.append(delivery.invocation.duration_ms)
            n = len(durations)
            for result in payload.get("results", []) if isinstance(payload, dict) else []:
                outcomes[result.get("outcome", "?")] += 1
        if progress and (n % step == 0 or n == len(plan)):
            print(f"  [{time.perf_counter() - started:6.1f}s] {n}/{len(plan)} events handled", flush=True)

    delivery = classify_delivery(stack, runners, on_delivery=on_delivery, receive_batch=receive_batch)
    started = time.perf_counter()
    with delivery:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda u: s3.put_object(Bucket=stack.uploads_bucket, Key=u["key"], Body=u["data"]), plan))
        uploaded = time.perf_counter() - started
        if progress:
            print(f"  [{uploaded:6.1f}s] all {len(plan)} uploads done", flush=True)
        drained = delivery.wait_until_drained(timeout_s=1800)
    elapsed = time.perf_counter() - started
    if not drained:
        raise RuntimeError("the notification queue did not drain within 30 minutes")
    return elapsed, delivery, durations, outcomes


def check_records(plan: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Lost, doubled, failed-as-expected, and category-as-labelled counts of one burst's keys."""
    keys = {u["key"] for u in plan}
    per_key = Counter(item["key"] for item in items if item["key"] in keys)
    by_key = {item["key"]: item for item in items if item["key"] in keys}
    corrupt = {u["key"] for u in plan if u["corrupt"]}
    hostile = {u["key"]: u["expected_code"] for u in plan if u.get("expected_code")}
    failed = {k for k, item in by_key.items() if item["status"] == "failed"}
    classified = {k for k, item in by_key.items() if item["status"] == "classified"}
    wrong_category = [
        u["key"]
        for u in plan
        if not u["corrupt"] and u["key"] in classified and u["label"] and by_key[u["key"]]["category"] != u["label"]
    ]
    return {
        "records": sum(per_key.values()),
        "keys_with_record": len(per_key),
        "lost": len(keys - set(per_key)),
        "doubled": sum(1 for n in per_key.values() if n > 1),
        "failed": len(failed),
        "corrupt_uploaded": len(corrupt),
        "corrupt_recorded_failed": len(corrupt & failed),
        "photos_failed": len(failed - corrupt),
        "hostile_uploaded": len(hostile),
        "hostile_failed_with_expected_code": sum(
            1 for k, code in hostile.items() if k in failed and by_key[k]["error_code"] == code
        ),
        "classified": len(classified),
        "failure_codes": dict(Counter(by_key[k]["error_code"] for k in failed)),
        "categories": dict(Counter(CATEGORY_NAMES.get(by_key[k]["category"], "?") for k in classified)),
        "category_differs_from_label": len(wrong_category),
        "stray_records": sum(1 for item in items if item["key"] not in keys),
    }


def run_burst(
    uploads: int = 1000,
    concurrency: int = 4,
    corrupt_share: float = 0.01,
    runner: str = "auto",
    reference_uploads: int = 40,
    images_dir: Path | None = None,
    progress: bool = True,
    stack: LocalStack | None = None,
    receive_batch: int = 10,
    hostile_share: float = 0.02,
    duplicate_share: float = 0.01,
) -> dict[str, Any]:
    """The burst; in a new local stack unless ``stack`` is given (moto's state is process-wide: one at a time)."""
    photos = photos_from_dir(images_dir) if images_dir else bundled_photos()
    say = print if progress else (lambda *_: None)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with contextlib.ExitStack() as scope:
        if stack is None:
            stack = scope.enter_context(running_local_stack())
        say(f"local stack up in {time.perf_counter() - t0:.1f} s at {stack.endpoint_url}")
        runners = []
        try:
            for index in range(concurrency):
                runners.append(start_function(stack, "classify", runner=runner, name=f"classify-{index}", say=say))
            kind = runners[0].runner
            # Cold starts (model loading) happen on each instance's first event; warm them all first, as a
            # burst into a warm function, so the figures are of classification, not of four imports.
            warm = plan_uploads(concurrency, 0.0, photos, "W")
            _burst(stack, warm, runners, progress=False)
            reference: dict[str, Any] = {}
            if reference_uploads:
                ref_plan = plan_uploads(reference_uploads, 0.0, photos, "R")
                say(f"reference: {reference_uploads} uploads, 1 instance")
                ref_s, _, ref_durations, _ = _burst(
                    stack, ref_plan, runners[:1], progress=False, receive_batch=receive_batch
                )
                reference = {
                    "uploads": reference_uploads,
                    "concurrency": 1,
                    "elapsed_s": round(ref_s, 2),
                    "photos_per_s": round(reference_uploads / ref_s, 2),
                    "invocation_ms_median": round(statistics.median(ref_durations), 1),
                }
                say(f"  {reference['photos_per_s']} photos/s")
            plan = plan_uploads(uploads, corrupt_share, photos, "", hostile_share=hostile_share)
            duplicate_every = round(1 / duplicate_share) if duplicate_share > 0 else 0
            duplicate_keys = {u["key"] for i, u in enumerate(plan) if duplicate_every and i % duplicate_every == 3}
            hostile_count = sum(bool(u.get("expected_code")) for u in plan)
            say(
                f"burst: {uploads} uploads ({sum(u['corrupt'] for u in plan)} corrupt, {hostile_count} of them "
                f"hostile; {len(duplicate_keys)} events delivered twice), {concurrency} instances ({kind})"
            )
            elapsed, delivery, durations, outcomes = _burst(
                stack, plan, runners, progress, receive_batch=receive_batch, duplicate_keys=duplicate_keys
            )
        finally:
            for function in runners:
                function.stop()
        items = _scan(stack)
        failure_queue = stack.classify_failures_queue_url
        dead_letters = 0
        if failure_queue:
            attrs = stack.client("sqs").get_queue_attributes(
                QueueUrl=failure_queue, AttributeNames=["ApproximateNumberOfMessages"]
            )
            dead_letters = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    check = check_records(plan, items)
    ordered = sorted(durations)
    throughput = uploads / elapsed
    result = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/burst_bench.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # the machine is shared: the 1-minute load average before and after says how much else ran
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "uploads": uploads,
        "concurrency": concurrency,
        "runner": kind,
        "receive_batch": receive_batch,
        "elapsed_s": round(elapsed, 2),
        "photos_per_s": round(throughput, 2),
        "invocation_ms": {
            "median": round(statistics.median(ordered), 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1),
        },
        "reference": reference,
        "speedup_vs_one_instance": round(throughput / reference["photos_per_s"], 2) if reference else None,
        **check,
        "delivery": delivery.stats.to_dict(),
        "duplicate_events_sent": len(duplicate_keys),
        "outcomes": dict(outcomes),
        "failure_queue_messages": dead_letters,
        "passed": (
            check["records"] == uploads
            and check["lost"] == 0
            and check["doubled"] == 0
            and check["corrupt_recorded_failed"] == check["corrupt_uploaded"]
            and check["photos_failed"] == 0
            and check["hostile_failed_with_expected_code"] == check["hostile_uploaded"]
            # every event sent twice is recorded once as a duplicate; an attempt that wrote its record and then
            # timed out (a loaded machine) is retried and adds one more: never lost, never doubled
            and len(duplicate_keys)
            <= outcomes.get("duplicate", 0)
            <= len(duplicate_keys) + delivery.stats.failed_attempts
            and dead_letters == 0
        ),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--corrupt-share", type=float, default=0.01)
    parser.add_argument("--hostile-share", type=float, default=0.02, help="share of hostile files among the uploads")
    parser.add_argument("--duplicate-share", type=float, default=0.01, help="share of S3 events delivered twice")
    parser.add_argument("--reference-uploads", type=int, default=40, help="single-instance reference batch (0: skip)")
    parser.add_argument("--runner", choices=("auto", "rie", "in-process"), default="auto")
    parser.add_argument("--images", type=Path, default=Path(os.environ["IMAGES"]) if os.environ.get("IMAGES") else None)
    parser.add_argument(
        "--receive-batch", type=int, default=10, help="S3 events taken per SQS receive (each still its own invocation)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "burst.json")
    args = parser.parse_args(argv)
    if args.runner == "in-process" and args.concurrency > 1:
        print("in-process handlers share one process and run one at a time: use --runner rie for concurrency")
    result = run_burst(
        uploads=args.uploads,
        concurrency=args.concurrency,
        corrupt_share=args.corrupt_share,
        runner=args.runner,
        reference_uploads=args.reference_uploads,
        images_dir=args.images,
        receive_batch=args.receive_batch,
        hostile_share=args.hostile_share,
        duplicate_share=args.duplicate_share,
    )
    print()
    print(
        f"{result['uploads']} uploads at concurrency {result['concurrency']} ({result['runner']}): "
        f"{result['photos_per_s']} photos/s over {result['elapsed_s']} s "
        f"(one instance: {result['reference'].get('photos_per_s', '-')} photos/s; ratio {result['speedup_vs_one_instance']})"
    )
    print(
        f"records {result['records']} for {result['keys_with_record']} keys: lost {result['lost']}, "
        f"doubled {result['doubled']}, failed {result['failed']} (corrupt uploaded {result['corrupt_uploaded']}, "
        f"recorded failed {result['corrupt_recorded_failed']}; hostile {result['hostile_uploaded']}, failed with "
        f"the expected reason {result['hostile_failed_with_expected_code']}), "
        f"classified {result['classified']} {result['categories']}, "
        f"category differs from label {result['category_differs_from_label']}"
    )
    print(
        f"invocations {result['delivery']['invocations']}, failed attempts {result['delivery']['failed_attempts']}, "
        f"events delivered twice {result['delivery']['keys_delivered_more_than_once']} (sent twice "
        f"{result['duplicate_events_sent']}, recorded as duplicates {result['outcomes'].get('duplicate', 0)}), failure queue "
        f"{result['failure_queue_messages']}; invocation ms median {result['invocation_ms']['median']}, "
        f"p95 {result['invocation_ms']['p95']}"
    )
    print("PASS" if result["passed"] else "FAIL")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
