"""Trivial handlers the local-runner tests run under the Runtime Interface Emulator (not part of imagelift)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import unquote_plus


def echo(event, context):
    print(f"echo handler saw request {context.aws_request_id}")
    return {
        "event": event,
        "cwd": os.getcwd(),
        "marker": os.environ.get("LOCAL_TEST_MARKER"),
        "function_name": context.function_name,
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
    }


def boom(event, context):
    raise ValueError(f"boom: {event.get('why', 'asked to fail')}")


def flaky(event, context):
    """Fails for keys containing 'always-fails'; fails the first time for keys containing 'fails-once'."""
    keys = [unquote_plus(r["s3"]["object"]["key"]) for r in event.get("Records", [])]
    state = Path(os.environ["FLAKY_STATE_DIR"])
    for key in keys:
        if "always-fails" in key:
            raise RuntimeError(f"{key} always fails")
        marker = state / hashlib.sha256(key.encode()).hexdigest()
        if "fails-once" in key and not marker.exists():
            marker.write_text(key)
            raise RuntimeError(f"{key} fails this once")
    return {"keys": keys}


def sleepy(event, context):
    """Sleeps ``event["sleep_s"]`` seconds (past the function timeout when asked to), then answers."""
    import time

    time.sleep(float(event.get("sleep_s", 0)))
    return {"slept": event.get("sleep_s", 0)}


def slow_keys(event, context):
    """Sleeps past any short timeout for keys containing 'slow'; returns a bare string otherwise (not a dict)."""
    import time

    keys = [unquote_plus(r["s3"]["object"]["key"]) for r in event.get("Records", [])]
    if any("slow" in key for key in keys):
        time.sleep(30)
    return "done: " + ", ".join(keys)
