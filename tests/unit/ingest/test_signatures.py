"""Signed-statement checks and the duration rule of statement comparison."""

from __future__ import annotations

import base64

import orjson
import pytest

from services.ingest.canonical import content_hash
from services.ingest.errors import BadRequestError
from services.ingest.signatures import check_signature, decode_jws
from shared.xapi import XapiVersion, parse_statement
from tests.unit.ingest.samples import statement

V2 = XapiVersion.V2_0
RS256 = base64.urlsafe_b64encode(b'{"alg":"RS256"}').decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jws(payload: object, alg: str = "RS256") -> bytes:
    head = _b64(orjson.dumps({"alg": alg}))
    return f"{head}.{_b64(orjson.dumps(payload))}.{_b64(b'sig')}".encode()


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rs_algorithms_are_accepted(alg: str) -> None:
    header, payload = decode_jws(jws({"a": 1}, alg))
    assert header["alg"] == alg
    assert payload == {"a": 1}


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (jws({"a": 1}, "HS256"), "signature.algorithm"),
        (jws({"a": 1}, "none"), "signature.algorithm"),
        (b"a.b", "signature.malformed"),
        (f"{_b64(b'{nope')}.{_b64(b'{}')}.x".encode(), "signature.malformed"),
        (f"{RS256}.{_b64(b'{bad')}.x".encode(), "signature.payload"),
    ],
)
def test_malformed_signatures_are_refused(data: bytes, rule: str) -> None:
    with pytest.raises(BadRequestError) as info:
        decode_jws(data)
    assert info.value.rule == rule


def test_payload_must_be_the_statement_lrs_fields_aside() -> None:
    sent = statement(id="6d1b9a5e-5a57-4f67-9a8c-2f8e2d1d0c11")
    stmt = parse_statement(sent, version=V2)
    original = {k: v for k, v in sent.items() if k not in ("id", "timestamp")}
    check_signature(stmt, jws(original), V2)  # id/timestamp: LRS processing, disregarded
    changed = {**original, "verb": {"id": "http://example.com/verbs/other"}}
    with pytest.raises(BadRequestError) as info:
        check_signature(stmt, jws(changed), V2)
    assert info.value.rule == "signature.payload_mismatch"


def test_durations_compare_to_hundredths_of_a_second() -> None:
    def body(duration: str) -> dict[str, object]:
        return statement(result={"duration": duration})

    assert content_hash(body("PT1M0.1237S")) == content_hash(body("PT1M0.12S"))
    assert content_hash(body("PT5.0S")) == content_hash(body("PT5S"))
    assert content_hash(body("PT1M0.13S")) != content_hash(body("PT1M0.12S"))
