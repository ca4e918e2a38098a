"""Name-based event ids (UUID version 5) without :func:`uuid.uuid5`'s per-call overhead.

Ids of events must be the same each time the same thing is seen again (a replayed record, a
retried request), so they are derived from names. :func:`uuid5` gives exactly the value of
``uuid.uuid5(namespace, name)`` (SHA-1 of the namespace's bytes and the UTF-8 name, first 16
bytes, version and variant bits set), computed from the namespace's bytes once.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

_V5_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits
_V5_SET: Final = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant


def uuid5(namespace: bytes, name: str) -> uuid.UUID:
    """``uuid.uuid5(uuid.UUID(bytes=namespace), name)``."""
    digest = hashlib.sha1(namespace + name.encode(), usedforsecurity=False).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)


#: the RFC 4122 variant (binary ``10xx``) in the first hex digit of the fourth group
_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid5_text(namespace: bytes, name: str) -> str:
    """``str(uuid5(namespace, name))``, built straight from the digest's hex (no
    :class:`uuid.UUID`: for ids that are only written out, e.g. into JSON)."""
    h = hashlib.sha1(namespace + name.encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
