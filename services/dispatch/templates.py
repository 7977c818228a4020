"""Message templates: per-channel fields checked when saved, rendered per send in a sandbox.

Rendering adds what 정보통신망법 article 50 asks of advertising: "(광고)" where the message
starts, the sender's name, and a free way to refuse at the end; informational messages get
neither. Given a `Tracking` (links.py), the message's links become tracked ones. SMS / LMS /
MMS is decided on the final text's length in EUC-KR bytes. Pure."""

from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from typing import Any, Iterator

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import missing
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from kit.errors import InvalidArgument
from services.dispatch import links, timing
from services.dispatch.channels import (ALIMTALK, EMAIL, FRIENDTALK, INAPP, PUSH, SMS, WEBHOOK, WEBPUSH,
                                        Content)
from services.dispatch.links import Tracking

NAMESPACES = ("profile", "event", "journey")
MAX_TEMPLATE_CHARS = 100_000  # Gmail clips messages over 102 KB: no channel needs more
MAX_OUTPUT_CHARS = 200_000    # per rendered string; loops over profile data stay bounded
SMS_BYTES, LMS_BYTES = 90, 2_000
MAX_BUTTONS, MAX_MEDIA = 5, 3  # Kakao shows at most 5 buttons; carriers take at most 3 MMS images
AD_PREFIX, OPT_OUT_SMS = "(광고)", "무료수신거부"
# How to turn advertising notifications off, shown on advertising push, web push and in-app
# messages unless the workspace's policy names its own path (policy.opt_out_app).
OPT_OUT_APP = "수신거부: 앱 설정 > 알림"

# Field kinds. text: one template string; json: object whose string leaves are templates;
# urls / buttons / variables: structured, with template strings inside; code: a fixed string.
TEXT, JSON, URLS, BUTTONS, VARIABLES, CODE = "text", "json", "urls", "buttons", "variables", "code"
_NOTICE = {"title": (TEXT, True), "body": (TEXT, True), "url": (TEXT, False)}
FIELDS: dict[str, dict[str, tuple[str, bool]]] = {  # channel → field → (kind, required)
    EMAIL: {"subject": (TEXT, True), "text": (TEXT, True), "html": (TEXT, False)},
    SMS: {"text": (TEXT, True), "title": (TEXT, False), "media_urls": (URLS, False)},
    ALIMTALK: {"template_code": (CODE, True), "variables": (VARIABLES, True), "buttons": (BUTTONS, False)},
    FRIENDTALK: {"text": (TEXT, True), "buttons": (BUTTONS, False), "image_url": (TEXT, False)},
    PUSH: {**_NOTICE, "data": (JSON, False)},
    WEBPUSH: _NOTICE,
    INAPP: _NOTICE,
    WEBHOOK: {"body": (JSON, True)},
}


class RenderError(Exception):
    """A template that cannot be rendered for this person: `variable` is the missing one,
    else `reason` says what went wrong (unsafe access, too long, no opt-out number…)."""

    def __init__(self, field: str, variable: str | None = None, reason: str | None = None) -> None:
        self.field, self.variable = field, variable
        self.reason = reason or f"variable {variable!r} is missing"
        super().__init__(f"{field}: {self.reason}")


# -- helpers templates may call -----------------------------------------------------------
def comma(value: Any) -> str:
    """39000 → "39,000" (numbers may arrive as JSON strings)."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite() or abs(number.adjusted()) > 30:  # "1e999999999" from a profile must stay text
        return str(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}".rstrip("0").rstrip(".")


def won(value: Any) -> str:
    return f"{comma(value)}원"


HELPERS = {"comma": comma, "won": won}
# Filters that cannot build huge strings from a short template (center, indent, format do)
# nor leak object internals (pprint) nor bypass escaping (safe).
_FILTERS = ("abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
            "groupby", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
            "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr", "slice", "sort",
            "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
            "urlencode", "wordcount")
_STR_BLOCKED = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"})


class _MissingVariable(UndefinedError):
    def __init__(self, message: str, obj: Any, name: Any) -> None:
        super().__init__(message)
        self.obj, self.name = obj, name


class _Undefined(StrictUndefined):
    """StrictUndefined that remembers what was looked up, so the error can name it."""
    __slots__ = ()

    def __init__(self, hint=None, obj=missing, name=None, exc=UndefinedError) -> None:
        if exc is UndefinedError:  # the sandbox passes SecurityError for unsafe access: keep it
            exc = partial(_MissingVariable, obj=obj, name=name)
        super().__init__(hint, obj, name, exc)


class _Sandbox(ImmutableSandboxedEnvironment):
    # Sizes a template could blow up on purpose: "x" * 10**9, 2 ** 10**8, "%999999999s" % x.
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, html: bool) -> None:
        super().__init__(autoescape=html, undefined=_Undefined)
        self.globals = dict(HELPERS)  # no range, lipsum, cycler, joiner, namespace, dict
        self.filters = {name: self.filters[name] for name in _FILTERS} | HELPERS

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and \
                (right > 64 or left.bit_length() * right > 4096):
            raise SecurityError("exponent too large")
        if operator == "*":
            seq, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and \
                    len(seq) * times > MAX_OUTPUT_CHARS:
                raise SecurityError("repetition too large")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("% string formatting is not available; use filters")
        return super().call_binop(context, operator, left, right)

    # A dict's attributes are its keys only: a trait named "items" is the trait, and dict
    # methods (items, update, get…) are never reachable from a template.
    def getattr(self, obj, attribute):
        if isinstance(obj, dict):
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        if isinstance(obj, str) and attribute in _STR_BLOCKED:  # checked before the sandbox's own format wrapper
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        if isinstance(obj, dict):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=argument)
        if isinstance(obj, str) and isinstance(argument, str):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)


_TEXT_ENV, _HTML_ENV = _Sandbox(html=False), _Sandbox(html=True)
_ALLOWED_NAMES = frozenset(NAMESPACES) | frozenset(HELPERS)
# `profile` is the traits and `event` the event's properties themselves, in every kind of
# send: `event.properties.x` (the tracking call's shape) never exists, so it is refused at save.
_WRAPPERS = {"profile": "traits", "event": "properties"}
_GUARDS = ("default", "d")                    # filters that make a missing variable harmless
_GUARD_TESTS = ("defined", "undefined")
DYNAMIC = "*"                                  # a lookup by a computed key: event[profile.key]


def _chains(tree: nodes.Template, roots: set[str]) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(every namespace chain the template reads, those read only where a missing value is
    harmless: under `default` or an `is defined` test). A chain is the namespace and the
    names after it, `*` for a computed one: ("event", "properties", "seq")."""
    read: set[tuple[str, ...]] = set()
    guarded: set[tuple[str, ...]] = set()

    def path(node) -> tuple[tuple[str, ...] | None, list]:
        parts, computed = [], []
        while isinstance(node, (nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Getattr):
                parts.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)):
                parts.append(str(node.arg.value))
            else:
                parts.append(DYNAMIC)
                computed.append(node.arg)
            node = node.node
        if isinstance(node, nodes.Name) and node.name in roots and parts:
            return (node.name, *reversed(parts)), computed
        return None, []

    def visit(node, safe: bool) -> None:
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            chain, computed = path(node)
            if chain is not None:
                (guarded if safe else read).add(chain)
                for arg in computed:
                    visit(arg, False)
                return
        for child in node.iter_child_nodes():
            keeps = (isinstance(node, nodes.Filter) and node.name in _GUARDS or
                     isinstance(node, nodes.Test) and node.name in _GUARD_TESTS) and child is node.node
            visit(child, keeps)

    visit(tree, False)
    return read | guarded, guarded


def _needed(tree: nodes.Template) -> set[tuple[str, ...]]:
    """The chains a send must have or the render fails (a chain guarded anywhere in the
    template counts as handled: `{{ event.x if event.x is defined }}`)."""
    roots = set(NAMESPACES) & meta.find_undeclared_variables(tree)  # a loop variable named `event` is not ours
    read, guarded = _chains(tree, roots)
    return {chain for chain in read if not any(chain[:len(g)] == g for g in guarded)}


def variables_needed(channels: dict) -> list[str]:
    """What a stored template reads, as `namespace.name` (the first name after the namespace,
    `*` for a computed one), sorted: what a journey checks its sends will have."""
    found = set()
    for channel, fields in channels.items():
        spec = FIELDS.get(channel, {})
        for name, (kind, _) in spec.items():
            if fields.get(name) in (None, "", [], {}):
                continue
            for _, source in _template_strings(kind, fields[name], name):
                try:
                    tree = (_HTML_ENV if (channel, name) == (EMAIL, "html") else _TEXT_ENV).parse(source)
                except TemplateSyntaxError:
                    continue  # never saved so; nothing to say about it
                found |= {f"{chain[0]}.{chain[1]}" for chain in _needed(tree)}
    return sorted(found)


# -- save time ------------------------------------------------------------------------------
def validate_template(channel: str, fields: Any, path: str = "fields") -> dict:
    """The channel's fields, checked: known names, required ones present, types right, every
    template string compiles and uses only profile / event / journey and the helpers.
    Raises InvalidArgument naming the field (`<path>.<field>`)."""
    spec = FIELDS.get(channel)
    if spec is None:
        raise InvalidArgument(f"{path}: unknown channel {channel!r}; expected one of {', '.join(FIELDS)}",
                              field=path)
    if not isinstance(fields, dict):
        raise InvalidArgument(f"{path}: expected an object with {', '.join(spec)}", field=path)
    for name in fields:
        if name not in spec:
            raise InvalidArgument(f"{path}.{name}: not a field of {channel}; expected {', '.join(spec)}",
                                  field=f"{path}.{name}")
    checked, strings = {}, []
    for name, (kind, required) in spec.items():
        value = fields.get(name)
        if value is None or value == "" or value == [] or value == {}:
            if required:
                raise InvalidArgument(f"{path}.{name}: required for {channel}", field=f"{path}.{name}")
            continue
        html = (channel, name) == (EMAIL, "html")
        strings += [(where, source, html) for where, source in _template_strings(kind, value, f"{path}.{name}")]
        checked[name] = value
    if (size := sum(len(source) for _, source, _ in strings)) > MAX_TEMPLATE_CHARS:
        raise InvalidArgument(f"{path}: {size} characters; at most {MAX_TEMPLATE_CHARS}", field=path)
    for where, source, html in strings:
        _compile_checked(source, where, html)
    return checked


def _template_strings(kind: str, value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, source) of each template string in a field, after checking its shape."""
    def bad(expected: str, where: str = path):
        return InvalidArgument(f"{where}: expected {expected}", field=where)

    if kind in (TEXT, CODE):
        if not isinstance(value, str):
            raise bad("a string")
        if kind == TEXT:  # a template code is Kakao's approved id, never rendered
            yield path, value
    elif kind == URLS:
        if not isinstance(value, list) or not all(isinstance(u, str) and u for u in value) \
                or len(value) > MAX_MEDIA:
            raise bad(f"a list of at most {MAX_MEDIA} URLs")
        yield from ((f"{path}[{i}]", u) for i, u in enumerate(value))
    elif kind == BUTTONS:
        if not isinstance(value, list) or len(value) > MAX_BUTTONS:
            raise bad(f"a list of at most {MAX_BUTTONS} buttons")
        for i, button in enumerate(value):
            where = f"{path}[{i}]"
            if not isinstance(button, dict) or not isinstance(button.get("name"), str) or not button["name"] \
                    or set(button) - {"name", "type", "url"} \
                    or not all(isinstance(v, str) for v in button.values()):
                raise bad('{"name", "type"?, "url"?} with string values', where)
            yield from ((f"{where}.{k}", v) for k, v in button.items())
    elif kind == VARIABLES:
        if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                  for k, v in value.items()):
            raise bad("an object of variable name → template string")
        yield from ((f"{path}.{k}", v) for k, v in value.items())
    elif kind == JSON:
        if not isinstance(value, dict):
            raise bad("a JSON object")
        yield from _json_strings(value, path)


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgument(f"{path}: keys must be strings", field=path)
            yield from _json_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_strings(v, f"{path}[{i}]")
    elif not (value is None or isinstance(value, (bool, int, float))):
        raise InvalidArgument(f"{path}: not a JSON value", field=path)


def _compile_checked(source: str, field: str, html: bool) -> None:
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        tree = env.parse(source)
        unknown = sorted(meta.find_undeclared_variables(tree) - _ALLOWED_NAMES)  # also finds unknown filters
        env.from_string(tree)
    except TemplateSyntaxError as err:
        raise InvalidArgument(f"{field}: template error on line {err.lineno}: {err.message}", field=field) from None
    if unknown:
        raise InvalidArgument(f"{field}: unknown variable {unknown[0]!r}; use profile.…, event.…, journey.… "
                              f"or {', '.join(HELPERS)}", field=field)
    for chain in sorted(_needed(tree)):
        if len(chain) > 1 and _WRAPPERS.get(chain[0]) == chain[1]:
            written, meant = ".".join(chain), ".".join((chain[0], *chain[2:])) if len(chain) > 2 else chain[0]
            what = "the event's properties" if chain[0] == "event" else "the person's traits"
            raise InvalidArgument(f"{field}: variable {written!r} never exists: {chain[0]} is {what} "
                                  f"themselves; write {meant!r}", field=field)
    # The sandbox refuses these at render time too; saying so when saving is clearer.
    if any(tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))):
        raise InvalidArgument(f"{field}: extends, include and import are not available", field=field)
    names = [n.attr for n in tree.find_all(nodes.Getattr)] + [n.name for n in tree.find_all(nodes.Name)] + [
        n.arg.value for n in tree.find_all(nodes.Getitem) if isinstance(n.arg, nodes.Const)]
    if bad := next((n for n in names if isinstance(n, str) and (n.startswith("_") or n == "self")), None):
        raise InvalidArgument(f"{field}: {bad!r} is not available in templates", field=field)


# -- send time ------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _compiled(source: str, html: bool):
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def _render_string(source: str, field: str, variables: dict, html: bool = False) -> str:
    try:
        out, size = [], 0
        for chunk in _compiled(source, html).generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderError(field, reason=f"renders to more than {MAX_OUTPUT_CHARS} characters")
            out.append(chunk)
        return "".join(out)
    except _MissingVariable as err:
        namespace = next((n for n in NAMESPACES if variables.get(n) is err.obj), None)
        raise RenderError(field, f"{namespace}.{err.name}" if namespace else str(err.name)) from None
    except SecurityError as err:
        raise RenderError(field, reason=f"unsafe template: {err}") from None
    except RenderError:
        raise
    except Exception as err:  # the author's template failed (1/0, "a" + 1, bad syntax never saved)
        raise RenderError(field, reason=f"{type(err).__name__}: {err}") from None


def _render_value(value: Any, field: str, variables: dict) -> Any:
    """Strings rendered, structure (JSON objects, lists, numbers) kept."""
    if isinstance(value, str):
        return _render_string(value, field, variables)
    if isinstance(value, dict):
        return {k: _render_value(v, f"{field}.{k}", variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, f"{field}[{i}]", variables) for i, v in enumerate(value)]
    return value


def euc_kr_length(text: str) -> int:
    """Length in EUC-KR bytes, as Korean carriers count SMS: ASCII 1, Hangul and the KS X 1001
    symbols 2. Counted with CP949, EUC-KR's superset that gateways use: the same bytes for every
    EUC-KR character, and 2 (not Python euc-kr's 8-byte fill sequence) for Hangul outside
    KS X 1001 such as 똠. A character neither encodes (emoji) counts 2: never under-counted."""
    try:
        return len(text.encode("cp949"))
    except UnicodeEncodeError:
        return sum(len(c.encode("cp949", "ignore")) or 2 for c in text)


def render(channel: str, fields: dict, variables: dict, advertising: bool, sender_name: str,
           opt_out: dict | None, tracking: Tracking | None = None) -> Content:
    """The channel's Content for one person. `variables` holds the namespaces profile (traits),
    event (properties) and journey (context). Advertising gets "(광고)" + the sender name at the
    start and the free opt-out at the end; an SMS over 90 bytes becomes an LMS, with media an
    MMS, and over 2,000 bytes is refused. With `tracking`, links are replaced by tracked ones
    (before the SMS length is counted: that is what is sent), email gets the open pixel, and
    its unsubscribe link is the one-click one, the policy's URL (if any) listed after it.
    Raises RenderError (field, variable or reason)."""
    timing.check_channel_kind(channel, advertising)
    if channel not in FIELDS:
        raise RenderError("channel", reason=f"unknown channel {channel!r}")
    given = _Fields(fields, {n: (variables or {}).get(n) or {} for n in NAMESPACES})
    opt_out = opt_out or {}
    if advertising and not sender_name.strip():
        raise RenderError("policy.sender_name", reason="advertising must name its sender (policy.sender_name)")
    if channel == EMAIL:
        return _email(given, advertising, sender_name, opt_out, tracking)
    if channel in (SMS, FRIENDTALK):
        body = _short_text(given, advertising, sender_name, opt_out, tracking)
        return _friendtalk(given, body, tracking) if channel == FRIENDTALK else _sms(given, body)
    if channel == ALIMTALK:
        return Content(template_code=fields["template_code"], variables=given.rendered("variables", {}),
                       buttons=tuple(given.rendered("buttons", [])))
    if channel == WEBHOOK:
        return Content(data=given.rendered("body", {}))
    return _notification(channel, given, advertising, sender_name, opt_out, tracking)


class _Fields:
    """A template's fields for one channel, each rendered over the namespaces when asked for."""

    def __init__(self, fields: dict, ns: dict) -> None:
        self.fields, self.ns = fields, ns

    def text(self, name: str, html: bool = False) -> str | None:
        return _render_string(self.fields[name], name, self.ns, html=html) if self.fields.get(name) else None

    def rendered(self, name: str, default: Any) -> Any:
        return _render_value(self.fields[name], name, self.ns) if self.fields.get(name) else default


def _email(given: _Fields, advertising: bool, sender_name: str, opt_out: dict, tracking: Tracking | None) -> Content:
    """Subject, text and HTML: links tracked, the open pixel, the unsubscribe link (advertising shows it)."""
    subject, body = given.text("subject") or "", given.text("text") or ""
    html = given.text("html", html=True)
    if tracking:
        body = links.rewrite_text(body, tracking.link)
        html = links.rewrite_html(html, tracking.link) if html is not None else None
    unsubscribe = tracking.unsubscribe_url if tracking else None
    if advertising:
        unsubscribe = unsubscribe or _required(opt_out, "url", "policy.unsubscribe_url",
                                               "advertising email needs an unsubscribe URL")
        subject = f"{AD_PREFIX} {subject}"
        body += f"\n\n{sender_name} | 수신거부(unsubscribe): {unsubscribe}"
        if html is not None:
            html = _before_body_end(html, f'<p style="font-size:12px;color:#888">{escape(sender_name)} | '
                                          f'<a href="{escape(unsubscribe)}">수신거부(unsubscribe)</a></p>')
    if tracking and html is not None:
        html = _before_body_end(html, f'<img src="{escape(tracking.open_url)}" width="1" height="1" alt="">')
    data = {"unsubscribe_url": unsubscribe} if unsubscribe else {}
    if unsubscribe and (also := (opt_out.get("url") or "").strip()) and also != unsubscribe:
        data["unsubscribe_also"] = also  # the workspace's own page or mailto, listed after ours
    return Content(subject=subject, body=body, html=html, data=data)


def _short_text(given: _Fields, advertising: bool, sender_name: str, opt_out: dict, tracking: Tracking | None) -> str:
    """An SMS or FriendTalk text: links tracked; advertising framed by "(광고)", the sender and the 080 opt-out."""
    body = given.text("text") or ""
    if tracking:
        body = links.rewrite_text(body, tracking.link)
    if advertising:
        phone = _required(opt_out, "phone", "policy.opt_out_phone",
                          "advertising SMS and FriendTalk need a free 080 opt-out number")
        if not phone.replace("-", "").replace(" ", "").startswith("080"):
            raise RenderError("policy.opt_out_phone", reason=f"opt-out number {phone!r} is not a free 080 number")
        body = f"{AD_PREFIX}{sender_name}\n{body}\n{OPT_OUT_SMS} {phone}"
    return body


def _friendtalk(given: _Fields, body: str, tracking: Tracking | None) -> Content:
    image = given.text("image_url")
    buttons = given.rendered("buttons", [])
    if tracking:
        buttons = [{**b, "url": tracking.link(b["url"])} if b.get("url") else b for b in buttons]
    return Content(body=body, buttons=tuple(buttons), media_urls=(image,) if image else ())


def _sms(given: _Fields, body: str) -> Content:
    """SMS, LMS past 90 EUC-KR bytes, MMS with media; refused past 2,000 bytes."""
    media = tuple(given.rendered("media_urls", []))
    size = euc_kr_length(body)
    if size > LMS_BYTES:
        raise RenderError("text", reason=f"{size} EUC-KR bytes: too long for LMS (at most {LMS_BYTES})")
    kind = "MMS" if media else "LMS" if size > SMS_BYTES else "SMS"
    # A short SMS has no title on Korean carriers: the title is kept for LMS / MMS only.
    return Content(body=body, subject=given.text("title") if kind != "SMS" else None, sms_type=kind,
                   media_urls=media)


def _notification(channel: str, given: _Fields, advertising: bool, sender_name: str, opt_out: dict,
                  tracking: Tracking | None) -> Content:
    """Push, web push, in-app: a space, not a line break, keeps a collapsed notification's one line."""
    body, url = given.text("body") or "", given.text("url")
    if advertising:
        body = f"{AD_PREFIX}{sender_name} {body} ({(opt_out.get('app') or '').strip() or OPT_OUT_APP})"
    return Content(subject=given.text("title") or "", body=body,
                   url=tracking.link(url) if tracking and url else url,
                   data=given.rendered("data", {}) if channel == PUSH else {})


def _before_body_end(html: str, addition: str) -> str:
    at = html.lower().rfind("</body>")
    return html[:at] + addition + html[at:] if at >= 0 else html + addition


def _required(opt_out: dict, key: str, field: str, reason: str) -> str:
    value = opt_out.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RenderError(field, reason=reason)
    return value.strip()
