"""kit.audit: a row commits with the write it records, or not at all; a service's own call is
no row; the log reads newest first, filtered, from a position."""

import pytest
from sqlalchemy import Column, MetaData, Table, Text, insert, select

from kit import db
from kit.audit import AuditLog, AuditQuery
from kit.transport import service_actor

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Text, primary_key=True))
log = AuditLog(metadata)


@pytest.fixture(scope="module")
async def sessions(fresh_database):
    engine = db.create_engine(await fresh_database("audit"), pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db.session_factory(engine)
    await engine.dispose()


async def write(sessions, note: str, actor: str = "key-1", fail: bool = False) -> None:
    async with sessions() as session, session.begin():
        await session.execute(insert(notes).values(id=note))
        await log.record(session, "ws-1", actor, "note.create", note, detail={"length": len(note)})
        if fail:
            raise RuntimeError("the write fails after its row was written")


async def test_a_write_and_its_row_commit_together(sessions):
    await write(sessions, "kept")
    with pytest.raises(RuntimeError):
        await write(sessions, "lost", fail=True)
    async with sessions() as session:
        stored = set(await session.scalars(select(notes.c.id)))
        rows = await log.page(session, "ws-1", AuditQuery(action_prefix="note."))
    assert "kept" in stored and "lost" not in stored
    assert [(r.actor, r.action, r.target, r.detail) for r in rows if r.target in ("kept", "lost")] == [
        ("key-1", "note.create", "kept", {"length": 4})]


async def test_a_services_own_call_is_no_row(sessions):
    await write(sessions, "by-a-service", actor=service_actor("journey"))
    async with sessions() as session:
        assert await log.page(session, "ws-1", AuditQuery(target="by-a-service")) == []


async def test_pages_read_newest_first_from_a_position_with_prefixes_taken_literally(sessions):
    for note in ("p1", "p2", "p3"):
        await write(sessions, note, actor="key-pages")
    async with sessions() as session:
        newest = await log.page(session, "ws-1", AuditQuery(actor="key-pages"))
        older = await log.page(session, "ws-1", AuditQuery(actor="key-pages", size=1,
                                                           before=(newest[0].at, newest[0].id)))
        wildcard = await log.page(session, "ws-1", AuditQuery(action_prefix="%"))
        elsewhere = await log.page(session, "ws-2", AuditQuery(actor="key-pages"))
    assert [r.target for r in newest] == ["p3", "p2", "p1"]
    assert [r.target for r in older] == ["p2"]
    assert wildcard == [] and elsewhere == []
