"""``python -m services.progress.cli``: frameworks, API tokens and the projection rebuild.

* ``frameworks load FILE`` -- store every framework document of a YAML (``---`` separated) or
  JSON file as new, immutable versions; ``frameworks list --tenant T``.
* ``tokens create --tenant T --name N`` prints a bearer token once (only its hash is stored);
  ``tokens revoke --tenant T --name N``.
* ``rebuild [--app-id ID] [--timeout S]`` -- replay ``xapi.statements`` into empty tables.

Reads ``DATABASE_URL``, ``PROGRESS_DB_SCHEMA`` and the salt like the service, and applies
pending migrations first.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from services.progress import repository as repo
from services.progress.app import migrate
from services.progress.config import ProgressSettings
from services.progress.errors import FrameworkConflictError
from shared.db import create_pool
from shared.envelope import TENANT_PATTERN
from shared.framework import FrameworkFileError, parse_documents


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.progress.cli")
    groups = parser.add_subparsers(dest="group", required=True)
    fw = groups.add_parser("frameworks", help="competency framework versions")
    fw_actions = fw.add_subparsers(dest="action", required=True)
    load = fw_actions.add_parser("load", help="load a YAML/JSON framework file")
    load.add_argument("file", type=Path)
    fw_list = fw_actions.add_parser("list", help="list a tenant's versions")
    fw_list.add_argument("--tenant", required=True)
    tokens = groups.add_parser("tokens", help="bearer tokens of the query API")
    tk_actions = tokens.add_subparsers(dest="action", required=True)
    for name in ("create", "revoke"):
        action = tk_actions.add_parser(name)
        action.add_argument("--tenant", required=True)
        action.add_argument("--name", required=True)
    rebuild = groups.add_parser("rebuild", help="replay xapi.statements into empty tables")
    rebuild.add_argument("--app-id")
    rebuild.add_argument("--timeout", type=float, default=3600.0)
    return parser


async def _frameworks(args: argparse.Namespace, conn: repo.Conn, salt: str) -> int:
    if args.action == "list":
        for row in await repo.list_frameworks(conn, args.tenant):
            print(
                f"{row['framework']}\tv{row['version']}\tfrom {row['effective_from']}"
                f"\tloaded {row['loaded_at']}"
            )
        return 0
    try:
        frameworks = parse_documents(args.file.read_text(encoding="utf-8"))
    except (OSError, FrameworkFileError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for fw in frameworks:
        try:
            status = await repo.store_framework(conn, fw, salt)
        except FrameworkConflictError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{fw.tenant}\t{fw.framework}\tv{fw.version}\t{status}")
    return 1 if failed else 0


async def _tokens(args: argparse.Namespace, conn: repo.Conn) -> int:
    if args.action == "create":
        token = f"sk_{args.tenant}_{secrets.token_urlsafe(32)}"
        if not await repo.insert_token(conn, args.tenant, args.name, token):
            print(f"{args.tenant} already has a token {args.name!r}", file=sys.stderr)
            return 1
        print(token)
        print("(the token is shown once; only its hash is stored)", file=sys.stderr)
        return 0
    if not await repo.revoke_token(conn, args.tenant, args.name):
        print(f"no active token {args.name!r} for {args.tenant}", file=sys.stderr)
        return 1
    print(f"revoked {args.tenant}/{args.name}")
    return 0


async def run(argv: Sequence[str], settings: ProgressSettings) -> int:
    args = _parser().parse_args(argv)
    tenant: str | None = getattr(args, "tenant", None)
    if tenant is not None and not re.match(TENANT_PATTERN, tenant):
        print(f"invalid tenant {tenant!r} (must match {TENANT_PATTERN})", file=sys.stderr)
        return 2
    if args.group == "rebuild":
        from services.progress.rebuild import rebuild

        app_id, count = await rebuild(settings, app_id=args.app_id, within=args.timeout)
        print(f"rebuilt from {count} statements with app id {app_id}")
        return 0
    async with create_pool(
        settings.database_url.get_secret_value(), settings.db_schema, min_size=1, max_size=2
    ) as pool:
        await migrate(pool, settings.db_schema)
        async with pool.acquire() as conn:
            if args.group == "frameworks":
                return await _frameworks(args, conn, settings.learner_key_salt.get_secret_value())
            return await _tokens(args, conn)


def main(argv: Sequence[str] | None = None) -> int:
    from shared.logs import setup_logging

    settings = ProgressSettings()
    setup_logging("progress", settings.log_level)
    return asyncio.run(run(sys.argv[1:] if argv is None else argv, settings))


if __name__ == "__main__":
    sys.exit(main())
