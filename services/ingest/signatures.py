"""Signed statements (xAPI 1.0.3 Data 2.6, 2.0 4.4): the checks an LRS must make at a minimum.

A statement is signed when one of its attachments has the usageType
``http://adlnet.gov/expapi/attachments/signature`` (its contentType must be
``application/octet-stream``: checked by the validator). Its multipart part must hold a JWS in
compact serialisation whose

* header is JSON with ``alg`` ``RS256``, ``RS384`` or ``RS512``;
* payload is a valid JSON serialisation of the statement as it was before the signature was
  added: logically equivalent to the received statement, disregarding what LRS processing may
  change (``id``, ``authority``, ``stored``, ``timestamp``, ``version``) and the signature
  attachment itself.

Anything else is a 400 (rule ``signature.*``). The RSA signature itself is not verified: the
spec asks for that only when the JWS header carries an X.509 certificate (``x5c``), which needs
a crypto library the service does not depend on (see CONFORMANCE.md).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Final

import orjson

from services.ingest.bodies import AttachmentPart
from services.ingest.canonical import canonical
from services.ingest.errors import BadRequestError
from shared.xapi import (
    SIGNATURE_USAGE,
    Statement,
    StatementValidationError,
    XapiVersion,
    parse_statement,
    statement_to_json,
)

ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512"})
_DISREGARDED: Final = ("id", "authority", "stored", "timestamp", "version")


def _bad(message: str, rule: str) -> BadRequestError:
    return BadRequestError(message, rule=rule)


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise _bad("the JWS is not base64url encoded", "signature.malformed") from None


def decode_jws(data: bytes) -> tuple[dict[str, Any], Any]:
    """The header and the JSON payload of a compact-serialised JWS (signature not verified)."""
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _bad("the signature is not a compact JWS", "signature.malformed") from None
    segments = text.split(".")
    if len(segments) != 3 or not all(segments):
        raise _bad("the signature is not a compact JWS (3 segments)", "signature.malformed")
    try:
        header = orjson.loads(_b64url(segments[0]))
    except orjson.JSONDecodeError:
        raise _bad("the JWS header is not JSON", "signature.malformed") from None
    if not isinstance(header, dict):
        raise _bad("the JWS header is not a JSON object", "signature.malformed")
    if header.get("alg") not in ALGORITHMS:
        raise _bad(
            f"the JWS algorithm must be RS256, RS384 or RS512, not {header.get('alg')!r}",
            "signature.algorithm",
        )
    try:
        payload = orjson.loads(_b64url(segments[1]))
    except orjson.JSONDecodeError:
        raise _bad("the JWS payload is not valid JSON", "signature.payload") from None
    return header, payload


def _comparable(body: dict[str, Any]) -> Any:
    out = {k: v for k, v in body.items() if k not in _DISREGARDED}
    kept = [a for a in out.pop("attachments", ()) if a.get("usageType") != SIGNATURE_USAGE]
    if kept:
        out["attachments"] = kept
    return canonical(out)


def check_signature(stmt: Statement, data: bytes, version: XapiVersion) -> None:
    """400 unless ``data`` is a well-formed JWS signature of ``stmt``."""
    _, payload = decode_jws(data)
    if not isinstance(payload, dict):
        raise _bad("the JWS payload is not a statement", "signature.payload")
    try:
        signed = parse_statement(payload, version=version)
    except StatementValidationError:
        raise _bad("the JWS payload is not a valid statement", "signature.payload") from None
    received = orjson.loads(statement_to_json(stmt))
    original = orjson.loads(statement_to_json(signed))
    if _comparable(received) != _comparable(original):
        raise _bad(
            "the JWS payload differs from the statement it signs", "signature.payload_mismatch"
        )


def check_signatures(
    statements: Sequence[Statement], parts: Sequence[AttachmentPart], version: XapiVersion
) -> None:
    """Check every signature attachment of ``statements`` against its multipart part."""
    by_hash = {part.sha2: part for part in parts}
    for stmt in statements:
        for attachment in stmt.attachments or ():
            if attachment.usage_type != SIGNATURE_USAGE:
                continue
            part = by_hash.get(attachment.sha2.lower())
            if part is None:
                raise _bad(
                    "a signature attachment must be sent as a multipart part",
                    "signature.missing_part",
                )
            check_signature(stmt, part.data, version)
