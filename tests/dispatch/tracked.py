"""The tracked URLs a message carries, as the dispatch service under test signs them: tokens
are deterministic (workspace, delivery, link id or kind), so tests can expect exact URLs."""


def click_url(platform, workspace_id: str, delivery_id: str, link_id: int) -> str:
    return f"{platform.settings.tracking_base_url}/t/c/" \
           f"{platform.service.tokens.click(workspace_id, delivery_id, link_id)}"


def open_url(platform, workspace_id: str, delivery_id: str) -> str:
    return f"{platform.settings.tracking_base_url}/t/o/{platform.service.tokens.open(workspace_id, delivery_id)}"


def unsubscribe_url(platform, workspace_id: str, delivery_id: str, category: str) -> str:
    return f"{platform.settings.tracking_base_url}/u/" \
           f"{platform.service.tokens.unsubscribe(workspace_id, delivery_id, category)}"


def path_of(url: str) -> str:
    """/t/c/<token> of a tracked URL: tests follow it on the gateway they run."""
    return "/" + url.split("/", 3)[3]
