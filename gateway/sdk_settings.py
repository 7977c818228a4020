"""A workspace's settings for SDK access, kept in the gateway's database: the identity
secrets its backend signs userIds with (the current one and the one before it, so a rotation
breaks no app in the field) and the origins whose web pages may read the tracking and inbox
answers (CORS)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from gateway.models import audit_log
from gateway.models import sdk_settings as table


@dataclass(frozen=True)
class IdentitySecrets:
    current: str | None = None
    created_at: datetime | None = None
    previous: str | None = None
    previous_created_at: datetime | None = None

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(s for s in (self.current, self.previous) if s)


_SECRET_COLUMNS = (table.c.identity_secret, table.c.identity_secret_created_at,
                   table.c.previous_identity_secret, table.c.previous_identity_secret_created_at)


def _secrets(row) -> IdentitySecrets:
    # The one place stored secrets are read back: decryption at rest goes here.
    return IdentitySecrets(*row) if row else IdentitySecrets()


class SdkSettingsStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    async def identity_secrets(self, workspace_id: str) -> IdentitySecrets:
        async with self.sessions() as session:
            row = (await session.execute(select(*_SECRET_COLUMNS).where(table.c.workspace_id == workspace_id))).first()
        return _secrets(row)

    async def rotate_identity_secret(self, workspace_id: str, actor: str, secret: str) -> IdentitySecrets:
        """`secret` becomes the current one and the current one the previous (still accepted);
        the one before that is dropped. One statement, so two rotations at once keep both."""
        # The one place a secret is written: encryption at rest goes here.
        new = insert(table).values(workspace_id=workspace_id, identity_secret=secret,
                                   identity_secret_created_at=func.now())
        new = new.on_conflict_do_update(index_elements=[table.c.workspace_id], set_={
            "previous_identity_secret": table.c.identity_secret,
            "previous_identity_secret_created_at": table.c.identity_secret_created_at,
            "identity_secret": new.excluded.identity_secret,
            "identity_secret_created_at": new.excluded.identity_secret_created_at,
            "updated_at": func.now()})
        async with self.sessions() as session, session.begin():
            row = (await session.execute(new.returning(*_SECRET_COLUMNS))).first()
            await audit_log.record(session, workspace_id, actor, "identity_secret.rotate", workspace_id)
        return _secrets(row)

    async def revoke_previous_identity_secret(self, workspace_id: str, actor: str) -> bool:
        """False when there was no previous secret."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(table).where(table.c.workspace_id == workspace_id,
                                    table.c.previous_identity_secret.is_not(None))
                .values(previous_identity_secret=None, previous_identity_secret_created_at=None,
                        updated_at=func.now()))
            if result.rowcount:
                await audit_log.record(session, workspace_id, actor, "identity_secret.revoke", workspace_id)
        return result.rowcount > 0

    async def allowed_origins(self, workspace_id: str) -> list[str]:
        async with self.sessions() as session:
            origins = await session.scalar(select(table.c.allowed_origins).where(table.c.workspace_id == workspace_id))
        return list(origins or [])

    async def set_allowed_origins(self, workspace_id: str, actor: str, origins: list[str]) -> list[str]:
        new = insert(table).values(workspace_id=workspace_id, allowed_origins=origins)
        new = new.on_conflict_do_update(index_elements=[table.c.workspace_id], set_={
            "allowed_origins": new.excluded.allowed_origins, "updated_at": func.now()})
        async with self.sessions() as session, session.begin():
            await session.execute(new)
            await audit_log.record(session, workspace_id, actor, "allowed_origins.update", workspace_id,
                                   detail={"origins": origins})
        return origins
