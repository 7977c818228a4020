"""Engagement facts: what a click, open, unsubscribe or in-app impression records, and
whether a machine rather than the person did it. Pure."""

from dataclasses import dataclass
from datetime import datetime

from kit.payloads import Engagement
from services.dispatch.links import utm_of

# User agents of the proxies and scanners that fetch images and follow links before (or
# instead of) the person: mail privacy proxies load every pixel, security gateways open every
# link. Matched case-insensitively as substrings; the one list of them.
MACHINE_AGENTS = (
    "GoogleImageProxy",            # Gmail's image proxy (ggpht.com)
    "YahooMailProxy",              # Yahoo and AOL mail
    "Safelinks",                   # Microsoft Defender for Office 365 Safe Links
    "Microsoft Office Protocol Discovery",
    "BingPreview",                 # Outlook.com link previews
    "Barracuda",
    "Proofpoint",
    "Mimecast",
    "python-requests", "curl/", "Go-http-client", "HeadlessChrome",
)
# Apple Mail Privacy Protection fetches through Apple's proxies with this bare WebKit
# agent (no "Version/… Safari" part that a real Mail or Safari sends).
APPLE_PRIVACY_PROXY = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_MACHINE_LOWER = tuple(agent.lower() for agent in MACHINE_AGENTS)


def is_machine(user_agent: str) -> bool:
    """A known prefetcher or scanner; no user agent at all is one too (browsers always send it)."""
    agent = user_agent.strip()
    return not agent or agent in (APPLE_PRIVACY_PROXY, "Mozilla/5.0") or \
        any(marker in agent.lower() for marker in _MACHINE_LOWER)


@dataclass(frozen=True)
class Fact:
    """One recorded engagement with a delivery."""
    id: str                  # the fact id: the request id when the caller gave one
    kind: str                # clicked | opened | unsubscribed | impression | inapp_clicked
    at: datetime
    link_id: int | None = None
    url: str | None = None   # the original URL (UTM applied) of the link
    machine: bool = False
    category: str = ""       # unsubscribe: the channel, or "advertising"
    user_agent: str = ""
    ip: str = ""


def announcement(fact: Fact, delivery) -> Engagement:
    """The stream entry of a fact about `delivery` (its row: channel and the send request)."""
    request = delivery.request
    return Engagement(fact.kind, fact.id, delivery.id, delivery.channel, request["template_id"], request["journey_id"],
                      request.get("journey_version", 0), request["node_id"], request.get("variant", ""),
                      fact.link_id, fact.url, utm_of(fact.url) if fact.url else {}, fact.machine, fact.category,
                      fact.at)
