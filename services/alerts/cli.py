"""``python -m services.alerts.cli``: manage staff tokens, teams, routing rules, webhooks,
detector settings and programme calendars. Reads ``DATABASE_URL`` and ``ALERTS_DB_SCHEMA`` like
the service and applies pending migrations first.

    tokens create --tenant acme --name coach1 [--team coaching] [--see-names]  # prints it once
    tokens revoke --tenant acme --name coach1
    teams add --tenant acme --team coaching --name "Coaching team"
    rules add --tenant acme --team coaching [--priority 10] [--business-unit bu]
              [--programme p] [--kind gaming] [--min-severity high]
    webhooks add --tenant acme --team coaching --url https://... [--secret s]  # prints secret
                 [--actions opened,resolved]  # only these alert actions (default: all)
    settings set --tenant acme [--programme p] --json '{"failure_streak": {"k": 5}}'
    programmes set --tenant acme --programme p --start 2026-02-01 --end 2026-06-30
    programmes load --tenant acme --file framework.yaml [--check-from 2026-03-01T00:00:00Z]

``programmes load`` reads the framework file the progress service loads (``shared/framework.py``)
and copies the tenant's programmes into the alerts schema: calendars, business units, live
sessions and the cohorts' learners (as learner keys, with ``SKILLSTREAM_LEARNER_KEY_SALT``), for
the missed-sessions detector (``services/alerts/sessions.py``). Of several versions of the
tenant's framework in the file, the newest (by ``effective_from``) is loaded. ``--check-from``:
sessions that ended before it are not checked for the learners it adds (first load on a running
deployment, whose earlier attendance the alerts service never recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast, get_args

import orjson
from pydantic import ValidationError

from services.alerts import session_repository as sessions_repo
from services.alerts import staff_repository as staff_repo
from services.alerts.app import migrate
from services.alerts.config import AlertsSettings
from services.alerts.rules import resolve
from services.alerts.staff import NAME_PATTERN, hash_token, new_token
from shared.alert_events import AlertAction
from shared.db import create_pool
from shared.envelope import TENANT_PATTERN
from shared.framework import FrameworkFileError, parse_documents, ref_to_key

if TYPE_CHECKING:
    from services.alerts.repository import Conn


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.alerts.cli")
    groups = parser.add_subparsers(dest="group", required=True)

    def action(group: str, name: str, help_: str) -> argparse.ArgumentParser:
        if group not in subs:
            subs[group] = groups.add_parser(group).add_subparsers(dest="action", required=True)
        sub = subs[group].add_parser(name, help=help_)
        sub.add_argument("--tenant", required=True)
        return sub

    subs: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    create = action("tokens", "create", "create a staff token; prints it once")
    create.add_argument("--name", required=True)
    create.add_argument("--team")
    create.add_argument(
        "--see-names", action="store_true", help="may see learner display names (from ingest)"
    )
    action("tokens", "revoke", "revoke a staff token").add_argument("--name", required=True)
    team = action("teams", "add", "add or rename a support team")
    team.add_argument("--team", required=True)
    team.add_argument("--name", required=True)
    rule = action("rules", "add", "add a routing rule")
    rule.add_argument("--team", required=True)
    rule.add_argument("--priority", type=int, default=100)
    rule.add_argument("--business-unit")
    rule.add_argument("--programme")
    rule.add_argument("--kind")
    rule.add_argument("--min-severity", choices=["low", "medium", "high"])
    hook = action("webhooks", "add", "add a webhook endpoint to a team")
    hook.add_argument("--team", required=True)
    hook.add_argument("--url", required=True)
    hook.add_argument("--secret")
    hook.add_argument(
        "--actions",
        type=_actions,
        help="comma-separated alert actions to send (default: all): "
        + ",".join(get_args(AlertAction)),
    )
    sets = action("settings", "set", "set partial detector settings (JSON)")
    sets.add_argument("--programme", default="")
    sets.add_argument("--json", required=True)
    prog = action("programmes", "set", "set a programme's calendar")
    prog.add_argument("--programme", required=True)
    prog.add_argument("--start", type=date.fromisoformat, required=True)
    prog.add_argument("--end", type=date.fromisoformat, required=True)
    load = action("programmes", "load", "load programmes and live sessions from a framework file")
    load.add_argument("--file", type=Path, required=True)
    load.add_argument("--check-from", type=_aware)
    return parser


def _actions(text: str) -> list[AlertAction]:
    known = get_args(AlertAction)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(known)}; got {text!r}"
        )
    return [cast("AlertAction", name) for name in dict.fromkeys(names)]


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone (e.g. 2026-03-01T00:00:00Z)")
    return value


async def _load(conn: Conn, args: argparse.Namespace, salt: str) -> int:
    try:
        frameworks = parse_documents(args.file.read_text(encoding="utf-8"))
    except (OSError, FrameworkFileError) as exc:
        print(f"cannot load {args.file}: {exc}", file=sys.stderr)
        return 2
    mine = [f for f in frameworks if f.tenant == args.tenant]
    if not mine:
        print(f"{args.file} has no framework of tenant {args.tenant!r}", file=sys.stderr)
        return 1
    newest = max(mine, key=lambda f: f.effective_from)
    try:
        members = [
            {ref_to_key(ref, salt): c.id for c in programme.cohorts for ref in c.learners}
            for programme in newest.programmes
        ]
    except ValueError as exc:
        print(f"cannot load {args.file}: {exc}", file=sys.stderr)
        return 2
    async with conn.transaction():
        for programme, keys in zip(newest.programmes, members, strict=True):
            counts = await sessions_repo.load_programme(
                conn, args.tenant, programme, keys, args.check_from
            )
            print(
                f"programme {programme.id}: {counts['sessions']} live sessions,"
                f" {counts['learners']} learners in cohorts"
            )
    return 0


async def _dispatch(conn: Conn, args: argparse.Namespace, salt: str) -> int:
    match (args.group, args.action):
        case ("tokens", "create"):
            if not NAME_PATTERN.match(args.name):
                print(f"name must match {NAME_PATTERN.pattern}", file=sys.stderr)
                return 2
            token = new_token()
            if not await staff_repo.insert_token(
                conn,
                args.tenant,
                args.team,
                args.name,
                hash_token(token),
                see_names=args.see_names,
            ):
                print(f"{args.tenant} already has a token {args.name!r}", file=sys.stderr)
                return 1
            print(f"token: {token}")
        case ("tokens", "revoke"):
            if not await staff_repo.revoke_token(conn, args.tenant, args.name):
                print(f"no active token {args.name!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.name}")
        case ("teams", "add"):
            await staff_repo.upsert_team(conn, args.tenant, args.team, args.name)
            print(f"team {args.team}")
        case ("rules", "add"):
            rule_id = await staff_repo.insert_rule(
                conn, args.tenant, args.team, priority=args.priority,
                business_unit=args.business_unit, programme=args.programme, kind=args.kind,
                min_severity=args.min_severity,
            )  # fmt: skip
            print(f"rule {rule_id}")
        case ("webhooks", "add"):
            secret = args.secret or secrets.token_urlsafe(32)
            hook_id = await staff_repo.insert_webhook(
                conn, args.tenant, args.team, args.url, secret, actions=args.actions
            )
            print(f"webhook {hook_id}\nsecret: {secret}")
        case ("settings", "set"):
            try:
                doc = orjson.loads(args.json)
                resolve(doc)
            except (orjson.JSONDecodeError, ValidationError) as exc:
                print(f"invalid settings: {exc}", file=sys.stderr)
                return 2
            await staff_repo.set_detector_settings(conn, args.tenant, args.programme, doc)
            print("settings saved")
        case ("programmes", "set"):
            await staff_repo.set_programme(conn, args.tenant, args.programme, args.start, args.end)
            print(f"programme {args.programme}")
        case ("programmes", "load"):
            return await _load(conn, args, salt)
    return 0


async def run(argv: Sequence[str], settings: AlertsSettings) -> int:
    args = _parser().parse_args(argv)
    if not re.match(TENANT_PATTERN, args.tenant):
        print(f"invalid tenant {args.tenant!r}", file=sys.stderr)
        return 2
    async with create_pool(
        settings.database_url.get_secret_value(), settings.db_schema, min_size=1, max_size=2
    ) as pool:
        await migrate(pool, settings.db_schema)
        async with pool.acquire() as conn:
            return await _dispatch(conn, args, settings.learner_key_salt.get_secret_value())


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(sys.argv[1:] if argv is None else argv, AlertsSettings()))


if __name__ == "__main__":
    sys.exit(main())
