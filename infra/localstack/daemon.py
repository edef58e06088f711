"""``imagelift local up`` / ``down``: the local stack kept running, in the foreground or detached.

While it runs: moto on 127.0.0.1 holds template.yaml's stack, and ClassifyImageFunction instances read the S3
notification queue, so a photo put under images/ with the AWS CLI or boto3 is classified as on AWS. Its
state (endpoint, names, the functions' environment) is in ``.cache/local/stack.json`` and its process id in
``.cache/local/local.pid``; ``imagelift local invoke`` and ``down`` find it there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from infra.localstack.delivery import Delivery, QueueDelivery, classify_delivery
from infra.localstack.runner import start_function
from infra.localstack.server import client_env
from infra.localstack.stack import ROOT, LocalStack, running_local_stack

STATE_DIR = ROOT / ".cache" / "local"


@dataclass(frozen=True)
class StatePaths:
    root: Path = STATE_DIR

    @property
    def stack(self) -> Path:
        return self.root / "stack.json"

    @property
    def pid(self) -> Path:
        return self.root / "local.pid"

    @property
    def log(self) -> Path:
        return self.root / "local.log"

    @property
    def deliveries(self) -> Path:
        """The delivery threads' state, rewritten every second while the stack runs (``local status`` reads it)."""
        return self.root / "deliveries.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reachable(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=2):
            return True
    except Exception:
        return False


def running_stack(paths: StatePaths = StatePaths()) -> tuple[LocalStack, int] | None:
    """The stack `imagelift local up` keeps running and its process id, or None (stale files are removed)."""
    try:
        pid = int(paths.pid.read_text().strip())
        stack = LocalStack.from_json(paths.stack.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    if not _alive(pid) or not _reachable(stack.endpoint_url):
        for path in (paths.pid, paths.stack):
            path.unlink(missing_ok=True)
        return None
    return stack, pid


def usage_text(stack: LocalStack) -> str:
    """How to point the AWS CLI and boto3 at the stack."""
    env = client_env(stack.endpoint_url, stack.region)
    exports = " ".join(
        f"{k}={env[k]}"
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    )
    lines = [
        f"endpoint          {stack.endpoint_url}   (moto, region {stack.region}, stack {stack.stack_name})",
        f"uploads bucket    {stack.uploads_bucket}",
        f"data bucket       {stack.data_bucket}",
        f"categories table  {stack.categories_table}",
        f"reports table     {stack.reports_table}",
        f"S3 events queue   {stack.notification_queue_url}",
    ]
    for spec in stack.functions.values():
        lines.append(f"function          {spec.logical_id}: {spec.function_name}")
    lines += [
        "",
        "Point the AWS CLI or boto3 at it (any other credentials are never sent there):",
        f"  export {exports}",
        f"  aws s3 cp photo.jpg s3://{stack.uploads_bucket}/images/P1/L1/photo.jpg   # classified within seconds",
        f"  aws dynamodb scan --table-name {stack.categories_table}",
        f"  aws s3 cp sales.csv s3://{stack.data_bucket}/sales/sales.csv && imagelift local invoke report --event -  <<< '{{}}'",
        f'  boto3.client("s3", endpoint_url="{stack.endpoint_url}", region_name="{stack.region}",'
        ' aws_access_key_id="testing", aws_secret_access_key="testing")',
    ]
    return "\n".join(lines)


def serve(
    *,
    port: int = 0,
    concurrency: int = 1,
    runner: str = "auto",
    paths: StatePaths = StatePaths(),
    say: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    on_ready: Callable[[LocalStack], None] | None = None,
    models_dir: Path | None = None,
) -> None:
    """Run the stack until ``stop`` is set (SIGTERM and Ctrl-C set it when this is the main thread)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    paths.root.mkdir(parents=True, exist_ok=True)
    with running_local_stack(port=port, models_dir=models_dir) as stack:
        runners = []
        try:
            for index in range(max(1, concurrency)):
                runners.append(start_function(stack, "classify", runner=runner, name=f"classify-{index}", say=say))

            for line in stack.not_reproduced:
                say(f"not as on AWS: {line}")

            def on_delivery(delivery: Delivery) -> None:
                payload = delivery.invocation.payload if delivery.ok else None
                results = payload.get("results", []) if isinstance(payload, dict) else []
                for result in results if isinstance(results, list) else []:
                    if not isinstance(result, dict):
                        continue
                    extra = result.get("category") or (result.get("error") or {}).get("code", "")
                    say(f"{result.get('key')}: {result.get('outcome')} {extra}")
                if not delivery.ok:
                    say(f"{', '.join(delivery.keys)}: attempt {delivery.attempt} failed: {delivery.invocation.error}")

            stuck_after_s = stack.function("classify").timeout_s + 30
            with classify_delivery(stack, runners, on_delivery=on_delivery) as delivery:
                paths.stack.write_text(stack.to_json(), encoding="utf-8")
                paths.pid.write_text(f"{os.getpid()}\n")
                if on_ready:
                    on_ready(stack)
                try:
                    while not stop.wait(1.0):
                        write_delivery_state(paths, delivery, stuck_after_s)
                except KeyboardInterrupt:
                    pass
                say("stopping the local stack")
        finally:
            for function in runners:
                function.stop()
            for path in (paths.pid, paths.stack, paths.deliveries):
                path.unlink(missing_ok=True)


def write_delivery_state(paths: StatePaths, delivery: QueueDelivery, stuck_after_s: float) -> None:
    """What the delivery threads are doing, for ``local status``: counts, work in flight, what is stuck."""
    in_flight = delivery.in_flight()
    state = {
        "threads": len(delivery.runners),
        "threads_alive": delivery.threads_alive(),
        "stats": delivery.stats.to_dict(),
        "in_flight": in_flight,
        "stuck": [item for item in in_flight if item["seconds"] > stuck_after_s],
        "stuck_after_s": stuck_after_s,
    }
    tmp = paths.deliveries.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(paths.deliveries)


def delivery_status_text(paths: StatePaths = StatePaths()) -> str:
    """``local status``'s delivery lines: invocations, failures, dead threads and stuck deliveries."""
    try:
        state = json.loads(paths.deliveries.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return "deliveries        (no state yet)"
    stats = state["stats"]
    lines = [
        f"deliveries        {stats['invocations']} invocations, {stats['succeeded']} ok, "
        f"{stats['failed_attempts']} failed attempts, {stats['dead_lettered']} to the failure queue; "
        f"{state['threads_alive']}/{state['threads']} delivery threads alive, {len(state['in_flight'])} in flight"
    ]
    if state["threads_alive"] < state["threads"]:
        lines.append(f"WARNING           {state['threads'] - state['threads_alive']} delivery thread(s) died")
    for item in state["stuck"]:
        lines.append(
            f"STUCK             {', '.join(item['keys']) or item['message_id']}: invoked {item['seconds']:.0f} s ago "
            f"(over {state['stuck_after_s']:.0f} s) on {item['thread']}"
        )
    return "\n".join(lines)


def start_detached(
    *,
    port: int = 0,
    concurrency: int = 1,
    runner: str = "auto",
    paths: StatePaths = StatePaths(),
    timeout_s: float = 180,
) -> tuple[LocalStack, int]:
    """``imagelift local up`` in a new session, logging to .cache/local/local.log; returns once it is ready."""
    paths.root.mkdir(parents=True, exist_ok=True)
    for path in (paths.pid, paths.stack):
        path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "imagelift", "local", "up", "--state-dir", str(paths.root),
        "--port", str(port), "--concurrency", str(concurrency), "--runner", runner,
    ]  # fmt: skip
    with paths.log.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=Path.cwd(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = paths.log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"the local stack exited with {process.returncode} before it was ready:\n{tail}")
        found = running_stack(paths)
        if found and found[1] == process.pid:
            return found
        time.sleep(0.3)
    process.terminate()
    raise RuntimeError(f"the local stack was not ready within {timeout_s:.0f} s (log: {paths.log})")


def stop_running(paths: StatePaths = StatePaths(), timeout_s: float = 30) -> int | None:
    """Stop the stack ``local up`` runs (SIGTERM to its recorded pid); returns that pid, or None if none ran."""
    found = running_stack(paths)
    if found is None:
        return None
    _, pid = found
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
        with suppress(ChildProcessError):  # reap it if it is our child (a test started it)
            os.waitpid(pid, os.WNOHANG)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    for path in (paths.pid, paths.stack):
        path.unlink(missing_ok=True)
    return pid
