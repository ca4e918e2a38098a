"""``python -m services.ingest.cli credentials create|list|revoke``: manage HTTP credentials;
``python -m services.ingest.cli tenants set-profile|list``: per-tenant validation profiles.

``create --tenant acme --name lms1`` prints the Basic username (``acme.lms1``) and the generated
secret, once; only its scrypt hash is stored. ``tenants set-profile --tenant acme --profile
lenient`` makes the tenant's statements accept the documented deviations (see
``shared.xapi.lenient``); tenants never set are ``strict``. Reads ``DATABASE_URL`` and
``INGEST_DB_SCHEMA`` like the service, and applies pending migrations first.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence

from services.ingest import repository as repo
from services.ingest.app import migrate
from services.ingest.auth import new_credential, username_of
from services.ingest.config import IngestSettings
from shared.db import create_pool
from shared.envelope import TENANT_PATTERN
from shared.xapi import Profile


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.cli")
    groups = parser.add_subparsers(dest="group", required=True)
    creds = groups.add_parser("credentials", help="HTTP Basic credentials per tenant")
    actions = creds.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a credential; prints its secret once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", required=True)
    listing = actions.add_parser("list", help="list credentials (never secrets)")
    listing.add_argument("--tenant")
    revoke = actions.add_parser("revoke", help="revoke a credential")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("--name", required=True)
    tenants = groups.add_parser("tenants", help="per-tenant settings")
    tactions = tenants.add_subparsers(dest="action", required=True)
    setp = tactions.add_parser("set-profile", help="set a tenant's validation profile")
    setp.add_argument("--tenant", required=True)
    setp.add_argument("--profile", required=True, choices=[p.value for p in Profile])
    tlist = tactions.add_parser("list", help="tenants with a non-default setting")
    tlist.set_defaults(tenant=None)
    return parser


async def _create(conn: repo.Conn, tenant: str, name: str) -> int:
    try:
        row, secret = new_credential(tenant, name)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not await repo.insert_credential(conn, row):
        print(f"{tenant} already has a credential {name!r}", file=sys.stderr)
        return 1
    print(f"username: {username_of(tenant, name)}")
    print(f"secret:   {secret}")
    print("(the secret is shown once; only its hash is stored)", file=sys.stderr)
    return 0


async def _list(conn: repo.Conn, tenant: str | None) -> int:
    for cred in await repo.list_credentials(conn, tenant):
        state = "revoked" if cred["revoked"] else "active"
        print(f"{username_of(cred['tenant'], cred['name'])}\t{state}\t{cred['created_at']}")
    return 0


async def _revoke(conn: repo.Conn, tenant: str, name: str) -> int:
    if not await repo.revoke_credential(conn, tenant, name):
        print(f"no active credential {name!r} for {tenant}", file=sys.stderr)
        return 1
    print(f"revoked {username_of(tenant, name)}")
    return 0


async def run(argv: Sequence[str], settings: IngestSettings) -> int:
    args = _parser().parse_args(argv)
    tenant: str | None = args.tenant
    if tenant is not None and not re.match(TENANT_PATTERN, tenant):
        print(f"invalid tenant {tenant!r} (must match {TENANT_PATTERN})", file=sys.stderr)
        return 2
    async with create_pool(
        settings.database_url.get_secret_value(), settings.db_schema, min_size=1, max_size=2
    ) as pool:
        await migrate(pool, settings.db_schema)
        async with pool.acquire() as conn:
            if args.group == "tenants":
                if args.action == "set-profile":
                    await repo.set_profile(conn, args.tenant, Profile(args.profile))
                    print(f"{args.tenant}: validation profile {args.profile}")
                    return 0
                for name, profile in await repo.list_profiles(conn):
                    print(f"{name}\t{profile}")
                return 0
            if args.action == "create":
                return await _create(conn, args.tenant, args.name)
            if args.action == "list":
                return await _list(conn, tenant)
            return await _revoke(conn, args.tenant, args.name)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(sys.argv[1:] if argv is None else argv, IngestSettings()))


if __name__ == "__main__":
    sys.exit(main())
