"""Stopping `make run`: the supervisor sends SIGTERM to each component, and each one (the
gateway and the five services) drains and exits with code 0 within the supervisor's grace,
logging "drained" last. A send in flight at a provider that does not answer is cut off by the
dispatch drain and recorded (unknown outcome), and its caller gets that answer."""

import json
import socketserver
import tempfile
import threading
import uuid
from pathlib import Path

import httpx

from tests.support.waiting import eventually_sync

COMPONENTS = ("profile", "segment", "dispatch", "journey", "metrics", "gateway")


class Stalling(socketserver.ThreadingTCPServer):
    """A provider that takes the request and never answers (until the test ends)."""
    daemon_threads = True

    def __init__(self) -> None:
        self.got_request, self.done = threading.Event(), threading.Event()

        class Handler(socketserver.BaseRequestHandler):
            def handle(handler) -> None:
                handler.request.recv(65536)
                self.got_request.set()
                self.done.wait(120)
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.done.set()
        self.shutdown()
        self.server_close()


def test_every_component_drains_and_exits_cleanly_on_sigterm_with_a_send_in_flight(launcher_factory):
    provider = Stalling()
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-stop-", dir="/tmp", ignore_cleanup_errors=True) as data_dir:
        # The provider's own deadline is far away: only the drain can end this send.
        launcher = launcher_factory(Path(data_dir), env={"NUDGE_PROVIDER_TIMEOUT_SECONDS": "60"}).start()
        try:
            answer: dict = {}
            with launcher.admin() as admin, launcher.tracking() as tracking:
                user = f"stop-{uuid.uuid4().hex[:8]}"
                assert tracking.post("/v1/identify", json={"userId": user, "traits": {
                    "phone": "010-1234-5678"}}).status_code == 200
                profiles = eventually_sync(
                    lambda: admin.get("/v1/profiles", params={"userId": user}).json()["profiles"], interval=0.1)
                assert admin.put("/v1/templates/shipped", json={"channels": {"sms": {
                    "text": "주문하신 상품이 발송되었습니다."}}}).status_code == 200
                assert admin.put("/v1/channels/sms", json={"provider": "nhn_sms", "config": {
                    "app_key": "app", "secret_key": "secret", "send_no": "1588-0000", "endpoint": provider.url,
                    "timeout_seconds": 60}}).status_code == 200

                def send() -> None:
                    with httpx.Client(base_url=launcher.url, timeout=60,
                                      headers={"Authorization": f"Bearer {launcher.admin_key}"}) as client:
                        reply = client.post("/v1/messages", headers={"Idempotency-Key": f"stop-{user}"}, json={
                            "profileId": profiles[0]["id"], "channels": ["sms"], "templateId": "shipped"})
                        answer.update(status_code=reply.status_code, body=reply.text)
                sender = threading.Thread(target=send)
                sender.start()
                assert provider.got_request.wait(30), launcher.log_tail()

                assert launcher.stop() == 0  # SIGINT to the supervisor: it sends SIGTERM to each component
                sender.join(60)
        finally:
            provider.close()
    output = list(launcher.output)
    for name in COMPONENTS:
        assert f"{name} stopped with exit code 0" in output, launcher.log_tail()
    drained = set()
    for line in output:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "drained":
            assert entry["exit_code"] == 0
            drained.add(entry.get("service"))
    assert drained == set(COMPONENTS), launcher.log_tail()
    # The send at the stalled provider was recorded by the drain, and its caller got that answer.
    assert answer.get("status_code") == 200, answer
    delivery = json.loads(answer["body"])
    assert delivery["status"] == "failed" and delivery["rule"] == "unknown_outcome"
    assert "stopped" in delivery["reason"]
