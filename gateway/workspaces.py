"""Workspaces and their API keys, and the operator command that manages them:

    python -m gateway.workspaces create NAME          # prints the write and admin keys
    python -m gateway.workspaces list
    python -m gateway.workspaces rotate WORKSPACE_ID write|admin   # new key; the old one keeps working
    python -m gateway.workspaces revoke KEY_ID

Each change is a row of the gateway's audit log, by `operator`, in the change's transaction.
"""

import argparse
import asyncio
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from gateway import keys
from gateway.models import api_keys, audit_log, workspaces
from gateway.settings import GatewaySettings
from kit import db, migrations
from kit.audit import AuditQuery, entry_of
from kit.errors import InvalidArgument, NotFound

MIGRATIONS = Path(__file__).parent / "migrations"
OPERATOR = "operator"  # the actor of the operator command's changes in the audit log


@dataclass(frozen=True)
class Principal:
    workspace_id: str
    key_id: str
    kind: str


class WorkspaceStore:
    def __init__(self, sessions: async_sessionmaker, pepper: bytes) -> None:
        self.sessions = sessions
        self.pepper = pepper

    async def create(self, name: str, actor: str = OPERATOR) -> tuple[str, list[keys.NewKey]]:
        if not name.strip():
            raise InvalidArgument("name: a workspace needs a name", field="name")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "ws"
        workspace_id = f"{slug}-{secrets.token_hex(3)}"
        new = [keys.new_key(keys.WRITE), keys.new_key(keys.ADMIN)]
        async with self.sessions() as session, session.begin():
            await session.execute(insert(workspaces).values(id=workspace_id, name=name.strip()))
            await session.execute(insert(api_keys), [self._row(workspace_id, k) for k in new])
            await audit_log.record(session, workspace_id, actor, "workspace.create", workspace_id,
                                   detail={"keys": {k.kind: k.id for k in new}})
        return workspace_id, new

    async def all(self) -> list[dict]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(workspaces.c.id, workspaces.c.name, workspaces.c.created_at,
                       func.count(api_keys.c.id).filter(api_keys.c.revoked_at.is_(None)).label("active_keys"))
                .join(api_keys, api_keys.c.workspace_id == workspaces.c.id, isouter=True)
                .group_by(workspaces.c.id).order_by(workspaces.c.created_at))
            return [r._asdict() for r in rows]

    async def keys_of(self, workspace_id: str) -> list[dict]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(api_keys.c.id, api_keys.c.kind, api_keys.c.created_at, api_keys.c.revoked_at)
                .where(api_keys.c.workspace_id == workspace_id).order_by(api_keys.c.created_at))
            return [r._asdict() for r in rows]

    async def rotate(self, workspace_id: str, kind: str, actor: str = OPERATOR) -> keys.NewKey:
        if kind not in keys.KINDS:
            raise InvalidArgument(f"kind: expected one of {', '.join(keys.KINDS)}", field="kind")
        new = keys.new_key(kind)
        async with self.sessions() as session, session.begin():
            if await session.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id)) is None:
                raise NotFound(f"workspace {workspace_id} not found", field="workspace_id")
            await session.execute(insert(api_keys).values(self._row(workspace_id, new)))
            await audit_log.record(session, workspace_id, actor, "key.rotate", new.id, detail={"kind": kind})
        return new

    async def revoke(self, key_id: str, actor: str = OPERATOR) -> None:
        async with self.sessions() as session, session.begin():
            revoked = (await session.execute(
                update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=func.now()).returning(api_keys.c.workspace_id, api_keys.c.kind))).first()
            if revoked is None:
                raise NotFound(f"no active key {key_id}", field="key_id")
            await audit_log.record(session, revoked.workspace_id, actor, "key.revoke", key_id,
                                   detail={"kind": revoked.kind})

    async def audit(self, workspace_id: str, query: AuditQuery) -> list:
        """The gateway's own audit entries (kit.audit), as the services answer theirs."""
        async with self.sessions() as session:
            return [entry_of(row) for row in await audit_log.page(session, workspace_id, query)]

    async def authenticate(self, key: str) -> Principal | None:
        async with self.sessions() as session:
            row = (await session.execute(
                select(api_keys.c.id, api_keys.c.workspace_id, api_keys.c.kind)
                .where(api_keys.c.hash == keys.key_hash(self.pepper, key), api_keys.c.revoked_at.is_(None))
            )).first()
        return Principal(row.workspace_id, row.id, row.kind) if row else None

    def _row(self, workspace_id: str, key: keys.NewKey) -> dict:
        return {"id": key.id, "workspace_id": workspace_id, "kind": key.kind,
                "hash": keys.key_hash(self.pepper, key.secret)}


async def open_store(settings: GatewaySettings):
    """The store on the gateway's database, migrated; returns (store, engine)."""
    url = await db.resolve_database_url(settings, "gateway")
    if settings.migrate_on_start:
        await migrations.upgrade(url, MIGRATIONS)
    engine = db.create_engine(url, pool_size=5)
    pepper = keys.load_pepper(settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None,
                              settings.data_dir)
    return WorkspaceStore(db.session_factory(engine), pepper), engine


async def _command(args: argparse.Namespace) -> None:
    store, engine = await open_store(GatewaySettings())
    try:
        if args.command == "create":
            workspace_id, new = await store.create(args.name)
            print(f"workspace  {workspace_id}  ({args.name})")
            for key in new:
                print(f"{key.kind:<6} key {key.secret}   (id {key.id})")
        elif args.command == "list":
            for ws in await store.all():
                print(f"{ws['id']:<32} {ws['name']:<24} {ws['active_keys']} active keys")
                for key in await store.keys_of(ws["id"]):
                    state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "active"
                    print(f"    {key['id']}  {key['kind']:<6} {state}")
        elif args.command == "rotate":
            key = await store.rotate(args.workspace_id, args.kind)
            print(f"new {key.kind} key {key.secret}   (id {key.id}); revoke the old one when clients moved")
        elif args.command == "revoke":
            await store.revoke(args.key_id)
            print(f"revoked {args.key_id}")
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.workspaces", description="Manage workspaces and API keys")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="create a workspace and print its keys").add_argument("name")
    commands.add_parser("list", help="list workspaces and their keys")
    rotate = commands.add_parser("rotate", help="issue a new key; the old one works until revoked")
    rotate.add_argument("workspace_id")
    rotate.add_argument("kind", choices=keys.KINDS)
    commands.add_parser("revoke", help="revoke a key by its id").add_argument("key_id")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_command(args))
    except (InvalidArgument, NotFound) as err:
        print(f"error: {err.message}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
