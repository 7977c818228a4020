"""The audit log of the whole platform with the admin key: every service's entries (admin
writes, reads of a person's data by an API key) and the gateway's own (keys rotated and
revoked), merged newest first, filtered, a page at a time. A service that does not answer
fails the request (503): the log is never shown incomplete."""

import asyncio
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request

from gateway import answers, auth
from gateway.answers import answer
from gateway.edge import CheckedRoute
from gateway.errors import ADMIN_ERRORS, ApiError
from gateway.metrics import From, Until
from gateway.rpc import context_of, rpc
from gateway.workspaces import Principal
from kit.audit import query_of
from kit.transport import timestamp
from nudge.common.v1 import audit_pb2

router = APIRouter(tags=["audit"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]

# Entries written at the same moment are listed in this order of their services (each newest first).
SERVICES = ("gateway", "profile", "segment", "journey", "dispatch", "metrics")
_RANK = {name: rank for rank, name in enumerate(SERVICES)}
_LAST_ID = 2**63 - 1


@router.get("/v1/audit", responses=answer(answers.Audit),
            summary="Who changed what and who read whose data, when: every service's entries")
async def audit_log(
        request: Request, principal: Admin,
        profileId: Annotated[str, Query(max_length=200, description="entries about this person")] = "",
        keyId: Annotated[str, Query(max_length=200, description="entries of this API key (or `operator`)")] = "",
        action: Annotated[str, Query(max_length=200, description="actions starting with this, e.g. `segment.` "
                                                                  "or `deliveries.read`")] = "",
        target: Annotated[str, Query(max_length=200, description="the id of what was read or changed")] = "",
        since: From = None, until: Until = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str = "") -> dict:
    after = _decode(cursor)
    ask = audit_pb2.ListAuditRequest(context=context_of(principal), size=limit + 1, action_prefix=action,
                                     actor=keyId, target=target, profile_id=profileId)
    if since is not None:
        ask.since.CopyFrom(timestamp(since))
    if until is not None:
        ask.until.CopyFrom(timestamp(until))
    entries = await _gather(request, principal, ask, after)
    entries.sort(key=_order, reverse=True)
    page = entries[:limit]
    return {"entries": [_entry_json(service, e) for service, e in page],
            "nextCursor": _encode(*page[-1]) if len(entries) > limit else None}


async def _gather(request: Request, principal: Principal, ask: audit_pb2.ListAuditRequest,
                  after: tuple[int, str, int] | None) -> list[tuple[str, audit_pb2.AuditEntry]]:
    """Each service's entries past the cursor, asked of all at once; any failure fails the whole."""
    services = rpc(request)

    def of(name: str) -> audit_pb2.ListAuditRequest:
        message = audit_pb2.ListAuditRequest()
        message.CopyFrom(ask)
        if after is not None:
            at, service, entry_id = after
            message.before_at.FromMicroseconds(at)
            # past the cursor in (time, service, id) order: at its moment, only services listed after it
            rank, mine = _RANK[service], _RANK[name]
            message.before_id = entry_id if mine == rank else (_LAST_ID if mine > rank else 0)
        return message

    async def gateway_entries() -> audit_pb2.ListAuditReply:
        entries = await request.app.state.workspaces.audit(principal.workspace_id, query_of(of("gateway")))
        return audit_pb2.ListAuditReply(entries=entries)

    calls = {"gateway": gateway_entries(), "profile": services.profile.ListAudit(of("profile")),
             "segment": services.segment.ListAudit(of("segment")),
             "journey": services.journey.ListAudit(of("journey")),
             "dispatch": services.dispatch.ListAudit(of("dispatch")),
             "metrics": services.metrics.ListAudit(of("metrics"))}
    replies = await asyncio.gather(*calls.values())
    return [(name, entry) for name, reply in zip(calls, replies) for entry in reply.entries]


def _order(item: tuple[str, audit_pb2.AuditEntry]) -> tuple[int, int, int]:
    service, entry = item
    return entry.at.ToMicroseconds(), -_RANK[service], entry.id


def _entry_json(service: str, e: audit_pb2.AuditEntry) -> dict:
    return {"at": e.at.ToJsonString(), "service": service, "keyId": e.actor, "action": e.action,
            "target": e.target or None, "profileId": e.profile_id or None,
            "detail": orjson.loads(e.detail_json or "{}")}


def _encode(service: str, entry: audit_pb2.AuditEntry) -> str:
    return f"{entry.at.ToMicroseconds()}.{service}.{entry.id}"


def _decode(cursor: str) -> tuple[int, str, int] | None:
    """The last entry of the page before: (time in microseconds, service, id)."""
    if not cursor:
        return None
    at, _, rest = cursor.partition(".")
    service, _, entry_id = rest.partition(".")
    if not (cursor.isascii() and at.isdigit() and entry_id.isdigit() and service in _RANK  # "²" is a digit to isdigit()
            and len(at) <= 18 and len(entry_id) <= 18):
        raise ApiError(422, "invalid_argument", "cursor: not a cursor this API returned", {"field": "cursor"})
    return int(at), service, int(entry_id)
