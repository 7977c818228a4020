"""Dispatch as a production operator runs it: no internal address allowed but one."""

import httpx
import pytest

from tests.support.gateway import own_gateway
from tests.support.receiver import serving_receiver


class Guarded:
    """A second dispatch replica on the run's dispatch database whose operator allows no
    internal address but the `partner` endpoint (127.0.0.1 on its port: where a redirect
    starts), and a gateway in front of it at `url`. A channel saved through the main gateway,
    whose operator allows all of loopback, is sent through this one as a deployment that
    narrowed its allowance later would."""

    def __init__(self, url: str, partner) -> None:
        self.url, self.partner = url, partner

    def clients(self, workspace) -> "Through":
        return Through(self.url, workspace)


class Through:
    """A workspace's tracking and admin clients on the guarded gateway (the calls of
    tests.support.api take it as they take the `workspace` fixture)."""

    def __init__(self, url: str, workspace) -> None:
        self.id = workspace.id
        self.tracking = httpx.AsyncClient(base_url=url, auth=(workspace.write_key, ""), timeout=30)
        self.admin = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {workspace.admin_key}"},
                                       timeout=30)

    async def aclose(self) -> None:
        await self.tracking.aclose()
        await self.admin.aclose()


@pytest.fixture(scope="module")
async def guarded(dispatch_platform, gateway_settings, gateway_url):
    from kit.runtime import open_runtime
    from services.dispatch.__main__ import build as build_dispatch

    async with serving_receiver() as partner:
        settings = dispatch_platform.settings.model_copy(update={"egress_allow": f"127.0.0.1:{partner.port}"})
        runtime = await open_runtime("dispatch", settings, None, setup_observability=False)
        server, service, loops = build_dispatch(runtime, settings)
        for loop in loops:
            loop.close()  # the run's replica runs the deferred sends, the consumer and the relay
        port = await server.start(0, host="127.0.0.1")
        gateway = gateway_settings.model_copy(update={"dispatch_addr": f"127.0.0.1:{port}"})
        async with own_gateway(gateway) as client:
            yield Guarded(str(client.base_url).rstrip("/"), partner)
        await server.stop(0)
        await service.http.aclose()
        await service.profiles.close()
        await service.journeys.close()
        await runtime.close()


@pytest.fixture
async def through(guarded, workspace):
    """The test's workspace on the guarded gateway."""
    clients = guarded.clients(workspace)
    yield clients
    await clients.aclose()
