"""Schemathesis against the progress query API's own ``/openapi.json``, on the real database.

The service runs in-process (on its own loop thread, see :mod:`tests.integration.fuzzing`) with
a framework, two learners' projections and a tenant token seeded first; half of the generated
learner keys and programme ids are real ones, so the fuzzer reaches real rows and not only 404s.
Every operation gets positive and negative cases, each checked for: no 5xx, documented status
code, body matching the documented schema, documented content type, invalid input refused, and
auth enforced (the request again without a token and with a wrong one must get 401).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from aiohttp.test_utils import TestServer

from services.progress import repository as repo
from services.progress.app import Progress, open_progress
from services.progress.config import ProgressSettings
from services.progress.handlers import Processor
from services.progress.projection import Projector
from services.progress.state import LearnerRecord
from shared.envelope import STATEMENT_V1, Envelope
from tests.integration.fuzzing import CHECKS, Served, fuzz, fuzz_config, serve_in_thread
from tests.unit.progress.samples import T0, framework, prepared

pytestmark = pytest.mark.timeout(120)

TOKEN = "tok-fuzz-acme"
OTHER = "tok-fuzz-globex"


async def _tokens(progress: Progress) -> None:
    async with progress.pool.acquire() as conn:
        assert await repo.insert_token(conn, "acme", "fuzz", TOKEN)
        assert await repo.insert_token(conn, "globex", "fuzz", OTHER)


async def _project(progress: Progress) -> list[str]:
    """Two learners' projections, built by the worker's own logic; returns their keys."""
    processor = Processor(progress.refresher.registry)
    projector = Projector(progress.pool, progress.topics.statements, progress.metrics)
    records: dict[str, LearnerRecord] = {}
    offset = 0
    for user, answers in {"u-1": [True] * 12, "u-2": [False, True, False]}.items():
        for day, ok in enumerate(answers):
            raw = prepared(user=user, success=ok, at=T0 + timedelta(days=day)).envelope
            out = processor.process(
                Envelope.parse(raw, {STATEMENT_V1}), records.get(user, LearnerRecord())
            )
            records[user] = out.record
            projector.add(0, offset, out)
            offset += 1
    assert await projector.flush() == offset
    return [
        Envelope.model_validate_json(prepared(user=u).envelope).learner_key for u in ("u-1", "u-2")
    ]


def _seed(served: Served) -> list[str]:
    """Tokens, a framework loaded over the API and two learners; returns the learner keys."""
    progress, base = served.value
    served.run(_tokens(progress))
    response = requests.post(
        f"{base}/v1/frameworks",
        data=yaml.safe_dump(framework().model_dump(mode="json")),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/yaml"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return served.run(_project(progress))


@pytest.fixture
def progress_api(settings: ProgressSettings, kafka_cleanup: None) -> Iterator[Served]:
    @asynccontextmanager
    async def running() -> AsyncIterator[tuple[Progress, str]]:
        async with (
            open_progress(settings, start_worker=False) as progress,
            TestServer(progress.app, host="127.0.0.1") as server,
        ):
            yield progress, f"http://127.0.0.1:{server.port}"

    with serve_in_thread(running) as served:
        yield served


@pytest.fixture
def progress_schema(progress_api: Served) -> schemathesis.BaseSchema:
    base = progress_api.value[1]
    learners = _seed(progress_api)
    # the document as the service serves it, not the module: what clients actually read
    return schemathesis.openapi.from_url(
        f"{base}/openapi.json",
        config=fuzz_config(
            TOKEN,
            {"learners": learners, "programmes": ["py-2026"], "cohorts": ["a"]},
            {
                "path.learner_key": "learners",
                "path.programme": "programmes",
                "query.programme": "programmes",
                "query.cohort": "cohorts",
            },
        ),
    )


def test_every_operation_conforms_to_its_openapi_document(
    progress_schema: schemathesis.BaseSchema, subtests: pytest.Subtests
) -> None:
    seen = fuzz(progress_schema, subtests)
    print({label: dict(codes) for label, codes in seen.items()})
    assert len(seen) == 5
    for label, codes in seen.items():
        # the token was sent and real rows were reached: every operation answered 2xx sometimes
        # (but loading frameworks: a random body is never a valid framework of the token's
        # tenant; test_loading_frameworks_answers_as_documented covers its 2xx answers)
        if label != "POST /v1/frameworks":
            assert any(200 <= code < 300 for code in codes), (label, codes)
        if label != "GET /v1/frameworks":  # the only operation without inputs
            assert any(400 <= code < 500 for code in codes), (label, codes)


def test_refusals_are_documented_401s(progress_api: Served) -> None:
    """Without a token, with a wrong one, or with a malformed header: 401 with the documented
    error body and a challenge, on every operation (not only the ones the fuzzer reached)."""
    base = progress_api.value[1]
    _seed(progress_api)
    doc: dict[str, Any] = requests.get(f"{base}/openapi.json", timeout=10).json()
    for path, methods in doc["paths"].items():
        url = base + path.replace("{learner_key}", "0" * 32).replace("{programme}", "py-2026")
        for method in methods:
            for header in (None, "Bearer nope", "Basic dG9rOng=", f"Bearer{TOKEN}", "Bearer "):
                headers = {} if header is None else {"Authorization": header}
                r = requests.request(method, url, headers=headers, timeout=10)
                assert r.status_code == 401, (method, path, header, r.status_code)
                assert r.headers["Content-Type"].startswith("application/json")
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert set(r.json()) == {"error", "reason"}
                assert "401" in methods[method]["responses"]


def test_edge_cases_the_fuzzer_found_are_refused_not_crashed(
    progress_schema: schemathesis.BaseSchema,
) -> None:
    """Each of these was a 500 (year-1 or year-9999 ``as_of`` overflowed, a NUL reached
    PostgreSQL, an unknown route answered text/plain); now a documented 4xx."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    learner = progress_schema["/v1/learners/{learner_key}"]["GET"]
    skills = progress_schema["/v1/programmes/{programme}/skills-map"]["GET"]
    outcomes = progress_schema["/v1/outcomes"]["GET"]
    refused = [
        learner.Case(
            path_parameters={"learner_key": "0" * 32},
            query={"as_of": "0001-01-01T00:00:00Z", "days": 366},
        ),
        learner.Case(
            path_parameters={"learner_key": "0" * 32}, query={"as_of": "0001-01-01T00:00:00+14:00"}
        ),
        skills.Case(
            path_parameters={"programme": "py-2026"}, query={"as_of": "9999-12-31T23:59:59-14:00"}
        ),
        skills.Case(path_parameters={"programme": "py-2026"}, query={"after": "\x00"}),
        skills.Case(path_parameters={"programme": "py-2026"}, query={"cohort": "a\x00"}),
        skills.Case(path_parameters={"programme": "\x00"}),
        skills.Case(path_parameters={"programme": "a/b"}),
        outcomes.Case(query={"programme": "\x00"}),
    ]
    for case in refused:
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        assert response.status_code in {400, 404}, (case.path_parameters, case.query)


def test_loading_frameworks_answers_as_documented(progress_schema: schemathesis.BaseSchema) -> None:
    """The success and conflict answers of ``POST /v1/frameworks``, which random bodies cannot
    reach (a framework must be valid and of the token's tenant), through the same checks."""
    post = progress_schema["/v1/frameworks"]["POST"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    v2 = framework(version=2, effective_from=T0).model_dump(mode="json")
    with_nul = framework(version=3, effective_from=T0 + timedelta(days=1)).model_dump(mode="json")
    with_nul["competencies"][0]["name"] = "Python\x00basics"
    expected = [
        (yaml.safe_dump(v2), 201),  # a new version
        (yaml.safe_dump(v2), 200),  # the same again: unchanged
        (yaml.safe_dump({**v2, "unknown": 1}), 400),
        (
            yaml.safe_dump(
                framework(version=2, q1_to="py.loops", effective_from=T0).model_dump(mode="json")
            ),
            409,
        ),
        (yaml.safe_dump(framework("globex").model_dump(mode="json")), 403),
        (yaml.safe_dump(with_nul), 400),
        ("{not yaml", 400),
    ]
    for text, status in expected:
        case = post.Case(body=text.encode(), media_type="application/yaml")
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        assert response.status_code == status, (text[:60], response.text)
    case = post.Case(body=v2, media_type="application/json")
    assert case.call_and_validate(headers=auth, checks=CHECKS).status_code == 200
