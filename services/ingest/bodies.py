"""Reading xAPI requests: size limit, JSON or ``multipart/mixed`` bodies with attachments, and
the 1.0.3 alternate request syntax (``POST ...?method=PUT`` with a form body). A body that
does not arrive within the body timeout is refused with 408 (rule ``body.timeout``)."""

from __future__ import annotations

import asyncio
import hashlib
import urllib.parse
from dataclasses import dataclass, field
from typing import Final

from aiohttp import BodyPartReader, web
from multidict import CIMultiDict, MultiDict

from services.ingest.errors import BadRequestError, PayloadTooLargeError, RequestTimeoutError

_HASHES: Final = {56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
# headers a form body may carry in the alternate request syntax
_FORM_HEADERS: Final = frozenset(
    {"authorization", "x-experience-api-version", "content-type", "content-length", "if-match",
     "if-none-match"}
)  # fmt: skip


@dataclass(frozen=True)
class AttachmentPart:
    sha2: str
    content_type: str
    data: bytes


@dataclass
class XapiRequest:
    """A request to the statements resource, whichever syntax it came in."""

    method: str
    headers: CIMultiDict[str]
    params: MultiDict[str]
    body: bytes = b""
    parts: list[AttachmentPart] = field(default_factory=list)
    alternate: bool = False


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body is larger than {limit} bytes", rule="size")


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise _too_large(limit)
    return bytes(data)


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def check_hash(declared: str, data: bytes) -> None:
    algorithm = _HASHES.get(len(declared))
    if algorithm is None or hashlib.new(algorithm, data).hexdigest() != declared.lower():
        raise BadRequestError(
            "an attachment's bytes do not match its X-Experience-API-Hash",
            rule="attachment.hash_mismatch",
        )


def _attachment_part(part: BodyPartReader, ctype: str, data: bytes) -> AttachmentPart:
    declared = (part.headers.get("X-Experience-API-Hash") or "").strip()
    if not declared:
        raise BadRequestError(
            "every attachment part needs an X-Experience-API-Hash header",
            rule="attachment.hash_missing",
        )
    encoding = part.headers.get("Content-Transfer-Encoding")
    if encoding is not None and encoding.strip().lower() != "binary":
        raise BadRequestError(
            "attachment parts must use Content-Transfer-Encoding: binary",
            rule="attachment.encoding",
        )
    check_hash(declared, data)
    return AttachmentPart(declared.lower(), ctype or "application/octet-stream", data)


async def read_multipart(request: web.Request, limit: int) -> tuple[bytes, list[AttachmentPart]]:
    """The statement part and the attachment parts of a ``multipart/mixed`` body."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise BadRequestError(f"malformed multipart body: {exc}", rule="multipart") from None
    total = 0
    first = True
    statements = b""
    parts: list[AttachmentPart] = []
    while True:
        try:
            part = await reader.next()
        except (ValueError, AssertionError) as exc:
            raise BadRequestError(f"malformed multipart body: {exc}", rule="multipart") from None
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BadRequestError("nested multipart bodies are not allowed", rule="multipart")
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            data += chunk
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
        ctype = media_type(part.headers.get("Content-Type"))
        if first:
            if ctype != "application/json":
                raise BadRequestError(
                    "the first part of a multipart/mixed body must be application/json",
                    rule="multipart.statement_part",
                )
            statements = bytes(data)
            first = False
            continue
        parts.append(_attachment_part(part, ctype, bytes(data)))
    if first:
        raise BadRequestError("the multipart body has no statement part", rule="multipart")
    return statements, parts


async def read_request(request: web.Request, limit: int, body_seconds: float = 10.0) -> XapiRequest:
    """Normalise a request (either syntax) into an :class:`XapiRequest`; 408 when its body
    takes longer than ``body_seconds`` to arrive."""
    try:
        async with asyncio.timeout(body_seconds):
            return await _read_request(request, limit)
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body did not arrive within {body_seconds:g} seconds", rule="body.timeout"
        ) from None


async def _read_request(request: web.Request, limit: int) -> XapiRequest:
    headers = CIMultiDict(request.headers)
    params = MultiDict(request.query)
    if request.method == "POST" and "method" in params:
        return await _alternate(request, params, limit)
    ctype = media_type(request.headers.get("Content-Type"))
    if request.method in ("POST", "PUT") and ctype == "multipart/mixed":
        body, parts = await read_multipart(request, limit)
        return XapiRequest(request.method, headers, params, body, parts)
    body = await read_limited(request, limit) if request.method in ("POST", "PUT") else b""
    return XapiRequest(request.method, headers, params, body)


async def _alternate(request: web.Request, query: MultiDict[str], limit: int) -> XapiRequest:
    """xAPI 1.0.3 "alternate request syntax": the method in ``?method=``, headers and content
    as form fields. The version check (1.0.x only) is done by the caller."""
    method = query["method"].upper()
    if len(query) != 1:
        raise BadRequestError(
            "with ?method= no other query parameter is allowed", rule="alternate.query"
        )
    if method not in ("GET", "PUT", "POST"):
        raise BadRequestError(f"method {method!r} is not allowed here", rule="alternate.method")
    if media_type(request.headers.get("Content-Type")) != "application/x-www-form-urlencoded":
        raise BadRequestError(
            "the alternate request syntax needs an application/x-www-form-urlencoded body",
            rule="alternate.content_type",
        )
    raw = await read_limited(request, limit)
    try:
        fields = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadRequestError("the form body is not UTF-8", rule="alternate.form") from None
    headers: CIMultiDict[str] = CIMultiDict()
    params: MultiDict[str] = MultiDict()
    content = b""
    for name, value in fields:
        if name.lower() in _FORM_HEADERS:
            headers[name] = value
        elif name == "content":
            content = value.encode()
        else:
            params.add(name, value)
    if "Authorization" not in headers and "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    if "X-Experience-API-Version" not in headers and "X-Experience-API-Version" in request.headers:
        headers["X-Experience-API-Version"] = request.headers["X-Experience-API-Version"]
    return XapiRequest(method, headers, params, content, alternate=True)
