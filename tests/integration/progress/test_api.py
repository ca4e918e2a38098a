"""The query API on the real database: tokens, frameworks, profile, skills map, outcomes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from services.progress import repository as repo
from services.progress.app import open_progress
from services.progress.config import ProgressSettings
from services.progress.handlers import Processor
from services.progress.projection import Projector
from services.progress.state import LearnerRecord
from shared.envelope import STATEMENT_V1, Envelope
from tests.unit.progress.samples import T0, framework, prepared

pytestmark = pytest.mark.timeout(60)


async def test_api_serves_tenant_scoped_profiles_maps_and_outcomes(
    settings: ProgressSettings, kafka_cleanup: None
) -> None:
    async with (
        open_progress(settings, start_worker=False) as progress,
        TestServer(progress.app, host="127.0.0.1") as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
    ):
        base = f"http://127.0.0.1:{server.port}"
        async with progress.pool.acquire() as conn:
            assert await repo.insert_token(conn, "acme", "ui", "tok-acme")
            assert await repo.insert_token(conn, "globex", "ui", "tok-globex")

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        async def get(path: str, token: str = "tok-acme") -> tuple[int, Any]:
            async with http.get(base + path, headers=auth(token)) as r:
                return r.status, await r.json()

        # frameworks: loaded over the API, only for the token's own tenant
        text = yaml.safe_dump(framework().model_dump(mode="json"))
        async with http.post(base + "/v1/frameworks", data=text, headers=auth("tok-acme")) as r:
            assert r.status == 201, await r.text()
        async with http.post(base + "/v1/frameworks", data=text, headers=auth("tok-acme")) as r:
            assert r.status == 200  # the same version again changes nothing
        changed = yaml.safe_dump(framework(q1_to="py.loops").model_dump(mode="json"))
        async with http.post(base + "/v1/frameworks", data=changed, headers=auth("tok-acme")) as r:
            assert r.status == 409
        async with http.post(base + "/v1/frameworks", data=text, headers=auth("tok-globex")) as r:
            assert r.status == 403
        assert progress.refresher.registry.count() == 1

        # fill the projection with the worker's own logic (no broker needed for the API)
        processor = Processor(progress.refresher.registry)
        projector = Projector(progress.pool, progress.topics.statements, progress.metrics)
        records: dict[str, LearnerRecord] = {}
        answers = {"u-1": [True] * 12, "u-2": [False] * 3}
        offset = 0
        for user, oks in answers.items():
            for i, ok in enumerate(oks):
                env = Envelope.parse(
                    prepared(user=user, success=ok, at=T0 + timedelta(days=i)).envelope,
                    {STATEMENT_V1},
                )
                out = processor.process(env, records.get(user, LearnerRecord()))
                records[user] = out.record
                projector.add(0, offset, out)
                offset += 1
        assert await projector.flush() == 15
        lk1 = Envelope.model_validate_json(prepared(user="u-1").envelope).learner_key
        as_of = (T0 + timedelta(days=12)).isoformat().replace("+00:00", "Z")

        status, profile = await get(f"/v1/learners/{lk1}?days=7&as_of={as_of}")
        assert status == 200
        by = {c["competency"]: c for c in profile["competencies"]}
        basics = by["py.basics"]
        assert basics["attempts"] == 12
        assert basics["correct_streak"] == 12
        assert basics["mastered"] is True
        assert basics["status"] == "mastered"
        assert len(basics["trend"]["points"]) == 6  # days 6..11 fall in (as_of - 7 d, as_of]
        assert basics["trend"]["change"] > 0
        assert by["py.loops"]["status"] == "not_started"
        assert (await get(f"/v1/learners/{lk1}", "tok-globex"))[0] == 404

        status, page = await get(f"/v1/programmes/py-2026/skills-map?limit=1&as_of={as_of}")
        assert status == 200
        assert page["counts"]["py.basics"] == {
            "mastered": 1,
            "in_progress": 1,
            "not_started": 0,
            "stalled": 0,
        }
        assert page["counts"]["py.loops"]["not_started"] == 2
        assert len(page["learners"]) == 1
        assert page["next"] is not None
        status, rest = await get(
            f"/v1/programmes/py-2026/skills-map?limit=1&after={page['next']}&as_of={as_of}"
        )
        assert [r["learner_key"] for r in rest["learners"]] != [
            r["learner_key"] for r in page["learners"]
        ]
        assert (await get("/v1/programmes/py-2026/skills-map", "tok-globex"))[0] == 404

        status, outcomes = await get("/v1/outcomes?programme=py-2026")
        assert status == 200
        retail = outcomes["business_units"]["retail"]
        basics_out = next(c for c in retail["competencies"] if c["competency"] == "py.basics")
        assert basics_out["learners"] == 2
        assert basics_out["reached_mastery"] == 1
        assert basics_out["share_mastered"] == 0.5
        assert basics_out["median_time_to_competency_s"] > 0
        assert sum(w["active"] for w in retail["active_per_week"]) >= 2
        assert (await get("/v1/outcomes", "tok-globex"))[1]["business_units"] == {}

        async with http.get(base + "/v1/outcomes") as r:
            assert r.status == 401
        async with http.get(base + "/v1/outcomes", headers=auth("wrong")) as r:
            assert r.status == 401
        async with http.get(base + "/openapi.json") as r:
            doc = await r.json()
        assert doc["openapi"].startswith("3.")
        assert "/v1/learners/{learner_key}" in doc["paths"]
        async with http.get(base + "/readyz") as r:
            assert r.status == 200
