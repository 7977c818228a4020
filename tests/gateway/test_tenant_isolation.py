"""Tenant isolation, route by route: workspace A holds one of everything the API can create
(tests/support/tenants.py); every route the gateway serves, enumerated from the app itself,
is then called with B's key on A's ids, with A's write key on an admin route (403) and with
no key (401). B's call gets the row's status: 404 for an object of A's; B's own answer on a
workspace-scoped route (B's settings, B's lists) and on a view of facts looked up by an id
(a profile's deliveries or value, a journey's funnel: B's, empty); 422 for a body naming
A's object as a reference (a rule's segment, a definition's template: B has none of that
id). Whatever the status, no answer carries a byte of A's data, each equals the answer for
ids naming nothing (no answer tells B that A's object exists), and A's objects read the same
after. A route without a row fails the test: add its row to ROUTES (CONTRIBUTING.md)."""

import base64
import re
import uuid
from dataclasses import dataclass

import httpx
import orjson
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from gateway.app import create_app
from services.dispatch.models import engagements
from tests.support import tenants
from tests.support.gateway import own_gateway

ADMIN, WRITE, PUBLIC = "admin", "write", "public"  # the key a route takes (PUBLIC: none)
SIMULATION = {"profile": {"traits": {}}, "startAt": "2026-03-02T10:00:00+09:00",
              "timeline": [{"event": "Signed Up", "at": "2026-03-02T10:00:00+09:00"}]}
B_TEMPLATE, INAPP = "b-hello", {"title": "b", "body": "b"}  # B's own template
SEND_A_TEMPLATE = {"trigger": {"kind": "event", "event": "Signed Up"}, "start": "s",
                   "nodes": {"s": {"kind": "send", "channels": ["inapp"], "template": "{template_id}"}}}


@dataclass(frozen=True)
class Row:
    """How the matrix calls one route. Strings in `body`, `query` and `path` name A's ids in
    braces ("{profile_id}", see tenants.build); a path parameter not in `path` is A's id of
    that name. `expect` is the status B's call gets (B's admin key on an ADMIN route, B's
    write key on a WRITE route, no key on a PUBLIC one); anything but 404 says `why`."""
    key: str
    expect: int = 404
    body: object = None
    query: dict | None = None
    path: dict | None = None
    why: str = ""
    last: bool = False  # B writes its own object under A's id: run after the rows that must find nothing


GENERATED_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GENERATED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
OWN = "B's own (workspace-scoped, names none of A's objects)"
# Facts other services told this one, looked up by an id it does not own: B's (none).
VIEW = "B's facts keyed by that id: empty, as for an id naming nothing"

ROUTES: dict[tuple[str, str], Row] = {
    # -- tracking: the write key stores B's own calls; A's userId names a person of B's
    # (and the short paths browser and mobile SDKs post to: /v1/i, /v1/t, … /v1/b)
    **{("POST", f"/v1/{path}"): Row(WRITE, 200, {"userId": "{user_id}", **extra}, why="B's person of that userId")
       for call, extra in [("identify", {"traits": {"plan": "b"}}), ("track", {"event": "Viewed"}),
                           ("page", {"name": "Home"}), ("screen", {"name": "Home"}),
                           ("group", {"groupId": "g-b"}), ("alias", {"previousId": "anon-b"})]
       for path in (call, call[0])},
    **{("POST", path): Row(WRITE, 200, {"batch": [{"type": "track", "userId": "{user_id}", "event": "Viewed"}]},
                           why="B's person of that userId") for path in ("/v1/batch", "/v1/b")},
    # -- profiles
    ("GET", "/v1/profiles/{profile_id}"): Row(ADMIN),
    ("DELETE", "/v1/profiles/{profile_id}"): Row(ADMIN),
    ("GET", "/v1/profiles"): Row(ADMIN, 200, query={"email": "{email}"}, why="B's people with A's email: none"),
    ("GET", "/v1/profiles/{profile_id}/events"): Row(ADMIN),
    ("PUT", "/v1/profiles/{profile_id}/consent"): Row(ADMIN, body={
        "channels": {"email": {"granted": False, "source": "b"}}}),
    ("GET", "/v1/profiles/{profile_id}/export"): Row(ADMIN),
    ("GET", "/v1/identity-policy"): Row(ADMIN, 200, why=OWN),
    ("PUT", "/v1/identity-policy"): Row(ADMIN, 200, {"uniqueIdentifiers": ["phone"]}, why=OWN),
    ("GET", "/v1/audit"): Row(ADMIN, 200, query={"profileId": "{profile_id}"}, why="B's log, of A's profile: empty"),
    # -- segments
    ("POST", "/v1/segments"): Row(ADMIN, 422, {"name": "b", "rules": {"segment": "{segment_id}"}},
                                  why="a rule naming a segment B does not have: the field is invalid"),
    ("GET", "/v1/segments"): Row(ADMIN, 200, why=OWN),
    ("POST", "/v1/segments/preview"): Row(ADMIN, 422, {"rules": {"segment": "{segment_id}"}},
                                          why="a rule naming a segment B does not have: the field is invalid"),
    ("POST", "/v1/segments/explain"): Row(ADMIN, body={"rules": {"trait": "name", "op": "exists"},
                                                       "profileId": "{profile_id}"}),
    ("GET", "/v1/segments/{segment_id}"): Row(ADMIN),
    ("PATCH", "/v1/segments/{segment_id}"): Row(ADMIN, body={"name": "b"}),
    ("DELETE", "/v1/segments/{segment_id}"): Row(ADMIN),
    ("GET", "/v1/segments/{segment_id}/count"): Row(ADMIN),
    ("GET", "/v1/segments/{segment_id}/members"): Row(ADMIN),
    ("GET", "/v1/segments/{segment_id}/members/{profile_id}"): Row(ADMIN),
    ("GET", "/v1/segments/{segment_id}/explain/{profile_id}"): Row(ADMIN),
    ("GET", "/v1/segment-settings/rfm"): Row(ADMIN, 200, why=OWN),
    ("PUT", "/v1/segment-settings/rfm"): Row(ADMIN, 200, {"orderEvent": "Paid", "revenueProperty": "total"}, why=OWN),
    # -- messages
    ("POST", "/v1/messages"): Row(ADMIN, 200, {"profileId": "{profile_id}", "channels": ["inapp"],
                                               "templateId": B_TEMPLATE},
                                  why="B's own send, failed: B has no such person (a delivery says why it failed)"),
    ("GET", "/v1/deliveries/{delivery_id}"): Row(ADMIN),
    ("GET", "/v1/profiles/{profile_id}/deliveries"): Row(ADMIN, 200, why=VIEW),
    ("PUT", "/v1/templates/{template_id}"): Row(ADMIN, 200, {"name": "b", "channels": {"inapp": INAPP}},
                                                why="B's own template of that id (ids are per workspace)", last=True),
    ("GET", "/v1/templates/{template_id}"): Row(ADMIN),
    ("DELETE", "/v1/templates/{template_id}"): Row(ADMIN),
    ("GET", "/v1/templates"): Row(ADMIN, 200, why=OWN),
    ("PUT", "/v1/channels/{channel}"): Row(ADMIN, 200, {"provider": "webhook", "config": {
        "url": "http://127.0.0.1:9/b", "secret": "b", "allowed_hosts": ["127.0.0.1"]}},
        path={"channel": "webhook"}, why=OWN),
    ("GET", "/v1/channels"): Row(ADMIN, 200, why=OWN),
    ("GET", "/v1/dispatch-policy"): Row(ADMIN, 200, why=OWN),
    ("PUT", "/v1/dispatch-policy"): Row(ADMIN, 200, {"sender_name": "b"}, why=OWN),
    ("PATCH", "/v1/dispatch-policy"): Row(ADMIN, 200, {"sender_name": "b2"}, why=OWN),
    # the inbox and in-app engagement need the person's user token, signed with the workspace's
    # identity secret: B has none, and A's cannot be guessed
    ("GET", "/v1/inapp"): Row(WRITE, 401, query={"userId": "{user_id}"}, why="no user token for A's userId"),
    ("POST", "/v1/inapp/seen"): Row(WRITE, 401, {"ids": ["{inapp_id}"]}, query={"userId": "{user_id}"},
                                    why="no user token for A's userId"),
    ("GET", "/v1/channels/{provider}/receipt-url"): Row(ADMIN, 200, path={"provider": "webhook"}, why=OWN),
    ("POST", "/v1/webhooks/{provider}/{workspace_id}/{token}"): Row(
        PUBLIC, 200, {"provider_message_id": "{delivery_id}", "status": "failed"},
        path={"provider": "webhook", "workspace_id": "{b_workspace_id}", "token": "{receipt_token}"},
        why="a provider's receipt on B's signed URL, naming A's delivery: updates none of B's"),
    ("GET", "/t/c/{token}"): Row(PUBLIC, path={"token": "{click_token}"},
                                 why="a link in a message: B's token, A's delivery"),
    ("GET", "/t/o/{token}"): Row(PUBLIC, path={"token": "{open_token}"}, why="the open pixel: B's token, A's delivery"),
    ("GET", "/u/{token}"): Row(PUBLIC, path={"token": "{unsubscribe_token}"},
                               why="unsubscribe page: B's token, A's delivery"),
    ("POST", "/u/{token}"): Row(PUBLIC, path={"token": "{unsubscribe_token}"},
                                why="one-click unsubscribe: B's token, A's delivery"),
    ("POST", "/v1/inapp/{delivery_id}/impression"): Row(WRITE, 401, query={"userId": "{user_id}"},
                                                        path={"delivery_id": "{inapp_id}"},
                                                        why="no user token for A's userId"),
    ("POST", "/v1/inapp/{delivery_id}/click"): Row(WRITE, 401, query={"userId": "{user_id}"},
                                                   path={"delivery_id": "{inapp_id}"}, why="no user token for A's userId"),
    # -- SDK access settings: each workspace's own
    ("GET", "/v1/settings/identity-secret"): Row(ADMIN, 200, why=OWN),
    ("POST", "/v1/settings/identity-secret"): Row(ADMIN, 201, why=OWN, last=True),
    ("DELETE", "/v1/settings/identity-secret/previous"): Row(ADMIN, why="B has no previous secret"),
    ("GET", "/v1/settings/allowed-origins"): Row(ADMIN, 200, why=OWN),
    ("PUT", "/v1/settings/allowed-origins"): Row(ADMIN, 200, {"origins": ["https://b.example"]}, why=OWN),
    # -- journeys
    ("POST", "/v1/journeys"): Row(ADMIN, 422, {"id": "{journey_id}", "starter": "dormancy",
                                               "templates": {"dormancy-notice": "{template_id}"},
                                               "segments": {"dormant-265d": "{segment_id}"}},
                                  why="a starter mapped to a segment B does not have: the field is invalid"),
    ("GET", "/v1/journeys"): Row(ADMIN, 200, why=OWN),
    ("GET", "/v1/journey-templates"): Row(ADMIN, 200, why="the starter library, the same for every workspace"),
    ("GET", "/v1/journey-templates/{template_id}"): Row(ADMIN, 200, path={"template_id": "dormancy"},
                                                        why="the starter library, the same for every workspace"),
    ("POST", "/v1/journeys/simulate"): Row(ADMIN, 422, {**SIMULATION, "definition": SEND_A_TEMPLATE},
                                           why="a definition naming a template B does not have: invalid"),
    ("GET", "/v1/journeys/{journey_id}"): Row(ADMIN),
    ("PATCH", "/v1/journeys/{journey_id}"): Row(ADMIN, body={"name": "b"}),
    ("DELETE", "/v1/journeys/{journey_id}"): Row(ADMIN),
    **{("POST", f"/v1/journeys/{{journey_id}}/{action}"): Row(ADMIN)
       for action in ("publish", "pause", "resume", "archive")},
    ("GET", "/v1/journeys/{journey_id}/versions"): Row(ADMIN),
    ("GET", "/v1/journeys/{journey_id}/stats"): Row(ADMIN),
    ("POST", "/v1/journeys/{journey_id}/simulate"): Row(ADMIN, body=SIMULATION),
    ("GET", "/v1/profiles/{profile_id}/journey-runs"): Row(ADMIN, 200, why=VIEW),
    ("GET", "/v1/journey-runs/{run_id}"): Row(ADMIN),
    # -- metrics
    ("GET", "/v1/metrics/stats"): Row(ADMIN, 200, query={"journeyId": "{journey_id}"},
                                      why="B's counts for that journey id: none"),
    ("GET", "/v1/journeys/{journey_id}/experiment"): Row(ADMIN, 200, why=VIEW),
    ("GET", "/v1/journeys/{journey_id}/funnel"): Row(ADMIN, 200, why=VIEW),
    ("GET", "/v1/profiles/{profile_id}/value"): Row(ADMIN, 200, why=VIEW),
    ("GET", "/v1/metrics/customer-value"): Row(ADMIN, 200, why=OWN),
    ("GET", "/v1/metrics/data-quality"): Row(ADMIN, 200, why=OWN),
    ("GET", "/v1/metrics/settings"): Row(ADMIN, 200, why=OWN),
    ("PUT", "/v1/metrics/settings"): Row(ADMIN, 200, {"orderEvent": "Paid", "revenueProperty": "total"}, why=OWN),
    # -- no key and no workspace: probes and the API's own documents
    **{("GET", path): Row(PUBLIC, 200, why="probe or API document: nothing of a workspace")
       for path in ("/healthz", "/readyz", "/healthz/services", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                    "/redoc")},
}


def served_routes(app) -> set[tuple[str, str]]:
    """Every (method, path) the app answers: its OpenAPI document and the routes left out of it."""
    documented = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
                  for method in operations}
    served = {(method, route.path) for route in iter_route_contexts(app.routes)
              for method in route.methods or () if method != "HEAD"}
    return documented | served


def fill(value, ids: dict[str, str]):
    """`value` with "{name}" in its strings replaced by ids[name]."""
    if isinstance(value, str):
        return value.format_map(ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict
    allowed: frozenset[int] | None = None  # None: the row's `expect` (the other tenant's call)


def basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def callers(row: Row, a, b) -> list[Caller]:
    nobody = Caller("no key", {}, frozenset({401}))
    if row.key == ADMIN:
        return [nobody, Caller("A's write key", basic(a.ws.write_key), frozenset({403})),
                Caller("B's admin key", bearer(b.admin_key))]
    if row.key == WRITE:
        return [nobody, Caller("B's admin key", bearer(b.admin_key), frozenset({401, 403})),
                Caller("B's write key", basic(b.write_key))]
    return [Caller("no key", {})]


def request_of(route: str, row: Row, ids: dict) -> tuple[str, dict | None, object]:
    """Path, query and body of the row's call with these ids."""
    return route.format_map({**ids, **fill(row.path or {}, ids)}), fill(row.query, ids), fill(row.body, ids)


async def answer(client: httpx.AsyncClient, method: str, route: str, row: Row, ids: dict, caller: Caller):
    """The response, and everything the caller sent (its own bytes may come back)."""
    path, params, body = request_of(route, row, ids)
    # A fresh Idempotency-Key on every call: POST /v1/messages requires one, other routes ignore it.
    response = await client.request(method, path, params=params, json=body,
                                    headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())})
    return response, path + orjson.dumps([params, body]).decode()


def _neutral(text: str, *named: dict[str, str]) -> str:
    """The text with each id in `named` replaced by its name, then the ids and times the
    call itself generated (a new delivery's id, its time) by placeholders."""
    for ids in named:
        for name, value in ids.items():
            text = text.replace(value, f"<{name}>")
    return GENERATED_TIME.sub("<time>", GENERATED_ID.sub("<uuid>", text))


async def check_row(client, method: str, route: str, row: Row, a, b, ids: dict, ghosts: dict) -> list[str]:
    """What is wrong with the route's answers to every caller; nothing when isolated."""
    found = []
    if (method, row.key, row.expect) == ("GET", ADMIN, 404):  # the control: B's 404 is the tenancy, not a bad row
        control, _ = await answer(client, method, route, row, ids, Caller("A's admin key", bearer(a.ws.admin_key)))
        if control.status_code != 200:
            found.append(f"{method} {route}: A's own admin key gets {control.status_code}: "
                         "the row names no object of A")
    for caller in callers(row, a, b):
        label = f"{method} {route} with {caller.name}"
        response, sent = await answer(client, method, route, row, ids, caller)
        allowed = caller.allowed or {row.expect}
        if response.status_code not in allowed:
            found.append(f"{label}: {response.status_code}, expected {sorted(allowed)}: {response.text[:300]}")
        if leaked := a.marks.found(response.text + repr(dict(response.headers)), sent):
            found.append(f"{label}: A's data in the answer ({', '.join(leaked)}): {response.text[:300]}")
        if caller.allowed is None and not row.last and request_of(route, row, ids) != request_of(route, row, ghosts):
            ghost, _ = await answer(client, method, route, row, ghosts, caller)
            mine, theirs = _neutral(response.text, ids, ghosts), _neutral(ghost.text, ids, ghosts)
            if (response.status_code, mine) != (ghost.status_code, theirs):
                found.append(f"{label}: A's ids answer {response.status_code} {mine[:200]}, ids naming nothing "
                             f"{ghost.status_code} {theirs[:200]}")
    return found


def with_tokens(ids: dict[str, str], b, dispatch_platform, receipt_token: str) -> dict[str, str]:
    """The ids, plus the signed tokens of links in B's messages made to name A's delivery,
    and B's receipt URL token: what B can sign or obtain, pointed at A."""
    tokens, delivery = dispatch_platform.service.tokens, ids["delivery_id"]
    return {**ids, "b_workspace_id": b.id, "receipt_token": receipt_token,
            "click_token": tokens.click(b.id, delivery, 0), "open_token": tokens.open(b.id, delivery),
            "unsubscribe_token": tokens.unsubscribe(b.id, delivery, "advertising")}


async def engagement_count(dispatch_platform, a) -> int:
    """Opens, clicks and unsubscribes recorded for A (no route reads them back at once)."""
    async with dispatch_platform.service.sessions() as session:
        return await session.scalar(select(func.count()).select_from(engagements)
                                    .where(engagements.c.workspace_id == a.ws.id))


async def test_no_route_gives_another_tenant_any_of_a_workspaces_data(
        workspace, other_workspace, gateway_settings, receiver, dispatch_platform):
    # The matrix calls faster than an admin key may: a gateway of its own without limits.
    settings = gateway_settings.model_copy(update={"rate_limit_write": "1000000/second",
                                                   "rate_limit_admin": "1000000/second"})
    routes = served_routes(create_app(settings, setup_observability=False))
    assert not routes - ROUTES.keys(), f"routes without a row in the isolation matrix: {sorted(routes - ROUTES.keys())}"
    assert not ROUTES.keys() - routes, f"rows of routes the app does not serve: {sorted(ROUTES.keys() - routes)}"
    assert not [key for key, row in ROUTES.items() if (row.expect != 404 or row.key == PUBLIC) and not row.why]
    a, b = await tenants.build(workspace, receiver), other_workspace
    assert (await b.admin.put(f"/v1/templates/{B_TEMPLATE}", json={"channels": {"inapp": INAPP}})).status_code == 200
    receipt = (await b.admin.get("/v1/channels/webhook/receipt-url")).json()["url"].rsplit("/", 1)[1]
    ids = with_tokens(a.ids, b, dispatch_platform, receipt)
    ghosts = with_tokens(tenants.ghost_ids(a.ids), b, dispatch_platform, receipt)

    async with own_gateway(settings) as client:
        before = {**await tenants.snapshot(a, client), "engagements": await engagement_count(dispatch_platform, a)}
        findings = []
        for (method, route), row in sorted(ROUTES.items(), key=lambda item: item[1].last):
            findings += await check_row(client, method, route, row, a, b, ids, ghosts)
        assert not findings, f"{len(findings)} isolation findings:\n" + "\n".join(findings)
        after = {**await tenants.snapshot(a, client), "engagements": await engagement_count(dispatch_platform, a)}
    changed = {name: (before[name], after[name]) for name in before if after[name] != before[name]}
    assert not changed, f"A's objects changed (before, after): {changed}"
