"""``imagelift local up|down|status|invoke``: template.yaml's stack on this machine (moto on 127.0.0.1), no Docker.

imagelift local up [--detach]      create the stack and keep it running (photos put under images/ get classified)
imagelift local down               stop the stack `local up --detach` started
imagelift local status             is one running, and its names
imagelift local invoke FUNCTION --event FILE [--endpoint URL] [--stage]
                                   run a handler once under the Lambda Runtime Interface Emulator (the
                                   Docker-free twin of `sam local invoke`), with its environment from the
                                   template pointed at the local stack; prints the logs and the response.
                                   --stage first does in the local bucket what an S3 event says (uploads a
                                   sample photo per created key, deletes per removed one) and rewrites the
                                   event with the real names, versions and ETags: tests/events/*.json then
                                   classify instead of failing object_gone
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run template.yaml's stack locally (moto on 127.0.0.1) and invoke its functions without Docker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".cache/local"),
        metavar="DIR",
        help="where `local up` keeps its pid, state and log files (default .cache/local)",
    )

    up = sub.add_parser("up", parents=[state], help="create the stack and keep it running until Ctrl-C (or --detach)")
    up.add_argument("--detach", action="store_true", help="run in the background; stop with `imagelift local down`")
    up.add_argument("--port", type=int, default=0, help="moto's port on 127.0.0.1 (default: a free one)")
    up.add_argument("--concurrency", type=int, default=1, help="classify function instances on the S3 events")
    up.add_argument("--runner", choices=("auto", "rie", "in-process"), default="auto")
    up.set_defaults(func=run_up)

    down = sub.add_parser("down", parents=[state], help="stop the stack started by `imagelift local up --detach`")
    down.set_defaults(func=run_down)

    status = sub.add_parser("status", parents=[state], help="whether a local stack is running, and its names")
    status.set_defaults(func=run_status)

    invoke = sub.add_parser(
        "invoke", parents=[state], help="run a function once with an event, like `sam local invoke`"
    )
    invoke.add_argument("function", metavar="FUNCTION", help="classify, report, or a logical id from template.yaml")
    invoke.add_argument("--event", "-e", required=True, metavar="FILE", help="the event (JSON file; - for stdin)")
    invoke.add_argument(
        "--endpoint",
        metavar="URL",
        help="a moto server holding the stack (default: the one `local up` runs, else a temporary one)",
    )
    invoke.add_argument("--stack-name", default=None, help="stack name at --endpoint (default imagelift-local)")
    invoke.add_argument("--runner", choices=("auto", "rie", "in-process"), default="auto")
    invoke.add_argument("--quiet", action="store_true", help="print only the response")
    invoke.add_argument(
        "--stage",
        action="store_true",
        help="make an S3 event true first: upload a sample photo for each created key, delete each removed one",
    )
    invoke.set_defaults(func=run_invoke)


def _err(text: str) -> None:
    print(f"imagelift local: {text}", file=sys.stderr)


def run_up(args: argparse.Namespace) -> int:
    from infra.localstack.daemon import StatePaths, running_stack, serve, start_detached, usage_text
    from infra.localstack.demo import ElapsedLog

    found = running_stack(StatePaths(args.state_dir))
    if found:
        stack, pid = found
        _err(f"a local stack already runs at {stack.endpoint_url} (pid {pid}); `imagelift local down` stops it")
        return 1
    if args.detach:
        try:
            stack, pid = start_detached(
                port=args.port, concurrency=args.concurrency, runner=args.runner, paths=StatePaths(args.state_dir)
            )
        except RuntimeError as exc:
            _err(str(exc))
            return 1
        print(usage_text(stack))
        print(
            f"\nrunning in the background (pid {pid}, log {args.state_dir / 'local.log'}); stop it with `imagelift local down`"
        )
        return 0
    say = ElapsedLog()
    say("creating template.yaml's stack in moto on 127.0.0.1 ...")

    def ready(stack) -> None:  # type: ignore[no-untyped-def]
        say("ready")
        print(usage_text(stack), flush=True)
        print("\nCtrl-C stops it. Classified uploads are listed below.", flush=True)

    serve(
        port=args.port,
        concurrency=args.concurrency,
        runner=args.runner,
        paths=StatePaths(args.state_dir),
        say=say,
        on_ready=ready,
    )
    return 0


def run_down(args: argparse.Namespace) -> int:
    from infra.localstack.daemon import StatePaths, stop_running

    pid = stop_running(StatePaths(args.state_dir))
    if pid is None:
        print("no local stack is running")
        return 0
    print(f"stopped the local stack (pid {pid})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from infra.localstack.daemon import StatePaths, delivery_status_text, running_stack, usage_text

    found = running_stack(StatePaths(args.state_dir))
    if found is None:
        print("no local stack is running (`imagelift local up` starts one)")
        return 1
    stack, pid = found
    print(f"running (pid {pid})")
    print(usage_text(stack))
    print(delivery_status_text(StatePaths(args.state_dir)))
    return 0


def _read_event(source: str) -> object:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(text) if text.strip() else {}


def run_invoke(args: argparse.Namespace) -> int:
    import contextlib

    from infra.localstack.daemon import StatePaths, running_stack
    from infra.localstack.rie import RieError, RieUnavailable
    from infra.localstack.runner import start_function
    from infra.localstack.stack import DEFAULT_STACK_NAME, LocalStackError, attach_local_stack, running_local_stack

    try:
        event = _read_event(args.event)
    except FileNotFoundError:
        _err(f"event file {args.event} does not exist")
        return 2
    except json.JSONDecodeError as exc:
        _err(f"event {args.event} is not JSON: {exc}")
        return 2

    from infra.localstack.stack import FUNCTION_ALIASES, function_sources

    logical = FUNCTION_ALIASES.get(args.function.lower().replace("-", "_"), args.function)
    known = function_sources()
    if logical not in known and not args.endpoint:
        _err(
            f"no function {args.function!r} in template.yaml (functions: {', '.join(known)}; aliases: classify, report)"
        )
        return 2

    def note(text: str) -> None:
        if not args.quiet:
            print(f"# {text}", file=sys.stderr, flush=True)

    with contextlib.ExitStack() as cleanup:
        try:
            if args.endpoint:
                stack = attach_local_stack(args.endpoint, stack_name=args.stack_name or DEFAULT_STACK_NAME)
            elif found := running_stack(StatePaths(args.state_dir)):
                stack = found[0]
                note(f"using the local stack at {stack.endpoint_url} (pid {found[1]})")
            else:
                note("no local stack is running: creating one for this invocation (`imagelift local up` keeps one)")
                stack = cleanup.enter_context(running_local_stack())
            spec = stack.function(args.function)
            function = start_function(stack, args.function, runner=args.runner, say=note)
        except (LocalStackError, RieUnavailable, RieError) as exc:
            _err(str(exc))
            return 2
        cleanup.callback(function.stop)
        if args.stage:
            from infra.localstack.staging import stage_event

            try:
                event, staged = stage_event(event, stack.client("s3"), stack.uploads_bucket)  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError) as exc:
                _err(f"cannot stage {args.event}: it is not an S3 event ({type(exc).__name__}: {exc})")
                return 2
            for item in staged:
                what = f"uploaded {item.photo}" if item.photo else "deleted"
                if item.event_name == "ObjectRemoved:Delete":
                    what += ", then deleted that version"
                note(f"staged {item.event_name} s3://{stack.uploads_bucket}/{item.key}: {what}")
        how = "the Lambda Runtime Interface Emulator" if function.runner == "rie" else "this process"
        note(f"invoking {spec.logical_id} ({spec.handler} in {spec.code_dir}) under {how}, stack {stack.endpoint_url}")
        try:
            invocation = function.invoke(event)
        except RieError as exc:
            _err(str(exc))
            return 1
    if not args.quiet:
        print("----- logs -----", file=sys.stderr)
        print(invocation.logs, file=sys.stderr)
        print(f"----- response ({invocation.duration_ms:.0f} ms) -----", file=sys.stderr, flush=True)
    print(json.dumps(invocation.payload, indent=2, default=str))
    return 0 if invocation.ok else 1
