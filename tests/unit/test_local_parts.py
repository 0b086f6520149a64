"""The local stack's own parts that need no AWS: the API Gateway event, the scheduler, the CLI."""

import threading
import time

import pytest

from orderflow.cli import build_parser
from orderflow_local.http_front import proxy_event
from orderflow_local.lambda_binding import function_name_of
from orderflow_local.scheduler import LocalScheduler


def test_proxy_event_has_the_api_gateway_rest_shape():
    event = proxy_event("POST", "/orders?status=paid&status=new&x=", {"Content-Type": "application/json"},
                        b'{"a": 1}', "127.0.0.1")
    assert event["httpMethod"] == "POST" and event["path"] == "/orders"
    assert event["queryStringParameters"] == {"status": "new", "x": ""}
    assert event["multiValueQueryStringParameters"]["status"] == ["paid", "new"]
    assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["requestId"]


def test_binary_bodies_are_base64_encoded():
    event = proxy_event("POST", "/x", {}, b"\xff\xfe", "127.0.0.1")
    assert event["isBase64Encoded"] is True


def test_function_names_come_out_of_arns():
    assert function_name_of("arn:aws:lambda:us-east-1:1:function:orderflow-allocate") == "orderflow-allocate"
    assert function_name_of("arn:aws:lambda:us-east-1:1:function:orderflow-allocate:$LATEST") == "orderflow-allocate"
    assert function_name_of("orderflow-allocate") == "orderflow-allocate"


def test_scheduler_runs_jobs_on_their_interval_sped_up_and_survives_failures():
    ran = []
    scheduler = LocalScheduler(speedup=100)
    scheduler.add("tick", every_seconds=1, run=lambda: ran.append(1))  # every 10 ms at 100x
    boom = scheduler.add("boom", every_seconds=1, run=lambda: 1 / 0)
    scheduler.start()
    deadline = time.monotonic() + 5
    while (len(ran) < 3 or boom.failures < 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    scheduler.stop()
    assert len(ran) >= 3
    assert boom.failures >= 2 and "ZeroDivisionError" in boom.last_error


def test_run_now_runs_in_the_callers_thread():
    scheduler = LocalScheduler()
    scheduler.add("import", every_seconds=3600, run=lambda: threading.current_thread().name)
    assert scheduler.run_now("import") == threading.current_thread().name


def test_scheduler_refuses_nonsense():
    with pytest.raises(ValueError):
        LocalScheduler(speedup=0)
    with pytest.raises(ValueError):
        LocalScheduler().add("x", every_seconds=0, run=lambda: None)


def test_cli_help_names_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "local" in out and "trace" in out
    args = build_parser().parse_args(["local", "--port", "0", "--no-seed"])
    assert args.port == 0 and args.seed is False


def test_the_api_resolver_keeps_each_threads_request_apart():
    """Powertools keeps the current request on the resolver (class attributes and per-instance dicts); the
    local front serves many requests at once, so each thread must see only its own."""
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    from orderflow.api.app import app
    from orderflow_local import api_containers

    api_containers.install()
    barrier = threading.Barrier(2)
    seen = {}

    def request(name: str) -> None:
        BaseRouter.current_event = name  # what resolve() does
        app.append_context(_route=name)
        barrier.wait()  # both requests are now "in flight"
        seen[name] = (app.current_event, BaseRouter.current_event, app.context.get("_route"))
        barrier.wait()
        app.clear_context()

    threads = [threading.Thread(target=request, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"first": ("first",) * 3, "second": ("second",) * 3}


def _front_reply(raw: bytes) -> bytes:
    """Send raw bytes to a local API front (token ``t``; /open is public) and read what it answers."""
    import socket

    from orderflow_local.cloudformation import Route
    from orderflow_local.http_front import ApiFront

    def routes(method, path):
        return Route(path=path, method="ANY", authorization="NONE" if path == "/open" else "CUSTOM")

    seen = []

    def handler(event, context):
        seen.append(event)
        return {"statusCode": 200, "body": "handled"}

    front = ApiFront("127.0.0.1", 0, "t", handler, routes)
    front.start()
    try:
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
            conn.sendall(raw)  # and the connection stays open: a server reading to EOF would hang here
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
        return answer + (b"handled" if seen else b"")
    finally:
        front.stop()


def test_the_local_front_refuses_a_negative_or_malformed_content_length_without_reading_to_eof():
    for length in (b"-1", b"1e9", b"+5", b"abc"):
        answer = _front_reply(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{")
        assert answer.startswith(b"HTTP/1.1 400"), (length, answer[:80])
    answer = _front_reply(b"POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
    assert answer.startswith(b"HTTP/1.1 411"), answer[:80]


def test_the_local_front_checks_the_token_before_it_reads_a_body():
    """A caller without the token cannot make the front read (or wait for) a body, however long."""
    answer = _front_reply(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 401") and not answer.endswith(b"handled"), answer[:80]
    answer = _front_reply(b"POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"handled"), answer[:80]
