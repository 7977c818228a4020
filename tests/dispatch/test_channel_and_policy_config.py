"""Configuration checked at save as it will be used at every send: a webhook URL outside the
workspace's `allowed_hosts`, the sending policy changed by a JSON merge patch. (Internal
addresses, which only the operator can allow, are in test_egress.py.)"""

import asyncio

import orjson
from starlette.responses import RedirectResponse

from tests.support.api import person, send, setup


async def test_a_webhook_url_the_send_would_refuse_is_refused_at_save_naming_the_url(workspace, receiver):
    # The workspace narrows its webhooks to 127.0.0.1, but the URL names localhost: every send
    # would be refused, so the save is.
    url = f"http://localhost:{receiver.port}/hook"
    response = await workspace.admin.put("/v1/channels/webhook", json={"provider": "webhook", "config": {
        "url": url, "secret": "s3cret", "allowed_hosts": ["127.0.0.1"]}})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "config.url"
    assert "localhost" in error["message"] and "allowed_hosts" in error["message"]
    assert (await workspace.admin.get("/v1/channels")).json()["channels"] == []  # nothing saved

    # Allowing the host as the URL writes it is what the send checks too: saved, and it sends.
    profile = await person(workspace, "hooked")
    await setup(workspace, {"webhook": {"body": {"text": "hi"}}}, {"webhook": ("webhook", {
        "url": url, "secret": "s3cret", "allowed_hosts": ["localhost"]})})
    assert (await send(workspace, profile, ["webhook"]))["status"] == "sent"
    assert len(receiver.requests) == 1


async def test_a_webhook_refused_at_send_says_webhook_once(workspace, receiver):
    """A redirect outside allowed_hosts is refused at the send (it cannot be known at save);
    the send's reason names the channel once, not "webhook: webhook: egress refused"."""
    async def to_internal(request):
        return RedirectResponse(f"http://localhost:{receiver.port}/hook", status_code=307)
    receiver.handle = to_internal
    profile = await person(workspace, "redirected")
    await setup(workspace, {"webhook": {"body": {"text": "hi"}}}, {"webhook": ("webhook", {
        "url": receiver.url, "secret": "s3cret", "allowed_hosts": ["127.0.0.1"]})})
    delivery = await send(workspace, profile, ["webhook"])
    assert delivery["status"] == "failed" and delivery["rule"] == "no_channel"
    assert delivery["reason"] == "webhook: egress refused: localhost is not in config.allowed_hosts"
    assert "webhook: webhook" not in delivery["reason"]


async def test_the_policy_is_changed_in_part_by_a_json_merge_patch_checked_like_a_whole_one(workspace):
    policy = {"fatigue": {"rules": [{"kind": "channel", "limit": 2, "window": "day"}]},
              "quiet_hours": {"start": "22:00", "end": "08:00"}, "sender_name": "Shop",
              "opt_out_phone": "080-000-0000", "utm": {"source": "nudge", "medium": "sms"}}
    assert (await workspace.admin.put("/v1/dispatch-policy", json=policy)).status_code == 200
    patch = {"quiet_hours": None, "sender_name": "Shop KR", "utm": {"medium": None, "campaign": "spring"}}
    response = await workspace.admin.patch("/v1/dispatch-policy", content=orjson.dumps(patch),
                                           headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    expected = {"fatigue": policy["fatigue"], "sender_name": "Shop KR", "opt_out_phone": "080-000-0000",
                "utm": {"source": "nudge", "campaign": "spring"}}
    assert response.json() == expected
    assert (await workspace.admin.get("/v1/dispatch-policy")).json() == expected

    # application/json is a merge patch too; a result the PUT would refuse is refused, and nothing changes
    bad = await workspace.admin.patch("/v1/dispatch-policy", json={"fatigue": {"rules": [{"kind": "daily"}]}})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "policy.fatigue.rules[0].kind"
    bad = await workspace.admin.patch("/v1/dispatch-policy", json={"quiet_hours": {"start": "25:00"}})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"].startswith("policy.quiet_hours")
    bad = await workspace.admin.patch("/v1/dispatch-policy", json={"colour": "red"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "policy.colour"
    assert (await workspace.admin.get("/v1/dispatch-policy")).json() == expected
    response = await workspace.admin.patch("/v1/dispatch-policy", json={"opt_out_app": "설정 > 알림 끄기"})
    assert response.status_code == 200 and response.json() == {**expected, "opt_out_app": "설정 > 알림 끄기"}

    # not a JSON object, or another content type
    bad = await workspace.admin.patch("/v1/dispatch-policy", content=b"[1]",
                                      headers={"Content-Type": "application/merge-patch+json"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "body"
    bad = await workspace.admin.patch("/v1/dispatch-policy", content=b"{}", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 415


async def test_concurrent_patches_of_the_policy_both_apply(workspace):
    assert (await workspace.admin.put("/v1/dispatch-policy", json={})).status_code == 200
    names = ("sender_name", "opt_out_phone", "opt_out_app", "unsubscribe_url")
    answers = await asyncio.gather(*[workspace.admin.patch("/v1/dispatch-policy", json={name: f"value of {name}"})
                                     for name in names])
    assert [a.status_code for a in answers] == [200] * len(names)
    assert (await workspace.admin.get("/v1/dispatch-policy")).json() == {n: f"value of {n}" for n in names}


async def test_the_api_documents_the_policy_patch_and_the_provider_rate_limit(workspace):
    document = (await workspace.admin.get("/openapi.json")).json()
    patch = document["paths"]["/v1/dispatch-policy"]["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/merge-patch+json", "application/json"}
    config = document["components"]["schemas"]["ChannelConfigIn"]["properties"]["config"]["description"]
    assert "rate_per_second" in config and "burst" in config
