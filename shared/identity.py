"""Learner keys: stable, non-reversible ids derived from an xAPI actor's identifier.

The inverse functional identifier (IFI) is normalised, then hashed with HMAC-SHA256 under a
per-deployment salt. An ``mbox`` is first turned into its ``mbox_sha1sum`` (as xAPI defines it:
SHA-1 of the whole ``mailto:`` IRI), so a learner sent once by address and once by hash gets the
same key. Raw addresses therefore never need to leave ingest.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

IfiKind = Literal["mbox", "mbox_sha1sum", "openid", "account"]


def normalise_ifi(kind: IfiKind, value: str) -> tuple[IfiKind, str]:
    """Return the canonical ``(kind, value)`` for an IFI.

    * ``mbox``: lower-cased ``mailto:`` IRI, then hashed to its ``mbox_sha1sum``.
    * ``mbox_sha1sum``: lower-case hex.
    * ``openid``: as given, without surrounding blanks.
    * ``account``: ``"<homePage>|<name>"`` with the homePage's trailing slashes removed and its
      scheme and host lower-cased; the name is case-sensitive.
    """
    value = value.strip()
    if kind == "mbox":
        address = value.lower()
        if not address.startswith("mailto:"):
            address = "mailto:" + address
        return "mbox_sha1sum", hashlib.sha1(address.encode(), usedforsecurity=False).hexdigest()
    if kind == "mbox_sha1sum":
        return kind, value.lower()
    if kind == "account":
        home, sep, name = value.partition("|")
        if not sep:
            raise ValueError("an account IFI is given as '<homePage>|<name>'")
        scheme, colon, rest = home.rstrip("/").partition("://")
        host, slash, path = rest.partition("/")
        home = f"{scheme.lower()}{colon}{host.lower()}{slash}{path}" if colon else home.rstrip("/")
        return kind, f"{home}|{name}"
    return kind, value


def learner_key(kind: IfiKind, value: str, salt: str) -> str:
    """The 128-bit hex learner key of an IFI under ``salt``."""
    if not salt:
        raise ValueError("the learner-key salt must not be empty")
    norm_kind, norm_value = normalise_ifi(kind, value)
    digest = hmac.new(salt.encode(), f"{norm_kind}:{norm_value}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
