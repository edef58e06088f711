"""The whole flow on one machine: photos in, categories out, a weekly report at the end (``imagelift demo``).

1. moto on 127.0.0.1, and every resource of template.yaml created in it (:mod:`infra.localstack.stack`).
2. A catalogue simulated with planted effects (:func:`imagelift.influence.simulate.simulate`): products, their
   listings, which kind of photo each listing shows, and a year of weekly sales that the photo kind moves by the
   planted percentages.
3. For each listing, a real photo of that kind is uploaded to ``images/<product>/<listing>/``; each S3
   notification reaches ClassifyImageFunction (under the Runtime Interface Emulator), which classifies the photo
   with the real models and writes its ImageCategories record. The report only ever sees those records: if the
   cascade calls a photo wrongly, the measured effect moves away from the planted one.
4. The sales export goes under ``sales/`` in the data bucket, InfluenceReportFunction runs as the weekly schedule
   would run it, and its report is fetched from ``reports/latest/``.

The sales weeks start on the Monday after the uploads: a listing's sales are joined to the photo that was live
that week (as-of), and these photos go live now.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from imagelift.adapters.category_records import scan_category_records
from imagelift.records.categories import CATEGORY_NAMES
from infra.localstack.delivery import Delivery, classify_delivery
from infra.localstack.runner import start_function
from infra.localstack.samples import SamplePhoto, bundled_photos, photos_from_dir
from infra.localstack.stack import ROOT, LocalStack, running_local_stack

PLANTED = {"model_lift": 9.0, "worn_lift": 5.0, "elasticity": -1.2}


@dataclass
class DemoOptions:
    products: int = 48
    """Simulated products; each has about ``listings_per_product`` listings, one uploaded photo each."""
    listings_per_product: float = 3.0
    weeks: int = 52
    images_dir: Path | None = None
    out_dir: Path = ROOT / "out"
    concurrency: int = 2
    """Classify function instances (emulator processes) working on the notification queue."""
    runner: str = "auto"
    seed: int = 3
    models_dir: Path | None = None


@dataclass
class DemoResult:
    wall_s: float
    uploads: int
    records: list[dict[str, Any]]
    photos: list[dict[str, Any]]
    """Per sample photo: label, uploads, the categories the classifier gave it."""
    effects: list[dict[str, Any]]
    """Per category: measured effect_pct and interval beside the planted lift."""
    elasticity: dict[str, Any]
    report_response: Any
    files: dict[str, str]
    timings_s: dict[str, float] = field(default_factory=dict)
    runner: str = ""
    notes: list[str] = field(default_factory=list)
    function_pids: list[int] = field(default_factory=list)
    """Emulator processes the demo started (all stopped before it returns)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 1),
            "uploads": self.uploads,
            "records": len(self.records),
            "records_by_status": dict(Counter(r.get("status") for r in self.records)),
            "photos": self.photos,
            "effects": self.effects,
            "price_elasticity": self.elasticity,
            "files": self.files,
            "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
            "runner": self.runner,
            "notes": self.notes,
            "function_pids": self.function_pids,
        }


class ElapsedLog:
    """Prints ``[  12.3s] message`` lines (thread-safe)."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.started = time.perf_counter()
        self._out = out
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        with self._lock:
            self._out(f"[{self.elapsed:6.1f}s] {message}")


def next_monday(today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())


def _photo_pools(photos: list[SamplePhoto], say: ElapsedLog, models_dir: Path | None) -> dict[int, list[SamplePhoto]]:
    """Photos by their category; unlabelled photos get the cascade's category (said, since it is then circular)."""
    unlabelled = [p for p in photos if p.label is None]
    if unlabelled:
        from imagelift.config import VisionConfig
        from imagelift.vision.cascade import Cascade
        from imagelift.vision.image_io import ImageDecodeError

        say(
            f"{len(unlabelled)} photos have no label (no cat1/cat2/cat3 or model/worn/product folder): labelling them with the cascade"
        )
        overrides = {"models_dir": models_dir} if models_dir else {}
        cascade = Cascade.load(VisionConfig.from_env(**overrides))
        labelled = [p for p in photos if p.label is not None]
        for photo in unlabelled:
            try:
                category = cascade.classify_bytes(photo.data, photo.name).category
            except ImageDecodeError as exc:
                say(f"  skipping {photo.source}: {exc.message}")
                continue
            labelled.append(SamplePhoto(photo.name, photo.data, category, photo.source))
        photos = labelled
    pools: dict[int, list[SamplePhoto]] = defaultdict(list)
    for photo in photos:
        pools[int(photo.label or 3)].append(photo)
    return pools


def run_demo(options: DemoOptions, say: ElapsedLog | None = None) -> DemoResult:
    from imagelift.influence.simulate import SimulationSpec, simulate

    say = say or ElapsedLog()
    timings: dict[str, float] = {}
    notes: list[str] = []
    t = time.perf_counter()

    # -- photos and the simulated catalogue ---------------------------------------------------------------
    if options.images_dir:
        photos = photos_from_dir(options.images_dir)
        say(f"{len(photos)} photos from IMAGES={options.images_dir}")
    else:
        photos = bundled_photos()
        say(f"{len(photos)} sample photos from scikit-image's bundled data (no network)")
    pools = _photo_pools(photos, say, options.models_dir)
    for category in (1, 2, 3):
        names = ", ".join(p.name for p in pools.get(category, [])) or "none"
        say(f"  {CATEGORY_NAMES[category]:8s} {names}")
    start = next_monday()
    spec = SimulationSpec(
        products=options.products,
        listings_per_product=options.listings_per_product,
        weeks=options.weeks,
        start=start.isoformat(),
        model_lift=PLANTED["model_lift"],
        worn_lift=PLANTED["worn_lift"],
        elasticity=PLANTED["elasticity"],
        # A small catalogue: less listing and product-week noise than the library default, so that ~150 photos
        # give intervals a few points wide. Photos go live now, so none changes during the period.
        base_units=30.0,
        listing_sd=0.05,
        dispersion=20.0,
        product_week_sd=0.05,
        switch_share=0.0,
        late_start_share=0.0,
        failed_records=0.0,
        deleted_records=0.0,
        unmatched_records=0,
        seed=options.seed,
    )
    sim = simulate(spec)
    listings = [(r["product_id"], r["listing_id"], int(r["category"])) for r in sim.records]
    listings.sort()
    missing = sorted({c for _, _, c in listings if not pools.get(c)})
    if missing:
        names = ", ".join(CATEGORY_NAMES[c] for c in missing)
        notes.append(f"no photo of kind {names}: those listings get none, and their sales rows are rejected")
        say(f"warning: {notes[-1]}")
    say(
        f"simulated {spec.products} products, {len(listings)} listings, {spec.weeks} weeks from {start} "
        f"(planted: model {spec.model_lift:+g}%, worn {spec.worn_lift:+g}%, price elasticity {spec.elasticity:g})"
    )
    timings["prepare"] = time.perf_counter() - t

    with running_local_stack(parameters={"ReportControls": "promo"}, models_dir=options.models_dir) as stack:
        timings["stack"] = time.perf_counter() - t - timings["prepare"]
        say(
            f"moto on {stack.endpoint_url}: {len(stack.resources)} resources from template.yaml (stack {stack.stack_name})"
        )
        say(f"  uploads bucket {stack.uploads_bucket}, data bucket {stack.data_bucket}")
        say(f"  tables {stack.categories_table}, {stack.reports_table}")
        for line in stack.not_reproduced:
            say(f"  not as on AWS: {line}")
        result = _run_flow(stack, options, say, pools, listings, sim, timings, notes)
    say("stopped the local stack (moto server and function processes)")
    result.wall_s = say.elapsed
    return result


def _run_flow(
    stack: LocalStack,
    options: DemoOptions,
    say: ElapsedLog,
    pools: dict[int, list[SamplePhoto]],
    listings: list[tuple[str, str, int]],
    sim: Any,
    timings: dict[str, float],
    notes: list[str],
) -> DemoResult:
    s3 = stack.client("s3")
    runners = []
    started_pids: list[int | None] = []
    try:
        for index in range(max(1, options.concurrency)):
            runners.append(start_function(stack, "classify", runner=options.runner, name=f"classify-{index}", say=say))
            started_pids.append(getattr(runners[-1], "pid", None))
        kind = "Runtime Interface Emulator" if runners[0].runner == "rie" else "in process"
        say(f"ClassifyImageFunction: {len(runners)} instance(s), {kind}, reading the S3 notification queue")

        # -- uploads and classification ----------------------------------------------------------------------
        plan: list[tuple[str, SamplePhoto]] = []
        used: Counter[int] = Counter()
        for product, listing, category in listings:
            pool = pools.get(category)
            if not pool:
                continue
            photo = pool[used[category] % len(pool)]
            used[category] += 1
            plan.append((f"images/{product}/{listing}/{photo.name}", photo))
        total = len(plan)
        done: Counter[str] = Counter()
        lock = threading.Lock()
        step = max(1, total // 10)

        def on_delivery(delivery: Delivery) -> None:
            with lock:
                payload = delivery.invocation.payload if delivery.ok else None
                for result in payload.get("results", []) if isinstance(payload, dict) else []:
                    done[result.get("status") or result.get("outcome")] += 1
                    if result.get("category") in CATEGORY_NAMES:
                        done[CATEGORY_NAMES[result["category"]]] += 1
                n = done["classified"] + done["failed"]
                if not delivery.ok:
                    say(f"  {', '.join(delivery.keys)}: attempt {delivery.attempt} failed: {delivery.invocation.error}")
                if delivery.ok and (n % step == 0 or n == total):
                    rate = n / max(time.perf_counter() - t_upload, 1e-9)
                    say(
                        f"  classified {n}/{total}: model {done['model']}, worn {done['worn']}, "
                        f"product {done['product']}, failed {done['failed']} ({rate:.1f} photos/s)"
                    )

        say(f"uploading {total} photos to s3://{stack.uploads_bucket}/images/<product>/<listing>/ ...")
        t_upload = time.perf_counter()
        delivery = classify_delivery(stack, runners, on_delivery=on_delivery)
        with delivery:
            with ThreadPoolExecutor(max_workers=4) as uploader:
                list(
                    uploader.map(
                        lambda item: s3.put_object(Bucket=stack.uploads_bucket, Key=item[0], Body=item[1].data), plan
                    )
                )
            if not delivery.wait_until_drained(timeout_s=600):
                notes.append("the notification queue did not drain within 10 minutes")
                say(f"warning: {notes[-1]}")
        timings["classify"] = time.perf_counter() - t_upload
        stats = delivery.stats
        say(
            f"all S3 events delivered in {timings['classify']:.1f} s ({total / timings['classify']:.1f} photos/s): "
            f"{stats.succeeded} invocations ok, {stats.failed_attempts} failed attempts, {stats.dead_lettered} to the failure queue"
        )
    finally:
        for runner in runners:
            runner.stop()

    records = list(scan_category_records(stack.categories_table, stack.client("dynamodb"), fields=None))
    by_key = {r["key"]: r for r in records}
    photos = _photo_summary(plan, by_key)

    # -- sales export and the weekly report ------------------------------------------------------------------
    t = time.perf_counter()
    sales_csv = sim.sales.to_csv(index=False).encode()
    sales_key = f"sales/demo-{sim.sales['week'].min()}-to-{sim.sales['week'].max()}.csv"
    s3.put_object(Bucket=stack.data_bucket, Key=sales_key, Body=sales_csv)
    say(f"sales export: {len(sim.sales):,} listing-weeks -> s3://{stack.data_bucket}/{sales_key}")
    report_runner = start_function(stack, "report", runner=options.runner, name="report", say=say)
    started_pids.append(getattr(report_runner, "pid", None))
    try:
        # the schedule fires the Monday after the simulated weeks: the report's date, so no week is in the future
        last_week = datetime.fromisoformat(str(sim.sales["week"].max())).replace(tzinfo=UTC)
        event = _schedule_event(stack, at=last_week + timedelta(weeks=1))
        say("InfluenceReportFunction: invoked as the weekly schedule would (EventBridge Scheduled Event)")
        invocation = report_runner.invoke(event)
    finally:
        report_runner.stop()
    timings["report"] = time.perf_counter() - t
    if not invocation.ok:
        raise RuntimeError(f"InfluenceReportFunction failed: {invocation.error}\n{invocation.logs[-3000:]}")
    say(f"report written in {timings['report']:.1f} s: {', '.join(sorted(invocation.payload.get('files', {})))}")

    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    report = json.loads(s3.get_object(Bucket=stack.data_bucket, Key="reports/latest/influence.json")["Body"].read())
    html = s3.get_object(Bucket=stack.data_bucket, Key="reports/latest/influence.html")["Body"].read()
    # the page links the CSV and JSON by name, so both sit beside it
    report_csv = s3.get_object(Bucket=stack.data_bucket, Key="reports/latest/influence.csv")["Body"].read()
    files = {
        "report.html": out / "report.html",
        "influence.json": out / "influence.json",
        "influence.csv": out / "influence.csv",
        "categories.jsonl": out / "categories.jsonl",
        "sales.csv": out / "sales.csv",
    }
    files["report.html"].write_bytes(html)
    files["influence.csv"].write_bytes(report_csv)
    files["influence.json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    with files["categories.jsonl"].open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, default=str) + "\n")
    files["sales.csv"].write_bytes(sales_csv)

    planted = {"model": PLANTED["model_lift"], "worn": PLANTED["worn_lift"]}
    effects = [
        {
            "category": e["category"],
            "category_name": e["category_name"],
            "effect_pct": e.get("effect_pct"),
            "effect_pct_ci": e.get("effect_pct_ci"),
            "planted_pct": planted.get(e["category_name"]),
            "note": e.get("note"),
        }
        for e in report["effects"]
    ]
    el = report["price_elasticity"]
    elasticity = {
        "estimate": el.get("estimate"),
        "ci": [el.get("ci_low"), el.get("ci_high")],
        "planted": PLANTED["elasticity"],
    }
    result = DemoResult(
        wall_s=0.0,
        uploads=len(plan),
        records=records,
        photos=photos,
        effects=effects,
        elasticity=elasticity,
        report_response=invocation.payload,
        files={k: str(v) for k, v in files.items()},
        timings_s=timings,
        runner=runners[0].runner if runners else "",
        notes=notes,
        function_pids=[pid for pid in started_pids if pid is not None],
    )
    summary_path = out / "demo.json"
    summary_path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    result.files["demo.json"] = str(summary_path)
    return result


def _photo_summary(plan: list[tuple[str, SamplePhoto]], by_key: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for key, photo in plan:
        entry = grouped.setdefault(
            photo.name,
            {
                "photo": photo.name,
                "source": photo.source,
                "label": photo.label_name,
                "uploads": 0,
                "categories": Counter(),
            },
        )
        entry["uploads"] += 1
        record = by_key.get(key)
        if record is None:
            outcome = "no record"
        elif record.get("status") == "classified":
            outcome = record.get("category_name") or CATEGORY_NAMES.get(record.get("category"), "?")
            faces = record.get("faces") or []
            persons = record.get("persons") or []
            entry["decided_by"] = record.get("decided_by")
            entry["faces"] = len(faces)
            entry["persons"] = len(persons)
            scores = [f.get("confidence") for f in faces] or [p.get("confidence") for p in persons]
            if scores:
                entry["top_score"] = round(max(float(s) for s in scores if s is not None), 3)
        else:
            outcome = f"{record.get('status')} ({(record.get('error') or {}).get('code', '')})"
        entry["categories"][outcome] += 1
    order = {"model": 0, "worn": 1, "product": 2}
    entries = sorted(grouped.values(), key=lambda e: (order.get(e["label"], 3), e["photo"]))
    return [{**e, "categories": dict(e["categories"])} for e in entries]


def _schedule_event(stack: LocalStack, at: datetime | None = None) -> dict[str, Any]:
    now = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now,
        "region": stack.region,
        "resources": [f"arn:aws:events:{stack.region}:123456789012:rule/{stack.stack_name}-Weekly"],
        "detail": {},
    }
