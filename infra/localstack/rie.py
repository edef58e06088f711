"""Run a Lambda handler the way a Lambda container does, without Docker: the AWS Lambda Runtime Interface Emulator.

The emulator (a static Linux binary, ``aws-lambda-rie-<arch>``) ships inside the aws-sam-cli wheel, which is what
``sam local invoke`` copies into its containers. :func:`rie_binary` downloads that wheel with pip (no dependencies,
never installed: aws-sam-cli pins packages that conflict with ours), checks the wheel's and the binary's sha256
and keeps only the binary under ``.cache/rie/``. :class:`RieFunction` starts the emulator bound to 127.0.0.1 with
``python -m awslambdaric <handler>`` as the runtime (awslambdaric is the runtime interface client inside AWS's
Python base images), in the function's code folder and with its environment; :meth:`RieFunction.invoke` posts an
event to the emulator's invocations endpoint and returns the response and the logs of that invocation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.localstack.running import Running
from infra.localstack.server import LOCAL_HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = ROOT / ".cache" / "rie"

SAM_CLI_VERSION = "1.170.0"
SAM_CLI_WHEEL = f"aws_sam_cli-{SAM_CLI_VERSION}-py3-none-any.whl"
SAM_CLI_WHEEL_SHA256 = "24ebaf5ecba38dc1758089968cb89ab61e124b84e92a344fc7a2771a47f4d0bf"
RIE_SHA256 = {
    "x86_64": "6b1e686e62ab2baf5759c412c4864276ef2a88b094fca53ec070637ccba9b9a5",
    "arm64": "ec2e5d09633d853834c008b1ef264bf834b258a94d551d2b2074966494b39a21",
}
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


class RieUnavailable(RuntimeError):
    """No emulator binary for this platform, or it could not be fetched: run the handler in process instead."""


class RieError(RuntimeError):
    """The emulator did not start or did not answer."""


def rie_arch(machine: str | None = None, system: str | None = None) -> str | None:
    """The emulator's architecture name for this machine, or None where no binary can run (not Linux, other CPU)."""
    if (system or platform.system()) != "Linux":
        return None
    machine = (machine or platform.machine()).lower()
    if machine in {"x86_64", "amd64"}:
        return "x86_64"
    if machine in {"aarch64", "arm64"}:
        return "arm64"
    return None


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def rie_binary(cache_dir: Path = DEFAULT_CACHE, *, download: bool = True, progress: Any = None) -> Path:
    """Path of the emulator binary for this machine, fetched (pinned aws-sam-cli wheel, sha256-checked) if needed.

    Raises :class:`RieUnavailable` when this platform has no binary, or it is not cached and cannot be fetched.
    """
    arch = rie_arch()
    if arch is None:
        raise RieUnavailable(
            f"the Lambda Runtime Interface Emulator is a Linux x86_64/arm64 binary; this is "
            f"{platform.system()} {platform.machine()}"
        )
    target = cache_dir / SAM_CLI_VERSION / f"aws-lambda-rie-{arch}"
    if target.is_file() and _sha256(target) == RIE_SHA256[arch]:
        return target
    if not download:
        raise RieUnavailable(f"{target} is not there (run `imagelift local rie` to fetch it)")
    wheel_dir = cache_dir / "wheels"
    wheel = wheel_dir / SAM_CLI_WHEEL
    if not wheel.is_file():
        if progress:
            progress(f"fetching the Lambda Runtime Interface Emulator (aws-sam-cli=={SAM_CLI_VERSION} wheel, 8 MB)")
        wheel_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
            f"aws-sam-cli=={SAM_CLI_VERSION}", "-d", str(wheel_dir),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wheel.is_file():
            raise RieUnavailable(
                f"pip could not download aws-sam-cli=={SAM_CLI_VERSION}: {result.stderr.strip()[-500:]}"
            )
    actual = _sha256(wheel)
    if actual != SAM_CLI_WHEEL_SHA256:
        wheel.unlink()
        raise RieUnavailable(f"{wheel.name} has sha256 {actual}, expected {SAM_CLI_WHEEL_SHA256}: deleted it")
    member = f"samcli/local/rapid/aws-lambda-rie-{arch}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            tmp.write(archive.read(member))
        except KeyError:
            raise RieUnavailable(f"{wheel.name} has no {member}") from None
    tmp_path = Path(tmp.name)
    if _sha256(tmp_path) != RIE_SHA256[arch]:
        tmp_path.unlink()
        raise RieUnavailable(f"{member} in {wheel.name} does not have the pinned sha256")
    tmp_path.chmod(0o755)
    tmp_path.replace(target)
    return target


@dataclass
class Invocation:
    """One invocation's outcome, as Lambda reports it."""

    ok: bool
    payload: Any
    """The handler's return value (JSON-decoded), or Lambda's error object {errorMessage, errorType, ...}."""
    logs: str
    duration_ms: float
    error: str | None = None
    """``errorType: errorMessage`` when the handler raised (Lambda's ``X-Amz-Function-Error``)."""
    runner: str = "rie"


class RieFunction(Running):
    """A handler running under the Runtime Interface Emulator on 127.0.0.1 (one "container"; a context manager).

    Invocations are serialised: like a Lambda execution environment, one instance runs one event at a time.
    The runtime starts (imports the handler module: the cold start) on the first invocation.
    """

    runner = "rie"

    def __init__(
        self,
        code_dir: str | Path,
        handler: str,
        env: dict[str, str],
        *,
        binary: Path | None = None,
        python: str = sys.executable,
        name: str = "function",
        log_level: str = "error",
    ) -> None:
        self.code_dir = Path(code_dir)
        self.handler = handler
        self.env = env
        self.binary = binary or rie_binary()
        self.python = python
        self.name = name
        self.log_level = log_level
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._invoke_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.port}{INVOKE_PATH}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 20.0) -> None:
        if self._process is not None:
            return
        self.port, api_port = free_port(), free_port()
        env = {
            # A Lambda container's environment is the function's, not the caller's: keep only what a process needs.
            **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ"}},
            **self.env,
            "LOG_LEVEL": self.env.get("LOG_LEVEL", "INFO"),
            "PYTHONUNBUFFERED": "1",
        }
        # PYTHONPATH: in the image the imagelift package sits beside app.py; here it comes from the project's venv.
        command = [
            str(self.binary),
            "--runtime-interface-emulator-address", f"{LOCAL_HOST}:{self.port}",
            "--runtime-api-address", f"{LOCAL_HOST}:{api_port}",
            "--log-level", self.log_level,
            self.python, "-m", "awslambdaric", self.handler,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            cwd=self.code_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the emulator and the runtime together
        )
        self._reader = threading.Thread(target=self._read_output, name=f"rie-{self.name}-log", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RieError(f"the emulator exited with {self._process.returncode}: {self.output()[-2000:]}")
            try:
                import socket

                with socket.create_connection((LOCAL_HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RieError(f"the emulator did not listen on {LOCAL_HOST}:{self.port} within {timeout_s:.0f} s")

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            with self._lines_lock:
                self._lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def output(self) -> str:
        with self._lines_lock:
            return "\n".join(self._lines)

    def invoke(self, event: Any, timeout_s: float | None = None) -> Invocation:
        """POST ``event`` to the emulator; returns the handler's response (or error) and this invocation's logs."""
        if self._process is None:
            self.start()
        body = json.dumps(event).encode()
        timeout = timeout_s or float(self.env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "300")) + 30
        with self._invoke_lock:
            with self._lines_lock:
                first_line = len(self._lines)
            request = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    raw = response.read()
                    function_error = response.headers.get("X-Amz-Function-Error")
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                function_error = exc.headers.get("X-Amz-Function-Error") or f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                raise RieError(f"no answer from the emulator at {self.url}: {exc}") from exc
            duration_ms = (time.perf_counter() - started) * 1000
            logs = self._logs_since(first_line)
        try:
            payload = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            # Lambda JSON-encodes whatever a handler returns, so a body that is not JSON is the emulator's own
            # word: "Task timed out after 3.00 seconds", or the runtime exiting. Either is a failed invocation
            # (Lambda retries it), never a success.
            text = raw.decode("utf-8", errors="replace").strip()
            timed_out = text.startswith("Task timed out")
            payload = {"errorType": "Sandbox.Timedout" if timed_out else "Runtime.Unknown", "errorMessage": text}
            function_error = function_error or "Unhandled"
        error = None
        if isinstance(payload, dict) and "errorType" in payload and "errorMessage" in payload:
            function_error = function_error or "Unhandled"
        if function_error:
            detail = payload if isinstance(payload, dict) else {}
            error = f"{detail.get('errorType', function_error)}: {detail.get('errorMessage', payload)}"
        return Invocation(ok=error is None, payload=payload, logs=logs, duration_ms=duration_ms, error=error)

    def _logs_since(self, first_line: int, settle_s: float = 2.0) -> str:
        """Lines printed since ``first_line``, waiting briefly for the emulator's REPORT line that closes them."""
        deadline = time.monotonic() + settle_s
        while True:
            with self._lines_lock:
                lines = self._lines[first_line:]
            if any(line.startswith("REPORT RequestId") for line in lines) or time.monotonic() > deadline:
                return "\n".join(lines)
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=2)
