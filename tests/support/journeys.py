"""Journey helpers: templates on a local webhook receiver, journeys saved and published
through the gateway, events tracked, what arrived; journey definitions the tests share; the
simulator's workspace, person and reading of its schedule."""

from datetime import datetime

from tests.support.api import create_segment
from tests.support.channels import AD_POLICY, KAKAO_CONFIG, KST, SMS_CONFIG
from tests.support.receiver import Receiver, webhook_config


async def templates(ws, hook: Receiver, *names: str) -> None:
    """One webhook template per name; each message's body says which template it was."""
    response = await ws.admin.put("/v1/channels/webhook", json={"provider": "webhook",
                                                                 "config": webhook_config(hook)})
    assert response.status_code == 200, response.text
    for name in names:
        response = await ws.admin.put(f"/v1/templates/{name}", json={
            "name": name, "channels": {"webhook": {"body": {"template": name, "run": "{{ journey.run_id }}",
                                                         "variant": "{{ journey.variant }}"}}}})
        assert response.status_code == 200, response.text


async def publish(ws, definition: dict, journey_id: str = "") -> dict:
    response = await ws.admin.post("/v1/journeys", json={"name": "test journey", "definition": definition,
                                                         **({"id": journey_id} if journey_id else {})})
    assert response.status_code == 201, response.text
    journey = response.json()
    response = await ws.admin.post(f"/v1/journeys/{journey['id']}/publish")
    assert response.status_code == 200, response.text
    return response.json()


async def track(ws, user: str, event: str, **properties) -> None:
    response = await ws.tracking.post("/v1/track", json={"userId": user, "event": event, "properties": properties})
    assert response.status_code == 200, response.text


def received(hook: Receiver) -> list[str]:
    return [r["body"]["data"]["template"] for r in hook.requests]


async def stats_once_ended(ws, journey_id: str) -> dict | None:
    """The journey's stats once no run is active (a run's last send goes out just before
    its end commits)."""
    stats = (await ws.admin.get(f"/v1/journeys/{journey_id}/stats")).json()
    return stats if stats["active"] == 0 else None


# ---- journey definitions --------------------------------------------------------------------------

def send(template, *channels, advertising=True, next=None):
    """A send node."""
    node = {"kind": "send", "channels": list(channels), "template": template, "advertising": advertising}
    return node | ({"next": next} if next else {})


def wait(duration, next):
    """A wait node."""
    return {"kind": "wait", "duration": duration, "next": next}


def welcome(next_days: int = 2) -> dict:
    """Signed Up → the webhook template "welcome" now, "coupon" `next_days` later; goal Order Completed."""
    return {
        "trigger": {"kind": "event", "event": "Signed Up"},
        "goal": {"event": "Order Completed"},
        "start": "welcome",
        "nodes": {
            "welcome": {"kind": "send", "channels": ["webhook"], "template": "welcome", "advertising": False,
                        "next": "later"},
            "later": {"kind": "wait", "duration": f"P{next_days}D", "next": "coupon"},
            "coupon": {"kind": "send", "channels": ["webhook"], "template": "coupon", "advertising": False},
        },
    }


# ---- the simulator ---------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=KST)  # a Monday morning in Seoul
TEXT = {"sms": {"text": "{{ profile.name }}님 소식"}, "email": {"subject": "소식", "text": "{{ profile.name }}님 소식"},
        "push": {"title": "소식", "body": "{{ profile.name }}님 소식"},
        "alimtalk": {"template_code": "NEWS", "variables": {"name": "{{ profile.name }}"}},
        "friendtalk": {"text": "{{ profile.name }}님 소식"}}
KIM = {"traits": {"name": "김민수", "phone": "010-1234-5678", "email": "kim@example.kr", "timezone": "Asia/Seoul",
                  "birthday": "1990-03-05"},
       "identities": {"device_token": ["fcm-token-1"]},
       "consents": {p: {"granted": True} for p in ("channel:kakao", "channel:sms", "channel:email", "channel:push",
                                                    "advertising")}}


async def workspace_ready(ws, policy: dict | None = None) -> str:
    """Channels, every starter's templates (by their slot names) and the dormancy segment; its id."""
    from services.journey.starters import STARTERS  # the starter library's template slots
    for channel, (provider, config) in {
            "sms": ("nhn_sms", {**SMS_CONFIG, "endpoint": "http://127.0.0.1:9/never-called"}),
            "alimtalk": ("nhn_kakao", {**KAKAO_CONFIG, "endpoint": "http://127.0.0.1:9/never-called"}),
            "friendtalk": ("nhn_kakao", {**KAKAO_CONFIG, "endpoint": "http://127.0.0.1:9/never-called"}),
            "email": ("smtp", {"host": "127.0.0.1", "port": 9, "sender": "shop <news@shop.kr>"}),
            "push": ("fcm", {"project_id": "p", "access_token": "t", "endpoint": "http://127.0.0.1:9/never-called"}),
    }.items():
        response = await ws.admin.put(f"/v1/channels/{channel}", json={"provider": provider, "config": config})
        assert response.status_code == 200, response.text
    for template_id in {slot for starter in STARTERS.values() for slot in starter.templates}:
        response = await ws.admin.put(f"/v1/templates/{template_id}", json={"name": template_id, "channels": TEXT})
        assert response.status_code == 200, response.text
    response = await ws.admin.put("/v1/dispatch-policy", json={**AD_POLICY, **(policy or {})})
    assert response.status_code == 200, response.text
    return await create_segment(ws, "no visit for 265 days", {"last_seen": {"op": "more_than", "ago": "P265D"}})


async def simulate(ws, definition: dict, timeline: list[tuple[str, datetime, dict]], person: dict = KIM,
                   start: datetime = T0, until: datetime | None = None) -> dict:
    """A simulator run through the gateway; its answer."""
    body = {"definition": definition, "profile": person, "startAt": start.isoformat(),
            "timeline": [{"event": e, "at": at.isoformat(), "properties": p} for e, at, p in timeline],
            **({"until": until.isoformat()} if until else {})}
    response = await ws.admin.post("/v1/journeys/simulate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def sends(result: dict, start: datetime = T0) -> list[tuple]:
    """(days after start, hour in Seoul, template, channel, outcome) of every send step."""
    return [((at := datetime.fromisoformat(s["at"]).astimezone(KST)).date().toordinal() - start.date().toordinal(),
             at.strftime("%H:%M"), s["templateId"], s["channel"], s["outcome"])
            for s in result["steps"] if s["kind"] == "send"]


def days(result: dict, start: datetime = T0) -> list[tuple[int, str]]:
    """(D+N, template) of every send step."""
    return [(day, template) for day, _, template, _, _ in sends(result, start)]
