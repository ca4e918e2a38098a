from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.identity import learner_key, normalise_ifi

SALT = "test-salt-1234"


def test_key_is_128_bit_hex_and_not_the_address() -> None:
    key = learner_key("mbox", "mailto:Ada@Example.com", SALT)
    assert len(key) == 32
    int(key, 16)
    assert "ada" not in key


def test_mbox_and_its_sha1sum_give_the_same_key() -> None:
    sha1 = hashlib.sha1(b"mailto:ada@example.com", usedforsecurity=False).hexdigest()
    assert learner_key("mbox", "mailto:ADA@example.com", SALT) == learner_key(
        "mbox_sha1sum", sha1.upper(), SALT
    )


def test_account_home_page_is_normalised_but_name_is_not() -> None:
    a = learner_key("account", "HTTPS://LMS.Example.com/|u-42", SALT)
    b = learner_key("account", "https://lms.example.com|u-42", SALT)
    c = learner_key("account", "https://lms.example.com|U-42", SALT)
    assert a == b
    assert a != c


def test_the_salt_changes_every_key() -> None:
    assert learner_key("openid", "https://id.example/ada", SALT) != learner_key(
        "openid", "https://id.example/ada", SALT + "x"
    )


def test_kinds_do_not_collide() -> None:
    assert learner_key("openid", "x|y", SALT) != learner_key("account", "x|y", SALT)


def test_empty_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="salt"):
        learner_key("openid", "https://id.example/ada", "")


def test_account_needs_both_parts() -> None:
    with pytest.raises(ValueError, match="homePage"):
        normalise_ifi("account", "no-separator")


@given(st.emails())
def test_any_address_hashes_like_its_lower_case_mailto(address: str) -> None:
    assert learner_key("mbox", address, SALT) == learner_key(
        "mbox", "mailto:" + address.lower(), SALT
    )
