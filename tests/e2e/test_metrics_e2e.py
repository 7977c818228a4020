"""End to end through the real processes of `make run`: a journey with an A/B split sends an
email over a local SMTP server; the person follows its tracked link through the gateway's
redirect and then buys. The metrics show the send, the click and the conversion with its
revenue on the node and variant that sent it, and one trace holds the spans of all six
services for the sign-up event."""

import re
import time
import uuid

from tests.dispatch import provider_servers as fake
from tests.support.channels import smtp_config
from tests.support.tracing import new_traceparent
from tests.support.waiting import eventually_sync

LANDING = "https://shop.kr/spring"
SPLIT_JOURNEY = {
    "trigger": {"kind": "event", "event": "Signed Up"},
    "goal": {"event": "Order Completed"},
    "start": "ab",
    "nodes": {
        "ab": {"kind": "split", "branches": [{"weight": 50, "next": "send_a"}, {"weight": 50, "next": "send_b"}]},
        "send_a": {"kind": "send", "channels": ["email"], "template": "e2e-a", "advertising": False, "next": "hold"},
        "send_b": {"kind": "send", "channels": ["email"], "template": "e2e-b", "advertising": False, "next": "hold"},
        "hold": {"kind": "wait", "duration": "PT30S", "next": "done"},
        "done": {"kind": "exit"},
    },
}


def _ok(reply, status: int = 200):
    assert reply.status_code == status, reply.text
    return reply.json() if reply.content else None


def test_send_click_and_purchase_show_in_the_journey_metrics_and_one_trace_spans_six_services(
        platform, otlp_receiver):
    user = f"buyer-{uuid.uuid4().hex[:6]}"
    with fake.SmtpProvider("mailer", "pw") as smtp, platform.admin() as admin, platform.tracking() as tracking:
        provider, config = smtp_config(smtp)
        _ok(admin.put("/v1/channels/email", json={"provider": provider, "config": config}))
        for variant in "ab":
            _ok(admin.put(f"/v1/templates/e2e-{variant}", json={"name": f"variant {variant}", "channels": {"email": {
                "subject": f"Spring sale ({variant})", "text": f"See {LANDING}",
                "html": f'<html><body><a href="{LANDING}">See the sale</a></body></html>'}}}))
        journey = _ok(admin.post("/v1/journeys", json={"name": "spring a/b", "definition": SPLIT_JOURNEY}), 201)
        _ok(admin.post(f"/v1/journeys/{journey['id']}/publish"))
        try:
            _ok(tracking.post("/v1/identify", json={"userId": user, "traits": {"email": f"{user}@example.kr"}}))
            trace_id, traceparent = new_traceparent()
            _ok(tracking.post("/v1/track", headers={"traceparent": traceparent},
                              json={"userId": user, "event": "Signed Up"}))

            mail = eventually_sync(lambda: next((m for m in smtp.mail if f"{user}@example.kr" in m.recipients), None))
            html = mail.message.get_body(("html",)).get_content()
            [tracked] = [href for href in re.findall(r'href="([^"]+)"', html) if "/t/c/" in href]
            path = tracked[tracked.index("/t/c/"):]
            redirect = tracking.get(path, follow_redirects=False)
            assert redirect.status_code == 302 and redirect.headers["location"].startswith(LANDING + "?")
            assert "utm_source=" in redirect.headers["location"]
            time.sleep(0.5)  # the click is recorded before the purchase
            _ok(tracking.post("/v1/track", json={"userId": user, "event": "Order Completed",
                                                  "properties": {"revenue": 39000}}))

            profile_id = _ok(admin.get("/v1/profiles", params={"userId": user}))["profiles"][0]["id"]
            [run] = _ok(admin.get(f"/v1/profiles/{profile_id}/journey-runs"))["runs"]
            variant = run["variant"]
            node = f"send_{variant}"

            def stats():
                rows = _ok(admin.get("/v1/metrics/stats", params={"journeyId": journey["id"],
                                                                  "groupBy": "node,variant"}))["rows"]
                row = next((r for r in rows if r["group"] == {"node": node, "variant": variant}), None)
                counts = row and row["counts"]
                return counts if counts and counts["sent"] == 1 and counts["clicked"] == 1 \
                    and counts["converted"] == 1 else None
            counts = eventually_sync(stats, timeout=30)
            assert counts["revenue"] == 39000 and counts["clickRate"] == 1.0
            # the goal ended the run as a conversion of its variant
            eventually_sync(lambda: [(v["variant"], v["runs"], v["conversions"]) for v in _ok(admin.get(
                f"/v1/journeys/{journey['id']}/experiment"))["variants"]] == [(variant, 1, 1)])
            assert _ok(admin.get(f"/v1/journey-runs/{run['id']}"))["status"] == "converted"
        finally:
            admin.post(f"/v1/journeys/{journey['id']}/archive")

    wanted = {"gateway", "profile", "segment", "journey", "dispatch", "metrics"}

    def ours(spans):
        return [s for s in spans if s.trace_id == trace_id]
    spans = ours(otlp_receiver.wait_for(lambda spans: wanted <= {s.service for s in ours(spans)}, timeout=30))
    assert wanted <= {s.service for s in spans}, sorted({(s.service, s.name) for s in spans})
