"""Tracked links: every http(s) URL a message carries is replaced by
`{base}/t/c/{token}`, the original (with the workspace's UTM parameters) kept with the
delivery, its index in that list being the link id. Email also gets an open pixel
(`{base}/t/o/{token}`) and one-click unsubscribe links (`{base}/u/{token}`). Pure.
"""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from kit.errors import InvalidArgument
from services.dispatch.tokens import Tokens

UTM_FIELDS = ("source", "medium", "campaign", "content")
DEFAULT_SOURCE = "nudge"

_HTTP = re.compile(r"https?://[^\s/?#]", re.IGNORECASE)
# A URL in plain text ends at whitespace or any character a URL cannot hold unescaped
# (Hangul right after a link, as in "https://shop.kr/p/7에서", is not part of it).
_TEXT_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\""  # sentence punctuation right after a link
_ANCHOR = re.compile(r"<(?:a|area)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.IGNORECASE)
_HREF = re.compile(r"(\shref\s*=\s*)(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+))", re.IGNORECASE)


def utm_for(policy_utm: dict, channel: str, journey_id: str, node_id: str) -> dict[str, str]:
    """The UTM parameters of a send: the policy's, else source nudge, medium the channel,
    campaign the journey (or "direct"), content the journey node (none outside a journey)."""
    defaults = {"source": DEFAULT_SOURCE, "medium": channel, "campaign": journey_id or "direct",
                "content": node_id}
    return {name: value for name in UTM_FIELDS if (value := policy_utm.get(name) or defaults[name])}


def check_utm(value, path: str = "policy.utm") -> None:
    """A policy's UTM parameters: {"source"?, "medium"?, "campaign"?, "content"?}, strings."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{path}: expected an object with {', '.join(UTM_FIELDS)}", field=path)
    for name, given in value.items():
        if name not in UTM_FIELDS:
            raise InvalidArgument(f"{path}.{name}: not a UTM parameter; expected {', '.join(UTM_FIELDS)}",
                                  field=f"{path}.{name}")
        if not isinstance(given, str) or len(given) > 200:
            raise InvalidArgument(f"{path}.{name}: expected a string of at most 200 characters",
                                  field=f"{path}.{name}")


def with_utm(url: str, utm: dict[str, str]) -> str:
    """`url` with utm_<name> parameters added, unless it already carries any utm_ parameter
    (the author chose them). The rest of the URL is kept byte for byte."""
    if not utm or any(k.lower().startswith("utm_") for k, _ in parse_qsl(urlsplit(url).query,
                                                                          keep_blank_values=True)):
        return url
    base, hash_, fragment = url.partition("#")
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({f'utm_{k}': v for k, v in utm.items()})}{hash_}{fragment}"


def utm_of(url: str) -> dict[str, str]:
    """The utm_ parameters of a URL, without the prefix: {"source": ..., "medium": ...}."""
    return {k[4:].lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)
            if k.lower().startswith("utm_") and len(k) > 4}


def is_trackable(url: str) -> bool:
    """Only absolute web URLs are tracked; mailto:, tel:, app links and relative ones stay."""
    return bool(_HTTP.match(url.strip()))


def rewrite_text(text: str, link: Callable[[str], str]) -> str:
    def replace(match: re.Match) -> str:
        url = end = match.group(0)
        # Punctuation ending the sentence, and a ")" closing the sentence's own bracket as in
        # "(see https://shop.kr/a)", are not part of the link.
        while end and (end[-1] in _TRAILING or (end[-1] == ")" and end.count("(") < end.count(")"))):
            end = end[:-1]
        return link(end) + url[len(end):]
    return _TEXT_URL.sub(replace, text)


def rewrite_html(document: str, link: Callable[[str], str]) -> str:
    """The href of every <a> and <area>; stylesheets, images and scripts are left alone."""
    def attribute(match: re.Match) -> str:
        value = next(group for group in match.groups()[1:] if group is not None)
        url = html.unescape(value)  # autoescaping made & into &amp;
        if not is_trackable(url):
            return match.group(0)
        return f'{match.group(1)}"{html.escape(link(url))}"'
    return _ANCHOR.sub(lambda tag: _HREF.sub(attribute, tag.group(0), count=1), document)


@dataclass(frozen=True)
class Tracking:
    """What rendering one channel needs: `link` maps an original URL to its tracked one,
    `open_url` is the open pixel's, `unsubscribe_url` the one-click unsubscribe (None: this
    message offers none)."""
    link: Callable[[str], str]
    open_url: str
    unsubscribe_url: str | None


class Links:
    """The tracked links of one delivery. `urls` starts as what the delivery already holds
    (a resumed send) and grows as channels are rendered, so a link id never changes meaning:
    the same URL, even rendered again for a fallback channel, keeps its id."""

    def __init__(self, tokens: Tokens, base_url: str, workspace_id: str, delivery_id: str,
                 urls: list[str]) -> None:
        self.tokens, self.base = tokens, base_url.rstrip("/")
        self.workspace_id, self.delivery_id = workspace_id, delivery_id
        self.urls = list(urls)

    def tracking(self, utm: dict[str, str], unsubscribe: str | None) -> Tracking:
        """For one channel: its UTM parameters, and the category an unsubscribe withdraws."""
        def link(url: str) -> str:
            if not is_trackable(url):
                return url
            original = with_utm(url.strip(), utm)
            if original not in self.urls:
                self.urls.append(original)
            token = self.tokens.click(self.workspace_id, self.delivery_id, self.urls.index(original))
            return f"{self.base}/t/c/{token}"

        opened = f"{self.base}/t/o/{self.tokens.open(self.workspace_id, self.delivery_id)}"
        unsubscribe_url = None if unsubscribe is None else \
            f"{self.base}/u/{self.tokens.unsubscribe(self.workspace_id, self.delivery_id, unsubscribe)}"
        return Tracking(link, opened, unsubscribe_url)
