"""Abuse over HTTP against a real ingest process: generated valid statements are always
accepted, targeted corruptions always get 400 naming the broken rule, random bytes never get a
5xx; oversized bodies get 413 without being read whole; deeply nested JSON is refused quickly;
a slow client is cut off in bounded time while others are served."""

from __future__ import annotations

import copy
import select
import socket
import time
import uuid
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.e2e.ingest.conftest import MAX_BODY, Service
from tests.unit.xapi.samples import with_value, without
from tests.unit.xapi.strategies import REQUIRED, Doc, null_targets, objects, statements

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PATH = "/xapi/statements"
SLOW_CLIENT_BOUND = 15.0  # seconds a request may take to trickle in before the server gives up


def sendable(doc: Doc) -> Doc:
    """``doc`` made acceptable to an LRS on its own: a fresh id (generated ids repeat across
    examples, which would rightly be 409) and a fileUrl on every attachment (a JSON request
    carries no attachment parts)."""
    out = copy.deepcopy(doc)
    out["id"] = str(uuid.uuid4())
    for _path, kind, node in objects(out):
        if kind == "attachment":
            node.setdefault("fileUrl", "https://files.example/certificate.pdf")
    return out


def _post(service: Service, body: bytes, version: str = "2.0.0") -> tuple[int, Any]:
    status, _, data = service.request("POST", PATH, body, service.headers(version=version))
    try:
        return status, orjson.loads(data)
    except orjson.JSONDecodeError:
        return status, data


@PROPERTIES
@given(doc=statements(v2=True))
def test_valid_statements_are_accepted(service: Service, doc: Doc) -> None:
    body = orjson.dumps(sendable(doc))
    assume(b"\\u0000" not in body)  # valid xAPI, but jsonb cannot hold NUL: 400 storage.value
    status, answer = _post(service, body)
    assert status == 200, answer
    assert isinstance(answer, list)
    assert len(answer) == 1


@st.composite
def broken(draw: st.DrawFn) -> tuple[Doc, str]:
    """A valid statement with one targeted corruption, and the rule it must be refused with."""
    doc = sendable(draw(statements(v2=True)))
    kind = draw(st.sampled_from(["required", "null", "unknown", "iri", "uuid", "timestamp"]))
    if kind == "required":
        targets = [
            (*path, key)
            for path, k, node in objects(doc)
            for key in REQUIRED.get(k, ())
            if key in node
        ]
        return without(doc, draw(st.sampled_from(targets))), "required"
    if kind == "null":
        return with_value(doc, draw(st.sampled_from(null_targets(doc))), None), "null_value"
    if kind == "unknown":
        path, _, _ = draw(st.sampled_from(list(objects(doc))))
        return with_value(doc, (*path, "zz-unknown"), 1), "unknown_property"
    if kind == "iri":
        return with_value(doc, ("verb", "id"), draw(st.sampled_from(["not an iri", "x"]))), (
            "iri.scheme"
        )
    if kind == "uuid":
        bad = draw(st.sampled_from(["not-a-uuid", "1234", str(uuid.uuid4()).replace("-", "")]))
        return with_value(doc, ("id",), bad), "uuid.canonical"
    stamp = draw(st.sampled_from(["2024-05-01T10:00:00-00:00", "2024-05-01T10:00:00.000-0000"]))
    return with_value(doc, ("timestamp",), stamp), "timestamp.offset"


@PROPERTIES
@given(case=broken())
def test_broken_statements_are_400_naming_the_rule(service: Service, case: tuple[Doc, str]) -> None:
    doc, rule = case
    status, answer = _post(service, orjson.dumps(doc))
    assert status == 400, answer
    rules = {v["rule"] for v in answer["violations"]}
    assert rule in rules, answer


@PROPERTIES
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bodies_never_get_a_5xx(service: Service, body: bytes) -> None:
    status, answer = _post(service, body)
    assert 400 <= status < 500, (status, answer)


def _raw(service: Service, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    sock.sendall(head)
    return sock


def _head(service: Service, extra: str) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{service.port}"]
    lines += [f"{k}: {v}" for k, v in service.headers().items()]
    return ("\r\n".join([*lines, extra]) + "\r\n\r\n").encode()


def _status_of(sock: socket.socket, within: float) -> int | None:
    """The status of the response on ``sock`` within ``within`` seconds (None: none came)."""
    sock.settimeout(within)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return -1
    if not data:
        return -1  # closed without a response
    return int(data.split(b" ", 2)[1])


def test_oversized_bodies_are_413_without_being_read(service: Service) -> None:
    # announced size: refused before a byte of the body is read
    started = time.monotonic()
    with _raw(service, _head(service, "Content-Length: 10000000000")) as sock:
        sock.sendall(b"[" * 1024)
        assert _status_of(sock, 5) == 413
    # chunked, no size announced: refused once the limit is passed, without waiting for the rest
    with _raw(service, _head(service, "Transfer-Encoding: chunked")) as sock:
        chunk = b"[" * 65536
        sent = 0
        while sent <= MAX_BODY + 2 * len(chunk):
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        assert _status_of(sock, 5) == 413
    assert time.monotonic() - started < 10
    assert service.request("GET", "/healthz")[0] == 200


def _nested_statement(depth: int, open_: str, close: str) -> bytes:
    inner = '{"a":' if open_ == "{" else open_
    deep = inner * depth + ("1" if open_ == "{" else "") + close * depth
    base = sendable(
        {
            "actor": {"mbox": "mailto:deep@example.com"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
            "object": {"id": "https://lms.example.com/a/1"},
        }
    )
    base["context"] = {"extensions": {"https://x.example/deep": "@@DEEP@@"}}
    return orjson.dumps(base).replace(b'"@@DEEP@@"', deep.encode())


def test_deeply_nested_json_is_refused_quickly(service: Service) -> None:
    """Nesting in an extension: accepted or refused (400), quickly, never a 5xx. Very deep
    nesting (orjson's parser stops at 1024 levels) must be 400."""
    outcomes: dict[str, tuple[int, float, bytes]] = {}
    sizes: dict[str, int] = {}
    for depth in (200, 255, 300, 2_000, 100_000):
        for name, open_, close in (("arrays", "[", "]"), ("objects", "{", "}")):
            body = _nested_statement(depth, open_, close)
            started = time.monotonic()
            status, _, data = service.request("POST", PATH, body, service.headers(), timeout=20)
            outcomes[f"{name}x{depth}"] = (status, time.monotonic() - started, data[:160])
            sizes[f"{name}x{depth}"] = len(body)
    assert service.request("GET", "/healthz")[0] == 200
    slow = {k: v for k, v in outcomes.items() if v[1] > 5}
    assert not slow, slow
    errors = {k: v for k, v in outcomes.items() if v[0] >= 500}
    assert not errors, f"deep nesting made the server fail: {errors}"
    huge = {k: v for k, v in outcomes.items() if "x100000" in k or "x2000" in k}
    # a body over the size limit is refused for its size (413) before it is parsed
    assert all(v[0] == (413 if sizes[k] > MAX_BODY else 400) for k, v in huge.items()), huge


def test_a_slow_client_is_cut_off_and_others_are_served(service: Service) -> None:
    body = orjson.dumps(sendable(statements_example()))
    started = time.monotonic()
    others: list[float] = []
    outcome: int | None = None
    with _raw(service, _head(service, f"Content-Length: {len(body) + 10_000}")) as sock:
        sock.setblocking(False)
        sent = 0
        while time.monotonic() - started < SLOW_CLIENT_BOUND + 2:
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                try:
                    data = sock.recv(4096)
                    outcome = int(data.split(b" ", 2)[1]) if data else -1
                except ConnectionResetError:
                    outcome = -1
                break
            try:
                sock.send(body[sent % len(body) : sent % len(body) + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                outcome = -1
                break
            if sent % 6 == 0:  # others are served meanwhile
                t0 = time.monotonic()
                assert service.request("GET", "/healthz", timeout=5)[0] == 200
                others.append(time.monotonic() - t0)
    elapsed = time.monotonic() - started
    assert others
    assert max(others) < 2, others
    assert outcome is not None, (
        f"a client trickling its body (1 byte / 0.5 s) kept its request open for {elapsed:.0f}s; "
        f"the server should time it out within {SLOW_CLIENT_BOUND:.0f}s"
    )
    assert elapsed <= SLOW_CLIENT_BOUND + 1


def statements_example() -> Doc:
    return {
        "actor": {"mbox": "mailto:slow@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
        "object": {"id": "https://lms.example.com/a/1"},
    }
