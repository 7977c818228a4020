"""End to end: the platform as `make run` starts it (devserver → embedded PostgreSQL and
Redis, the profile service, the gateway), driven from outside by the real Segment SDK and
plain HTTP, read back through the management API with the admin key."""

import collections
import secrets
import signal
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import segment.analytics as analytics

from tests.e2e.conftest import Launcher
from tests.support.tracing import new_traceparent

BATCH_EVENTS = 1_200


def _profiles_by(admin, **query) -> list[dict]:
    reply = admin.get("/v1/profiles", params=query)
    assert reply.status_code == 200, (query, reply.status_code, reply.text)
    return reply.json()["profiles"]


def _all_events(admin, profile_id: str) -> list[dict]:
    """Every event of a profile, following nextCursor pages of 500 (newest first)."""
    events, cursor, pages = [], None, 0
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        reply = admin.get(f"/v1/profiles/{profile_id}/events", params=params)
        assert reply.status_code == 200, (params, reply.status_code, reply.text)
        body = reply.json()
        assert set(body) == {"events", "nextCursor"}, body.keys()
        assert len(body["events"]) <= 500
        events += body["events"]
        pages += 1
        assert pages < 100, "nextCursor never ran out"
        cursor = body["nextCursor"]
        if cursor is None:
            return events
        assert isinstance(cursor, str) and cursor, body["nextCursor"]
        assert body["events"], "a page with a nextCursor but no events"


def _korean_mobile() -> tuple[str, str]:
    """A random 010 mobile number as people write it, and its E.164 form."""
    middle, last = secrets.randbelow(9000) + 1000, secrets.randbelow(9000) + 1000
    return f"010-{middle}-{last}", f"+8210{middle}{last}"


class _Errors(list):
    def __call__(self, error, batch):  # the SDK's on_error(error, items)
        self.append((repr(error), len(batch)))


def test_segment_sdk_lands_one_merged_profile_without_duplicates(platform):
    run = uuid.uuid4().hex[:8]
    anon_a, anon_b, user_id = f"anon-a-{run}", f"anon-b-{run}", f"user-{run}"
    phone_raw, phone_e164 = _korean_mobile()
    email_raw, email_norm = f"Ada.Lovelace+{run}@Example.COM", f"ada.lovelace+{run}@example.com"
    errors = _Errors()
    sync = analytics.Client(write_key=platform.write_key, host=platform.url, sync_mode=True,
                            on_error=errors, max_retries=3)
    sent: list[str] = []  # messageIds of every distinct call sent

    def record(result):
        ok, msg = result
        assert ok, msg
        sent.append(msg["messageId"])

    # An anonymous visitor on device A: every call type but alias.
    record(sync.identify(anonymous_id=anon_a, traits={"plan": "free", "nickname": "ada"}))
    record(sync.track(anonymous_id=anon_a, event="Product Viewed", properties={"sku": "A-1", "price": 12000}))
    record(sync.page(anonymous_id=anon_a, category="Shop", name="Home", properties={"path": "/"}))
    record(sync.screen(anonymous_id=anon_a, name="Cart", properties={"items": 1}))
    record(sync.group(anonymous_id=anon_a, group_id=f"org-{run}", traits={"name": "Analytical Engines"}))
    # The same person on device B, still anonymous, with events of its own.
    anon_b_calls = 3
    for i in range(anon_b_calls):
        record(sync.track(anonymous_id=anon_b, event="App Opened", properties={"n": i}))
    # Logs in on device A, then device B's history is tied to the user.
    record(sync.identify(user_id=user_id, anonymous_id=anon_a,
                         traits={"email": email_raw, "phone": phone_raw, "plan": "pro", "name": "Ada Lovelace"}))
    record(sync.alias(previous_id=anon_b, user_id=user_id))

    # A large backlog through the SDK's background uploader, 100 calls per /v1/batch.
    batch_errors = _Errors()
    batched = analytics.Client(write_key=platform.write_key, host=platform.url, sync_mode=False,
                               upload_size=100, on_error=batch_errors, max_retries=3, max_queue_size=5000)
    for i in range(BATCH_EVENTS):
        record(batched.track(user_id=user_id, event="Item Scanned", properties={"i": i}))

    # Calls with messageIds of their own, each sent twice (retries by the app or the SDK).
    replayed = [f"replay-{run}-{i}" for i in range(5)]
    for message_id in replayed:
        record(sync.track(user_id=user_id, event="Checkout Started", properties={"id": message_id},
                          message_id=message_id))
    batched.flush()
    for message_id in replayed:
        ok, _ = sync.track(user_id=user_id, event="Checkout Started", properties={"id": message_id},
                           message_id=message_id)
        assert ok
        ok, _ = batched.track(user_id=user_id, event="Checkout Started", properties={"id": message_id},
                              message_id=message_id)
        assert ok
    batched.flush()
    batched.join()
    assert errors == [] and batch_errors == [], (errors, batch_errors)

    # A resend answers "duplicate" rather than storing a second copy.
    with platform.tracking() as tracking:
        reply = tracking.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": user_id, "event": "Checkout Started", "messageId": replayed[0]},
            {"type": "track", "userId": user_id, "event": "Checkout Started", "messageId": replayed[0]},
        ]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"success": True, "stored": 0, "duplicates": 2, "rejected": []}, reply.json()

    assert len(sent) == len(set(sent)) == 5 + anon_b_calls + 2 + BATCH_EVENTS + len(replayed)
    with platform.admin() as admin:
        profiles = _profiles_by(admin, userId=user_id)
        assert len(profiles) == 1, profiles
        profile = profiles[0]
        identities = {(i["type"], i["value"]) for i in profile["identities"]}
        assert {("anonymous_id", anon_a), ("anonymous_id", anon_b), ("user_id", user_id),
                ("email", email_norm), ("phone", phone_e164)} <= identities, identities
        assert len(profile["mergedIds"]) == 1, profile  # device B's anonymous profile
        assert profile["traits"]["plan"] == "pro" and profile["traits"]["nickname"] == "ada", profile["traits"]

        # Every identifier leads to the same one profile, including the merged one's id.
        for query in ({"anonymousId": anon_a}, {"anonymousId": anon_b}, {"email": email_raw.upper()},
                      {"email": email_norm}, {"phone": phone_raw}, {"phone": phone_e164}):
            assert [p["id"] for p in _profiles_by(admin, **query)] == [profile["id"]], query
        merged = admin.get(f"/v1/profiles/{profile['mergedIds'][0]}")
        assert merged.status_code == 200 and merged.json()["id"] == profile["id"], merged.text

        events = _all_events(admin, profile["id"])
    message_ids = [e["messageId"] for e in events]
    duplicates = [m for m, n in collections.Counter(message_ids).items() if n > 1]
    assert duplicates == [], f"{len(duplicates)} messageIds stored more than once, e.g. {duplicates[:5]}"
    assert len(events) == len(sent), (len(events), len(sent))
    assert set(message_ids) == set(sent)
    assert all(e["profileId"] == profile["id"] for e in events)
    by_type = collections.Counter(e["type"] for e in events)
    assert by_type == {"identify": 2, "track": 1 + anon_b_calls + BATCH_EVENTS + len(replayed),
                       "page": 1, "screen": 1, "group": 1, "alias": 1}, by_type
    # compared as moments: "…37.623Z" (an SDK's milliseconds) is before "…37.623435Z", not after it as text
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in events]
    assert stamps == sorted(stamps, reverse=True), "events are not newest first"
    scanned = sorted(e["properties"]["i"] for e in events if e.get("event") == "Item Scanned")
    assert scanned == list(range(BATCH_EVENTS))


def test_one_trace_spans_gateway_and_profile(platform, otlp_receiver):
    trace_id, traceparent = new_traceparent()
    with platform.tracking() as tracking:
        reply = tracking.post("/v1/track", headers={"traceparent": traceparent}, json={
            "anonymousId": f"anon-{trace_id[:8]}", "event": "Traced", "messageId": f"trace-{trace_id}"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"success": True, "outcome": "stored"}, reply.json()

    def services_of(spans):
        return {s.service for s in spans if s.trace_id == trace_id}

    spans = otlp_receiver.wait_for(lambda spans: {"gateway", "profile"} <= services_of(spans), timeout=30)
    ours = [s for s in spans if s.trace_id == trace_id]
    seen = sorted({(s.service, s.trace_id) for s in spans})
    assert {"gateway", "profile"} <= services_of(spans), (
        f"spans of trace {trace_id}: {[(s.service, s.name) for s in ours]}; "
        f"services seen in any trace: {sorted({s.service for s in spans})} ({len(spans)} spans, "
        f"{len(seen)} service/trace pairs)")
    gateway = [s for s in ours if s.service == "gateway"]
    profile = [s for s in ours if s.service == "profile"]
    # The gateway continued the caller's trace: one of its spans is the child of our span.
    assert any(s.parent_span_id == traceparent.split("-")[2] for s in gateway), [(s.name, s.parent_span_id)
                                                                                  for s in gateway]
    # The profile service's server span is the child of a gateway span of that trace.
    gateway_ids = {s.span_id for s in gateway}
    assert any(s.parent_span_id in gateway_ids for s in profile), [(s.name, s.parent_span_id) for s in profile]


def test_data_survives_a_restart_of_make_run(launcher_factory):
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-restart-", dir="/tmp", ignore_cleanup_errors=True) as tmp:
        data_dir = Path(tmp)
        first = launcher_factory(data_dir).start()
        user_id = f"restart-{uuid.uuid4().hex[:8]}"
        traits = {"name": "Grace Hopper", "plan": "enterprise", "visits": 3}
        client = analytics.Client(write_key=first.write_key, host=first.url, sync_mode=True, max_retries=3)
        ok, msg = client.identify(user_id=user_id, traits=traits)
        assert ok
        assert first.processes, "found no processes of the first run"
        assert first.stop() == 0, first.log_tail()
        # (Processes of the first run that outlived it were ended by stop(), so the second run
        # starts its own PostgreSQL: the data has to come back from disk.)

        second: Launcher = launcher_factory(data_dir, http_port=first.http_port, profile_port=first.profile_port,
                                            segment_port=first.segment_port,
                                            dispatch_port=first.dispatch_port).start()
        for name in ("workspace_id", "write_key", "admin_key"):
            assert second.banner[name] == first.banner[name], (name, first.banner, second.banner)
        with second.admin() as admin:
            profiles = _profiles_by(admin, userId=user_id)
            assert len(profiles) == 1, profiles
            assert profiles[0]["traits"] == traits, profiles[0]
            events = _all_events(admin, profiles[0]["id"])
        assert [(e["type"], e["messageId"]) for e in events] == [("identify", msg["messageId"])], events
        # The write key still works for new calls after the restart.
        with second.tracking() as tracking:
            reply = tracking.post("/v1/track", json={"userId": user_id, "event": "Came Back"})
        assert reply.status_code == 200 and reply.json()["outcome"] == "stored", reply.text
        assert second.stop() == 0, second.log_tail()


@pytest.mark.parametrize("sig, group", [
    pytest.param(signal.SIGINT, True, id="ctrl-c-in-a-terminal"),  # SIGINT to the whole process group
    pytest.param(signal.SIGINT, False, id="sigint-to-the-launcher"),
    pytest.param(signal.SIGTERM, False, id="sigterm-to-the-launcher"),
])
def test_stopping_make_run_leaves_no_process_behind(launcher_factory, sig, group):
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-stop-", dir="/tmp", ignore_cleanup_errors=True) as tmp:
        launcher = launcher_factory(Path(tmp)).start()
        names = " ".join(launcher.processes.values())
        for expected in ("services.profile", "gateway", "postgres", "redis-server"):
            assert expected in names, (expected, launcher.processes)
        with launcher.tracking() as tracking:  # used, so every service has its connections open
            reply = tracking.post("/v1/identify", json={"userId": "stopper", "traits": {"a": 1}})
        assert reply.status_code == 200, reply.text
        assert launcher.stop(sig, group=group) == 0, launcher.log_tail()
    # "Ctrl-C stops everything": the embedded PostgreSQL and Redis too.
    assert launcher.leftovers == [], (
        f"still running after the launcher exited with 0: {launcher.leftovers}; "
        f"pgdata/.handle_pids.json then held {launcher.postgres_handles} "
        f"(children were {sorted(launcher.processes.items())})")
