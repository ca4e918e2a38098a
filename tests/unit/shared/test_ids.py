from __future__ import annotations

import uuid

import pytest

from shared.ids import uuid5, uuid5_text

NAMESPACES = [
    uuid.NAMESPACE_DNS,
    uuid.UUID("5f2b1f8e-0c4c-5e0b-9d7e-3d6c1b3f0a11"),
    uuid.UUID(int=0),
]
NAMES = ["", "acme|0f8c2c3e-7d47-4a7b-9e57-3d6c7a0b9a51", "xapi.raw.acme|3|1234567|0", "é|日本"]


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("name", NAMES)
def test_same_value_as_the_standard_library(namespace: uuid.UUID, name: str) -> None:
    ours = uuid5(namespace.bytes, name)
    assert ours == uuid.uuid5(namespace, name)
    assert ours.version == 5
    assert ours.variant == uuid.RFC_4122


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("name", NAMES)
def test_text_is_the_standard_librarys(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace.bytes, name) == str(uuid.uuid5(namespace, name))
