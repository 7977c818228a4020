"""Configuration checked at save as it will be used at every send: a webhook URL the SSRF
guard would refuse, the sending policy changed by a JSON merge patch."""

from starlette.responses import RedirectResponse

from tests.dispatch.test_send_pipeline import (receiver, person, send,  # noqa: F401 (receiver: a fixture)
                                               setup)


async def test_a_webhook_url_the_send_would_refuse_is_refused_at_save_naming_the_url(workspace, receiver):
    # 127.0.0.1 is allowed, but the URL names localhost: every send would be refused, so the save is.
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
    """A redirect to an internal name is refused at the send (it cannot be known at save);
    the send's reason names the channel once, not "webhook: webhook: refused"."""
    async def to_internal(request):
        return RedirectResponse(f"http://localhost:{receiver.port}/hook", status_code=307)
    receiver.handle = to_internal
    profile = await person(workspace, "redirected")
    await setup(workspace, {"webhook": {"body": {"text": "hi"}}}, {"webhook": ("webhook", {
        "url": receiver.url, "secret": "s3cret", "allowed_hosts": ["127.0.0.1"]})})
    delivery = await send(workspace, profile, ["webhook"])
    assert delivery["status"] == "failed" and delivery["rule"] == "no_channel"
    assert delivery["reason"].startswith("webhook: refused: localhost resolves to a non-public address")
    assert "webhook: webhook" not in delivery["reason"]
