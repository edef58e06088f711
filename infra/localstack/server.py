"""A moto server on 127.0.0.1 standing in for AWS, and the environment that points AWS clients at it.

moto runs as a ``ThreadedMotoServer`` (a thread of this process, an HTTP endpoint on a free loopback port), so
other processes (the Lambda Runtime Interface Emulator, worker processes, the AWS CLI) reach the same
resources through ``AWS_ENDPOINT_URL``. Nothing listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from infra.localstack.running import Running

LOCAL_HOST = "127.0.0.1"
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account: bucket names in tests/events use it

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_port(host: str = LOCAL_HOST) -> int:
    """A TCP port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def patched_environ(env: dict[str, str]) -> Iterator[None]:
    """``env`` set in ``os.environ`` for the duration; each variable then back to its old value, or unset again."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def client_env(endpoint_url: str, region: str = LOCAL_REGION) -> dict[str, str]:
    """Environment variables that send every AWS SDK and the AWS CLI to ``endpoint_url`` with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # Tracing needs the X-Ray daemon of a real Lambda; locally the SDK would only log that it is missing.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_XRAY_SDK_ENABLED": "false",
    }


class MotoServer(Running):
    """moto as an HTTP server on 127.0.0.1 (a free port unless given); a context manager.

    >>> with MotoServer() as server:
    ...     boto3.client("s3", endpoint_url=server.url, ...)
    """

    def __init__(self, host: str = LOCAL_HOST, port: int = 0) -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"the local stack binds to the loopback address only, not {host!r}")
        self.host = host
        self.port = port
        self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the moto server is not running: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Start serving; returns the endpoint URL."""
        from moto.server import ThreadedMotoServer

        if self._server is not None:
            return self.url
        # werkzeug logs every request at INFO; a burst of uploads would bury the progress lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self.port = int(server.get_host_and_port()[1])
        self._server = server
        return self.url

    def stop(self) -> None:
        """Stop serving and drop everything the server held.

        moto keeps its resources in process-wide state, shared by every server and ``mock_aws`` of the process:
        without the reset, a stack created after this one (a second test module) would find its buckets taken.
        """
        if self._server is not None:
            from moto.moto_api._internal.models import moto_api_backend

            self._server.stop()
            self._server = None
            moto_api_backend.reset()
