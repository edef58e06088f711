"""Run a function of the local stack: under the Runtime Interface Emulator, or in this process where it cannot run.

:func:`start_function` is what the commands use: it prefers the emulator (:class:`infra.localstack.rie.RieFunction`,
the handler in its own process exactly as Lambda runs it) and falls back to :class:`InProcessFunction`, saying so,
where the emulator binary is missing for the platform. Both return :class:`infra.localstack.rie.Invocation`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from infra.localstack.rie import Invocation, RieFunction, RieUnavailable, rie_binary
from infra.localstack.running import Running
from infra.localstack.server import patched_environ
from infra.localstack.stack import FunctionSpec, LocalStack

RUNNERS = ("rie", "in-process", "auto")


class FunctionRunner(Protocol):
    name: str

    def invoke(self, event: Any, timeout_s: float | None = None) -> Invocation: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class LocalContext:
    """The Lambda context object a handler receives (the attributes Powertools and handlers read)."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _LogSink(io.TextIOBase):
    """stdout for in-process handlers: loggers created at import keep writing here, into the current invocation."""

    def __init__(self) -> None:
        self.current: list[str] | None = None

    def write(self, text: str) -> int:
        if self.current is not None:
            self.current.append(text)
        return len(text)


_ENV_LOCK = threading.Lock()  # one handler at a time may own os.environ in this process


class InProcessFunction(Running):
    """The handler imported into this process (module-level code runs once, like a cold start), env applied per call.

    The fallback where the emulator cannot run. Invocations hold a process-wide lock: the handler reads its
    configuration from ``os.environ``, which is shared by everything in the process.
    """

    runner = "in-process"

    def __init__(self, spec: FunctionSpec, env: dict[str, str], name: str | None = None) -> None:
        self.spec = spec
        self.env = env
        self.name = name or spec.logical_id
        self._module: ModuleType | None = None
        self._handler: Callable[[Any, Any], Any] | None = None
        self._sink = _LogSink()

    def start(self) -> None:
        if self._handler is not None:
            return
        module_name, _, function_name = self.spec.handler.rpartition(".")
        path = Path(self.spec.code_dir) / (module_name.replace(".", "/") + ".py")
        unique = f"_local_{self.spec.logical_id}_{module_name.replace('.', '_')}"
        spec = importlib.util.spec_from_file_location(unique, path)
        if spec is None or spec.loader is None:
            raise RieUnavailable(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        lines: list[str] = []
        with _ENV_LOCK, patched_environ(self.env), contextlib.redirect_stdout(self._sink):
            self._sink.current = lines
            try:
                spec.loader.exec_module(module)
            finally:
                self._sink.current = None
        self._module = module
        self._handler = getattr(module, function_name)

    def invoke(self, event: Any, timeout_s: float | None = None) -> Invocation:
        self.start()
        assert self._handler is not None
        request_id = str(uuid.uuid4())
        context = LocalContext(
            function_name=self.spec.function_name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            aws_request_id=request_id,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{self.spec.function_name}",
            log_group_name=f"/aws/lambda/{self.spec.function_name}",
            _deadline=time.monotonic() + self.spec.timeout_s,
        )
        lines = [f"START RequestId: {request_id} Version: $LATEST (in process)\n"]
        payload: Any
        error = None
        started = time.perf_counter()
        with _ENV_LOCK, patched_environ(self.env), contextlib.redirect_stdout(self._sink):
            self._sink.current = lines
            try:
                payload = self._handler(event, context)
            except Exception as exc:
                stack = traceback.format_exception(type(exc), exc, exc.__traceback__)
                payload = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": stack}
                error = f"{type(exc).__name__}: {exc}"
                lines.append(f"[ERROR] {error}\n")
            finally:
                self._sink.current = None
        duration_ms = (time.perf_counter() - started) * 1000
        lines.append(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\n")
        return Invocation(
            ok=error is None,
            payload=payload,
            logs="".join(lines).rstrip("\n"),
            duration_ms=duration_ms,
            error=error,
            runner=self.runner,
        )

    def stop(self) -> None:
        """Nothing to stop: the module stays imported (a warm container)."""


def start_function(
    stack: LocalStack,
    function: str,
    *,
    runner: str = "auto",
    name: str | None = None,
    extra_env: dict[str, str] | None = None,
    say: Callable[[str], None] | None = None,
) -> RieFunction | InProcessFunction:
    """A started runner of ``function`` with its template environment pointed at ``stack``.

    ``runner``: ``rie`` (fail if the emulator cannot run), ``in-process``, or ``auto`` (the emulator where it
    can run, else in process, and ``say`` is told why).
    """
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, not {runner!r}")
    spec = stack.function(function)
    env = {**stack.runtime_env(spec), **(extra_env or {})}
    if runner in {"rie", "auto"}:
        try:
            binary = rie_binary(progress=say)
        except RieUnavailable as exc:
            if runner == "rie":
                raise
            if say:
                say(f"{exc}; running {spec.logical_id} in process instead")
        else:
            rie = RieFunction(spec.code_dir, spec.handler, env, binary=binary, name=name or spec.logical_id)
            rie.start()
            return rie
    in_process = InProcessFunction(spec, env, name=name)
    in_process.start()
    return in_process
