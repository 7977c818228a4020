"""The audit log each service keeps in its own database: a row for every admin write and for
every read of a person's data by an API key (key, workspace, action, target, time).

A use case writes its row with `AuditLog.record` in its own transaction, so a write and its
row commit together: no write without its row, no row for a write that rolled back. A call
one service makes to another on its own account (`kit.transport.service_actor`) is not
recorded: two profile reads per send would bury the accesses worth reporting.

Each service answers its ListAudit RPC with `list_audit`; the gateway merges the services'
entries newest first (`GET /v1/audit`)."""

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from sqlalchemy import (BigInteger, Column, DateTime, Identity, Index, MetaData, Table, Text, func, insert, select,
                        text, tuple_)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.errors import InvalidArgument
from kit.transport import is_service_actor, timestamp, workspace_of
from nudge.common.v1 import audit_pb2

MAX_PAGE = 1000  # entries one ListAudit answers (the gateway asks a page and one more)


def audit_table(metadata: MetaData) -> Table:
    """Each service declares the audit log in its own metadata, so its migrations create it."""
    return Table(
        "audit_log", metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("workspace_id", Text, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False),   # the API key's public id
        Column("action", Text, nullable=False),  # <noun>.<verb>
        Column("target", Text, nullable=True),   # the id of what was read or changed
        Column("profile_id", Text, nullable=True),  # whose data, when a person's
        Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Index("ix_audit_log_workspace_at", "workspace_id", "at", "id"),
        Index("ix_audit_log_workspace_profile", "workspace_id", "profile_id", "at", "id"),
    )


@dataclass(frozen=True)
class AuditQuery:
    size: int = 50
    before: tuple[datetime, int] | None = None  # only entries before this (at, id), newest first
    action_prefix: str = ""
    actor: str = ""
    target: str = ""
    profile_id: str = ""
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


class AuditLog:
    def __init__(self, metadata: MetaData) -> None:
        self.table = audit_table(metadata)

    async def record(self, session: AsyncSession, workspace_id: str, actor: str, action: str,
                     target: str | None = None, profile_id: str | None = None, detail: dict | None = None) -> None:
        """The row of one action, in the caller's transaction; nothing for a service's own call."""
        if is_service_actor(actor):
            return
        await session.execute(insert(self.table).values(
            workspace_id=workspace_id, actor=actor, action=action, target=target, profile_id=profile_id,
            detail=detail or {}))

    async def page(self, session: AsyncSession, workspace_id: str, query: AuditQuery) -> list:
        t = self.table
        statement = select(t).where(t.c.workspace_id == workspace_id)
        if query.before is not None:
            statement = statement.where(tuple_(t.c.at, t.c.id) < tuple_(*query.before))
        if query.action_prefix:
            statement = statement.where(t.c.action.startswith(query.action_prefix, autoescape=True))
        for column, value in ((t.c.actor, query.actor), (t.c.target, query.target),
                              (t.c.profile_id, query.profile_id)):
            if value:
                statement = statement.where(column == value)
        if query.since is not None:
            statement = statement.where(t.c.at >= query.since)
        if query.until is not None:
            statement = statement.where(t.c.at < query.until)
        return list(await session.execute(statement.order_by(t.c.at.desc(), t.c.id.desc()).limit(query.size)))


async def list_audit(sessions: async_sessionmaker, log: AuditLog,
                     request: audit_pb2.ListAuditRequest) -> audit_pb2.ListAuditReply:
    """A service's ListAudit RPC: the request decoded, the page read, the entries encoded."""
    workspace_id = workspace_of(request)
    query = query_of(request)
    async with sessions() as session:
        rows = await log.page(session, workspace_id, query)
    return audit_pb2.ListAuditReply(entries=[entry_of(row) for row in rows])


def query_of(request: audit_pb2.ListAuditRequest) -> AuditQuery:
    for field in ("action_prefix", "actor", "target", "profile_id"):
        if "\x00" in getattr(request, field):
            raise InvalidArgument(f"{field}: NUL is not allowed", field=field)
    return AuditQuery(
        size=min(max(request.size or 50, 1), MAX_PAGE),
        before=(_time(request.before_at), request.before_id) if request.HasField("before_at") else None,
        action_prefix=request.action_prefix, actor=request.actor, target=request.target,
        profile_id=request.profile_id,
        since=_time(request.since) if request.HasField("since") else None,
        until=_time(request.until) if request.HasField("until") else None)


def entry_of(row) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(id=row.id, at=timestamp(row.at), actor=row.actor, action=row.action,
                                target=row.target or "", profile_id=row.profile_id or "",
                                detail_json=orjson.dumps(row.detail).decode())


def _time(stamp) -> datetime:
    return stamp.ToDatetime(tzinfo=timezone.utc)
