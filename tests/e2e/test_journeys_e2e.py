"""End to end, on real time: the seed journeys (welcome, cart abandonment, post-purchase,
dormancy) scaled from days to seconds, saved and published through the gateway of the
`make run` platform, driven by tracked events; their messages reach a local webhook in the
order and not before the time the journeys say, a purchase stops the welcome series, the
stats count the runs, and the journey service's steps join the trace of the event that
started them."""

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.tracing import new_traceparent
from tests.support.waiting import eventually_sync

SECRET = "e2e-s3cret"
ACTIVE_WINDOW = 4  # seconds without a visit before a person counts as dormant
SLACK = 0.25       # a message may not arrive earlier than its schedule minus this


class Receiver:
    """A local HTTP endpoint standing in for the customer's webhook: it checks each request's
    signature and records (when, profile, template) in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[float, str, str]] = []
        self.bad: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's method name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stamp = self.headers.get("X-Nudge-Timestamp", "")
                expected = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + raw,
                                                hashlib.sha256).hexdigest()
                body = json.loads(raw)
                with receiver.lock:
                    if not hmac.compare_digest(expected, self.headers.get("X-Nudge-Signature", "")):
                        receiver.bad.append(f"bad signature on {body}")
                    receiver.received.append((time.monotonic(), body["profile_id"], body["data"]["template"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> "Receiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, profile_id: str) -> list[tuple[float, str]]:
        with self.lock:
            return [(at, template) for at, p, template in self.received if p == profile_id]


def _send(template: str, next: str | None = None) -> dict:
    return {"kind": "send", "channels": ["webhook"], "template": template, "advertising": False,
            **({"next": next} if next else {})}


def _wait_node(seconds: int, next: str) -> dict:
    return {"kind": "wait", "duration": f"PT{seconds}S", "next": next}


PURCHASE = {"event": "Order Completed"}

# Signed up → welcome now → coupon +2 s → reminder +5 s → review +7 s, unless they buy.
WELCOME = {
    "trigger": {"kind": "event", "event": "Signed Up"},
    "goal": PURCHASE,
    "start": "welcome",
    "nodes": {
        "welcome": _send("jrn-welcome", "to_coupon"),
        "to_coupon": _wait_node(2, "coupon"),
        "coupon": _send("jrn-coupon", "to_reminder"),
        "to_reminder": _wait_node(3, "reminder"),
        "reminder": _send("jrn-reminder", "to_review"),
        "to_review": _wait_node(2, "review"),
        "review": _send("jrn-review", "done"),
        "done": {"kind": "exit"},
    },
}
WELCOME_AT = {"jrn-welcome": 0, "jrn-coupon": 2, "jrn-reminder": 5, "jrn-review": 7}

# A cart of 10,000 or more → +3 s / +5 s / +7 s unless they buy.
CART = {
    "trigger": {"kind": "event", "event": "Product Added",
                "where": [{"property": "price", "op": "gte", "value": 10000}]},
    "goal": PURCHASE,
    "entry": {"mode": "cooldown", "cooldown": "P7D"},
    "start": "to_first",
    "nodes": {
        "to_first": {"kind": "wait_for_event", "event": "Order Completed", "timeout": "PT3S",
                     "next": "bought", "timeout_next": "first"},
        "bought": {"kind": "exit"},
        "first": _send("jrn-cart-1", "to_second"),
        "to_second": _wait_node(2, "second"),
        "second": _send("jrn-cart-2", "to_last"),
        "to_last": _wait_node(2, "last"),
        "last": _send("jrn-cart-3"),
    },
}
CART_AT = {"jrn-cart-1": 3, "jrn-cart-2": 5, "jrn-cart-3": 7}

# Bought → thank-you now → recommendations +2 s → repurchase reminder +5 s.
POST_PURCHASE = {
    "trigger": {"kind": "event", "event": "Order Completed"},
    "entry": {"mode": "every_time"},
    "start": "thanks",
    "nodes": {
        "thanks": _send("jrn-thanks", "to_recommend"),
        "to_recommend": _wait_node(2, "recommend"),
        "recommend": _send("jrn-recommend", "to_repurchase"),
        "to_repurchase": _wait_node(3, "repurchase"),
        "repurchase": _send("jrn-repurchase"),
    },
}
POST_PURCHASE_AT = {"jrn-thanks": 0, "jrn-recommend": 2, "jrn-repurchase": 5}


def dormancy(active_segment: str) -> dict:
    """No visit for ACTIVE_WINDOW seconds (the person left the "recently active" segment) →
    a notice now, a last notice +3 s; a visit ends it."""
    return {
        "trigger": {"kind": "segment_exited", "segment": active_segment},
        "exit_criteria": {"events": [{"event": "App Opened"}]},
        "start": "notice",
        "nodes": {
            "notice": _send("jrn-dormant", "to_last"),
            "to_last": _wait_node(3, "last"),
            "last": _send("jrn-dormant-last"),
        },
    }


DORMANCY_AT = {"jrn-dormant": ACTIVE_WINDOW, "jrn-dormant-last": ACTIVE_WINDOW + 3}
TEMPLATES = [*WELCOME_AT, *CART_AT, *POST_PURCHASE_AT, *DORMANCY_AT]


def test_seed_journeys_on_seconds_deliver_in_order_stop_on_purchase_and_trace_their_steps(platform, otlp_receiver):
    run = secrets.token_hex(4)
    users = {name: f"jrn-{name}-{run}" for name in ("alice", "bob", "carol", "dave", "erin", "frank")}
    journeys: dict[str, str] = {}
    with Receiver() as hook, platform.admin() as admin, platform.tracking() as tracking:

        def ok(reply, status: int = 200):
            assert reply.status_code == status, (reply.request.method, reply.request.url, reply.text)
            return reply.json()

        def track(name: str, event: str, headers: dict | None = None, **properties) -> float:
            ok(tracking.post("/v1/track", headers=headers or {},
                             json={"userId": users[name], "event": event, "properties": properties}))
            return time.monotonic()

        try:
            # -- the people, identified first: their entries are long consumed when they act --
            for name, user in users.items():
                ok(tracking.post("/v1/identify", json={"userId": user, "traits": {"name": name.title()}}))
            profile = {name: eventually_sync(lambda u=user: (admin.get("/v1/profiles", params={"userId": u})
                                                             .json()["profiles"] or [{}])[0].get("id"))
                       for name, user in users.items()}

            # -- the channel, the templates, the "recently active" segment, the journeys --
            ok(admin.put("/v1/channels/webhook", json={"provider": "webhook", "config": {
                "url": hook.url, "secret": SECRET, "allowed_hosts": ["127.0.0.1"]}}))
            for name in TEMPLATES:
                ok(admin.put(f"/v1/templates/{name}", json={
                    "name": name, "channels": {"webhook": {"body": {"template": name}}}}))
            active = ok(admin.post("/v1/segments", json={"name": f"active {run}", "rules": {
                "event": "App Opened", "count": {"op": "gte", "value": 1}, "within": f"PT{ACTIVE_WINDOW}S"}}),
                201)["id"]
            eventually_sync(lambda: admin.get(f"/v1/segments/{active}").json()["backfill"]["state"] == "done")
            for key, definition in (("welcome", WELCOME), ("cart", CART), ("post_purchase", POST_PURCHASE),
                                    ("dormancy", dormancy(active))):
                created = ok(admin.post("/v1/journeys", json={"name": f"{key} {run}", "definition": definition}),
                             201)
                assert created["status"] == "draft", created
                published = ok(admin.post(f"/v1/journeys/{created['id']}/publish"))
                assert (published["status"], published["version"]) == ("published", 1), published
                journeys[key] = created["id"]

            # -- what they do --
            # Bob's sign-up, traced, goes alone: a run keeps the trace of the active span when it
            # enters (services/journey/service.py, _enter), which for entries the consumer reads
            # in a batch is the batch's own span, not the event's.
            trace_id, traceparent = new_traceparent()
            start = {"bob": track("bob", "Signed Up", headers={"traceparent": traceparent})}
            eventually_sync(lambda: hook.of(profile["bob"]), timeout=15)
            track("bob", "Product Added", price=5000)  # below the cart's threshold: no cart journey
            start["alice"] = track("alice", "Signed Up")
            start["carol"] = track("carol", "Product Added", price=25000)
            start["dave"] = track("dave", "Product Added", price=30000)
            bought = {"dave": track("dave", "Order Completed", revenue=30000)}
            start["erin"] = track("erin", "App Opened")
            start["frank"] = track("frank", "App Opened")

            # Alice buys once the coupon is in, before the reminder (+3 s later) is due.
            eventually_sync(lambda: [t for _, t in hook.of(profile["alice"])] == ["jrn-welcome", "jrn-coupon"],
                            timeout=15, show=lambda: hook.of(profile["alice"]))
            bought["alice"] = track("alice", "Order Completed", revenue=42000)
            # Frank comes back after the first dormancy notice: the journey ends for him.
            eventually_sync(lambda: [t for _, t in hook.of(profile["frank"])] == ["jrn-dormant"], timeout=20,
                            show=lambda: hook.of(profile["frank"]))
            visited = track("frank", "App Opened")

            expected = {
                "alice": ["jrn-welcome", "jrn-coupon", *POST_PURCHASE_AT],
                "bob": list(WELCOME_AT),
                "carol": list(CART_AT),
                "dave": list(POST_PURCHASE_AT),
                "erin": list(DORMANCY_AT),
                "frank": ["jrn-dormant"],
            }

            def arrived() -> dict[str, list[str]]:
                return {name: [t for _, t in hook.of(profile[name])] for name in users}

            eventually_sync(lambda: all(arrived()[n][:len(e)] == e for n, e in expected.items()), timeout=30,
                            show=lambda: f"expected {expected}, arrived {arrived()}")
            # Quiet afterwards: the welcome's reminder and review Alice would have had (due
            # +5 s and +7 s), Frank's last notice (+3 s after his first) and anything else.
            quiet_until = max(start["alice"] + WELCOME_AT["jrn-review"], visited + 3) + 2
            time.sleep(max(0.0, quiet_until - time.monotonic()))
            assert arrived() == expected
            assert not hook.bad, hook.bad

            # Not before its time: each message no earlier than its schedule from its trigger.
            schedule = {"bob": (start["bob"], WELCOME_AT), "carol": (start["carol"], CART_AT),
                        "dave": (bought["dave"], POST_PURCHASE_AT), "erin": (start["erin"], DORMANCY_AT)}
            for name, (origin, offsets) in schedule.items():
                for at, template in hook.of(profile[name]):
                    assert at - origin >= offsets[template] - SLACK, (name, template, at - origin)
            alice = dict((t, at) for at, t in hook.of(profile["alice"]))
            assert alice["jrn-coupon"] - start["alice"] >= WELCOME_AT["jrn-coupon"] - SLACK
            assert alice["jrn-recommend"] - bought["alice"] >= POST_PURCHASE_AT["jrn-recommend"] - SLACK
            assert alice["jrn-repurchase"] - bought["alice"] >= POST_PURCHASE_AT["jrn-repurchase"] - SLACK

            # -- the stats count the runs --
            def counts(key: str) -> dict:
                stats = ok(admin.get(f"/v1/journeys/{journeys[key]}/stats"))
                assert stats["journeyId"] == journeys[key]
                return {k: stats[k] for k in ("entered", "active", "converted", "exited", "completed")}

            want = {"welcome": dict(entered=2, active=0, converted=1, exited=0, completed=1),  # alice, bob
                    "cart": dict(entered=2, active=0, converted=1, exited=0, completed=1),     # dave, carol
                    "post_purchase": dict(entered=2, active=0, converted=0, exited=0, completed=2),
                    "dormancy": dict(entered=2, active=0, converted=0, exited=1, completed=1)}  # frank, erin
            assert {key: counts(key) for key in want} == want
            runs = ok(admin.get(f"/v1/profiles/{profile['alice']}/journey-runs",
                                params={"journeyId": journeys["welcome"]}))["runs"]
            assert [(r["status"], r["nodeId"]) for r in runs] == [("converted", "to_reminder")], runs
        finally:
            for journey_id in journeys.values():  # no entries from the other tests' events
                admin.post(f"/v1/journeys/{journey_id}/archive")

    # -- Bob's sign-up trace: gateway → profile → journey (its steps) → dispatch --
    def ours(spans):
        return [s for s in spans if s.trace_id == trace_id]

    wanted = {"gateway", "profile", "journey", "dispatch"}
    spans = ours(otlp_receiver.wait_for(
        lambda spans: wanted <= {s.service for s in ours(spans)}
        and any(s.name == "journey.step" for s in ours(spans) if s.service == "journey"), timeout=30))
    assert wanted <= {s.service for s in spans}, sorted({(s.service, s.name) for s in spans})
    # the sends run inside the steps: dispatch's spans descend from a journey.step span
    by_id = {s.span_id: s for s in spans}

    def under_a_step(span) -> bool:
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            if span.service == "journey" and span.name == "journey.step":
                return True
        return False

    assert any(under_a_step(s) for s in spans if s.service == "dispatch"), sorted(
        {(s.service, s.name) for s in spans})
