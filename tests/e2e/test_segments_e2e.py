"""End to end, on real time: a segment with a window of a few seconds, fed through the
gateway of the `make run` platform, enters on an event and exits when the window passes with
nothing else happening; the segment service's spans join the event's trace."""

import secrets
import time

from tests.support.tracing import new_traceparent
from tests.support.waiting import eventually_sync

WINDOW_SECONDS = 4


def test_a_short_window_enters_on_the_event_and_exits_on_time_alone(platform, otlp_receiver):
    user = f"e2e-{secrets.token_hex(4)}"
    with platform.admin() as admin, platform.tracking() as tracking:
        reply = admin.post("/v1/segments", json={"name": "just active", "rules": {
            "event": "Heartbeat", "count": {"op": "gte", "value": 1}, "within": f"PT{WINDOW_SECONDS}S"}})
        assert reply.status_code == 201, reply.text
        segment = reply.json()["id"]
        eventually_sync(lambda: admin.get(f"/v1/segments/{segment}").json()["backfill"]["state"] == "done",
                        timeout=60)

        trace_id, traceparent = new_traceparent()
        reply = tracking.post("/v1/track", headers={"traceparent": traceparent},
                              json={"userId": user, "event": "Heartbeat"})
        assert reply.status_code == 200, reply.text
        profile = eventually_sync(lambda: (admin.get("/v1/profiles", params={"userId": user}).json()["profiles"]
                                           or [{}])[0].get("id"), timeout=60)

        def member() -> bool:
            return admin.get(f"/v1/segments/{segment}/members/{profile}").json()["member"]

        eventually_sync(member, timeout=60)
        entered = time.monotonic()
        eventually_sync(lambda: not member(), timeout=WINDOW_SECONDS + 30)
        # Out by the window's end (plus a timer poll), not before it.
        assert time.monotonic() - entered >= WINDOW_SECONDS - 1.5

    spans = otlp_receiver.wait_for(lambda spans: {"gateway", "profile", "segment"} <= {
        s.service for s in spans if s.trace_id == trace_id}, timeout=30)
    ours = [s for s in spans if s.trace_id == trace_id]
    assert {"gateway", "profile", "segment"} <= {s.service for s in ours}, [(s.service, s.name) for s in ours]
    assert any(s.name == "segment.evaluate" for s in ours if s.service == "segment")
