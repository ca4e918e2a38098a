"""Schemathesis runs against a service started in-process on its own event loop thread.

Schemathesis calls the API synchronously (``requests``), so the service runs on a private event
loop in a background thread; the test talks to it over loopback like any client would.
:func:`fuzz_config` and :data:`FUZZ_SETTINGS` bound the runs: a fixed number of examples per
operation and mode, deterministic generation and a fixed seed, so CI replays the same cases.

:func:`fuzz` drives schemathesis's strategies with hypothesis itself (one subtest per operation
and mode) rather than through ``schemathesis.pytest.from_fixture``: that lazy loader reads
``request.node._nodeid``, which pytest 9.2 no longer has (schemathesis 4.32.5).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

T = TypeVar("T")

MAX_EXAMPLES = 30
SEED = 20260
# what every generated request is checked for: no 5xx, documented status codes, bodies matching
# their schema, the documented content type, invalid input refused with a 4xx, auth enforced
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
# hypothesis settings for the schemathesis tests: bounded, reproducible, no example database
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # shrinking only on a failure
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Served:
    """The value of the served context and a way to run coroutines on its loop."""

    value: Any
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout)


@contextmanager
def serve_in_thread(
    factory: Callable[[], AbstractAsyncContextManager[Any]], *, timeout: float = 60.0
) -> Iterator[Served]:
    """Enter ``factory()`` on a fresh event loop in a daemon thread; exit it (on that loop)
    when the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-service", daemon=True)
    thread.start()
    manager = factory()
    served = Served(None, loop)
    try:
        value = served.run(manager.__aenter__(), timeout)
        try:
            yield Served(value, loop)
        finally:
            served.run(manager.__aexit__(None, None, None), timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()


def fuzz_config(
    token: str, dictionaries: dict[str, list[str]], parameters: dict[str, str]
) -> schemathesis.Config:
    """Config for one API: ``token`` authenticates every request; each ``parameters`` entry
    (``"path.learner_key"``) draws half of its values from the named dictionary of real ids, so
    the fuzzer reaches real rows and not only 404s."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "allow-x00": True,  # NUL characters reach PostgreSQL text unless refused first
            },
            "headers": {"Authorization": f"Bearer {token}"},
            "dictionaries": {name: {"values": values} for name, values in dictionaries.items()},
            "parameters": {
                where: {"dictionary": name, "probability": 0.5}
                for where, name in parameters.items()
            },
        }
    )


def fuzz(
    schema: schemathesis.BaseSchema,
    subtests: pytest.Subtests,
    reset: Callable[[], None] | None = None,
) -> dict[str, Counter[int]]:
    """Every operation of ``schema``, positive then negative cases, each response through
    :data:`CHECKS` (one subtest per operation and mode, so every failure is reported). Returns
    the status codes seen per operation, for the caller to prove the fuzzer got past auth and
    reached real rows. ``reset`` runs before each operation and mode (to undo what the previous
    one changed, e.g. alerts it resolved)."""
    seen: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()  # the served document itself is broken
        operation = result.ok()
        statuses = seen.setdefault(operation.label, Counter())
        inputs = [
            operation.path_parameters,
            operation.query,
            operation.cookies,
            operation.body,
        ]
        # an operation without inputs (but its token) has no invalid input to generate
        modes = [GenerationMode.POSITIVE] + [GenerationMode.NEGATIVE] * any(map(len, inputs))
        for mode in modes:

            @FUZZ_SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                response = case.call_and_validate(checks=CHECKS)
                statuses[response.status_code] += 1  # noqa: B023 (run before the loop moves on)

            if reset is not None:
                reset()
            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                check()
    return seen
