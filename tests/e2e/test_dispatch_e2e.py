"""End to end on the `make run` platform: a direct send reaches the person's in-app inbox,
and the dispatch service's spans join the sender's trace."""

import secrets

from tests.support.api import user_token
from tests.support.tracing import new_traceparent
from tests.support.waiting import eventually_sync


def test_a_message_sent_through_the_gateway_is_in_the_inbox_and_in_the_trace(platform, otlp_receiver):
    user = f"inbox-{secrets.token_hex(4)}"
    with platform.admin() as admin, platform.tracking() as tracking:
        assert tracking.post("/v1/identify", json={"userId": user, "traits": {"name": "Kim"}}).status_code == 200
        profiles = eventually_sync(lambda: admin.get("/v1/profiles", params={"userId": user}).json()["profiles"],
                                   interval=0.1)
        assert admin.put("/v1/templates/shipped", json={"channels": {"inapp": {
            "title": "Hi {{ profile.name }}", "body": "Your order shipped"}}}).status_code == 200
        trace_id, traceparent = new_traceparent()
        reply = admin.post("/v1/messages", headers={"Idempotency-Key": f"ship-{user}", "traceparent": traceparent},
                           json={"profileId": profiles[0]["id"], "channels": ["inapp"], "templateId": "shipped"})
        assert reply.status_code == 200 and reply.json()["status"] == "sent", reply.text
        secret = admin.post("/v1/settings/identity-secret").json()["secret"]
        inbox = tracking.get("/v1/inapp", params={"userId": user},
                             headers={"X-Nudge-User-Token": user_token(secret, user)}).json()["messages"]
        assert [(m["title"], m["body"]) for m in inbox] == [("Hi Kim", "Your order shipped")]

    def services_of(spans):
        return {s.service for s in spans if s.trace_id == trace_id}

    spans = otlp_receiver.wait_for(lambda spans: {"gateway", "dispatch"} <= services_of(spans), timeout=30)
    assert {"gateway", "dispatch"} <= services_of(spans)
