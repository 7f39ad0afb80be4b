"""The recordings browser: pages to list, hear, see, read and delete calls, the PIN prompts, and
the problems operators may need to act on (with their retries).

On App Engine it is a service of its own (`browser.yaml`), behind Identity-Aware Proxy, and every
page and audio request must carry a valid `x-goog-iap-jwt-assertion`; on Cloud Storage it refuses
to start without IAP_AUDIENCE. Locally (`nox -s serve`) the same pages are mounted on the local
platform at http://localhost:8080/ and answer only requests from this machine, for a loopback name.

Whoever gets in may look; only admins (BROWSER_ADMINS, and locally the local user) may change
anything. Every change is a POST from the browser's own page: its Origin is checked, and its form
carries a token for that one action by that user, good for a few minutes.

Every play, download and delete is recorded first in the call's audit log (`shared.flows.audit`),
with who asked; only admins may read it. When the entry cannot be written the action is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import flask
from werkzeug.exceptions import HTTPException

from shared.config.settings import BROWSER_SECRET_NAMES, Settings, require_iap
from shared.core.audit import AuditAction, AuditEntry
from shared.core.call_index import CallFilter
from shared.core.erasure import read_number
from shared.core.errors import Forbidden, NotFound, TapedeckError
from shared.core.iap import ASSERTION_HEADER, is_listed
from shared.core.operations import ProblemKind, problem_key
from shared.core.times import iso
from shared.flows.audit import CONTINUED_PLAY_SECONDS, SAME_ACTION_SECONDS, read_audit, record_action
from shared.flows.browse import call_view, list_prompts, peaks_of, recording_of, without_query
from shared.flows.calls import list_calls
from shared.flows.erase import (
    DiscardLater,
    check_deletable,
    check_forgettable,
    delete_call,
    forget_requests,
    forgotten_records,
    request_forget,
    set_legal_hold,
)
from shared.flows.problems import dismiss_problem, list_problems, request_retry
from shared.runtime.reads import ParallelReads
from shared.runtime.services import Services
from shared.runtime.version import tapedeck_version
from shared.runtime.web import serve_object

__all__ = ["FORM_TOKEN_SECONDS", "Visitor", "browser_blueprint", "create_app", "form_token", "production_app"]

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "::1")
# The names this machine answers to on loopback, with any port: a page whose own name was rebound
# to 127.0.0.1 (DNS rebinding) still sends its own name.
_LOOPBACK_HOST = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?", re.ASCII | re.IGNORECASE)
PAGE_SIZE = 50
# A call's audit page shows its newest entries, up to this many.
AUDIT_PAGE_SIZE = 500
# How long a signed audio URL lasts: long enough to listen, short enough not to be shared.
_SIGNED_URL_SECONDS = 900
# How long a form's token lasts: long enough to read a page and confirm, short enough that one
# left in a history or a log is soon of no use.
FORM_TOKEN_SECONDS = 600
# Pages that only admins may open, besides every request that changes something.
# The audit log is for admins too: it names colleagues and what they listened to.
_ADMIN_PAGES = frozenset({"browser.confirm_delete", "browser.audit_log", "browser.forget_page"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Visitor:
    """Who asked: the name the pages show and record, and whether they may change anything."""

    name: str
    admin: bool


Verifier = Callable[[str | None], Visitor]


def _loopback_only(header: str | None) -> Visitor:
    """Locally there is no identity to check: the pages answer requests from this machine only,
    and the one person at it is their admin. A request a proxy passed on (a tunnel that lets
    Vonage reach `nox -s serve`) comes from loopback too, but says whom it was forwarded for: it is
    refused as well, and so is one for any host name but loopback's (a rebound name)."""
    forwarded = any(name in flask.request.headers for name in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
    if flask.request.remote_addr not in _LOOPBACK or forwarded:
        raise Forbidden("the recordings browser answers only on this machine (loopback)")
    if not _LOOPBACK_HOST.fullmatch(flask.request.host):
        raise Forbidden("the recordings browser answers only to localhost, 127.0.0.1 or [::1] (loopback)")
    return Visitor("local user", admin=True)


def _iap_verifier(settings: Settings) -> Verifier:
    """Every request's IAP assertion checked: signature, audience, issuer, expiry; its account is
    an admin when BROWSER_ADMINS lists it. Refuses to start without the audience to check against."""
    from shared.runtime.iap import IapVerifier

    audience = require_iap(settings)
    verifier = IapVerifier(audience or "", settings.browser.iap_keys_url)
    admins = settings.browser.admins

    def visitor(header: str | None) -> Visitor:
        email = verifier.verify(header).email
        return Visitor(email, admin=is_listed(email, admins))

    return visitor


def _signature(secret: str, action: str, subject: str, user: str, expires: int) -> str:
    message = f"{action}\n{subject}\n{user}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def form_token(secret: str, action: str, subject: str, user: str, now: float) -> str:
    """A form's token for one action on one thing, by one user, until FORM_TOKEN_SECONDS from
    `now`: `<expiry>.<signature>`. A page of another site cannot make one."""
    expires = int(now) + FORM_TOKEN_SECONDS
    return f"{expires}.{_signature(secret, action, subject, user, expires)}"


def _check_form_token(secret: str, action: str, subject: str, user: str, now: float) -> None:
    """Forbidden unless the form carries a token made for this action, thing and user, not expired."""
    given = flask.request.form.get("token", "")
    expiry, _, signature = given.partition(".")
    expires = int(expiry) if expiry.isascii() and expiry.isdigit() and len(expiry) <= 12 else 0
    if not hmac.compare_digest(signature, _signature(secret, action, subject, user, expires)) or not expires:
        raise Forbidden("this form was not made by the browser's own page for you")
    if now >= expires:
        raise Forbidden("this form has expired: open the page again")


def _same_origin() -> None:
    """A request that changes something must come from the browser's own pages: its Origin (or,
    where a browser sends none, its Referer) names this host. The scheme is not compared: App
    Engine ends TLS in front of the app, which sees http for an https page."""
    source = flask.request.headers.get("Origin") or flask.request.headers.get("Referer") or ""
    try:
        host = urlsplit(source).netloc
    except ValueError:
        host = ""
    if not host or host.lower() != flask.request.host.lower():
        raise Forbidden("this request did not come from the recordings browser's own pages")


def _problem_kind(kind: str) -> ProblemKind:
    try:
        return ProblemKind(kind)
    except ValueError as err:
        raise NotFound("no such problem") from err


def _same_play_within() -> float | None:
    """How long after the same person's last entry for a recording this request counts as part of
    that play, not a new one; None for a request that serves no audio (HEAD).

    A GET with no Range (or one that cannot be read, answered with the whole recording), or one
    whose ranges include byte 0, begins a play: only a repeat moments later (a player asking for
    the first bytes twice) is the same one. A range further in is a player going on or seeking,
    the same play for `CONTINUED_PLAY_SECONDS`; past that, or asked for by hand with no play
    begun, it is recorded, so that no audio is served unrecorded. On Cloud Storage each request
    is one redirect to a signed URL, and its ranges go to Cloud Storage, not here."""
    if flask.request.method != "GET":
        return None
    ranges = flask.request.range
    if ranges is None or any(start == 0 for start, _ in ranges.ranges):
        return SAME_ACTION_SECONDS
    return CONTINUED_PLAY_SECONDS


def _query() -> dict[str, str]:
    return {name: value for name, value in flask.request.args.items() if isinstance(value, str)}


def browser_blueprint(services: Services, verify: Verifier | None = None) -> flask.Blueprint:
    """The pages, on `services`; `verify` turns a request's IAP header into who asked (loopback only when None)."""
    settings = services.settings
    store = ParallelReads(services.store)
    check = verify or _loopback_only
    secret = settings.stream.token_secret
    clock = services.clock
    # The browser holds no engine credentials: the sweep discards an erased call's engine copies.
    erasing = _Erasing(settings, services.store, DiscardLater(services.store), services.messenger)
    pages = flask.Blueprint(
        "browser", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
    )

    @pages.before_request
    def guard() -> None:
        visitor = check(flask.request.headers.get(ASSERTION_HEADER))
        flask.g.user, flask.g.admin = visitor.name, visitor.admin
        changes = flask.request.method not in _SAFE_METHODS
        if (changes or flask.request.endpoint in _ADMIN_PAGES) and not visitor.admin:
            raise Forbidden("only the browser's admins may change or delete calls; you may look")
        if changes:
            _same_origin()

    @pages.context_processor
    def version() -> dict[str, str]:
        return {"tapedeck_version": tapedeck_version()}

    @pages.after_request
    def headers(response: flask.Response) -> flask.Response:
        response.headers.setdefault("Cache-Control", "private, no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; media-src 'self' https://storage.googleapis.com; "
            "img-src 'self' data:; frame-ancestors 'none'"
        )
        return response

    @pages.app_template_filter("utc")
    def utc(seconds: float) -> str:
        return iso(seconds)[:19].replace("T", " ")

    # Webhook and callback URLs, and errors that quote them, without the query a token may be in.
    pages.add_app_template_filter(without_query, "without_query")

    def call_page(template: str, conversation_uuid: str) -> Any:
        """A page of the call, with the tokens its delete and legal hold forms carry (admins only)."""
        view = call_view(store, conversation_uuid, unredacted=flask.g.admin)
        user, now = flask.g.user, clock()
        token = form_token(secret, "delete", conversation_uuid, user, now) if flask.g.admin else None
        hold = form_token(secret, "hold", conversation_uuid, user, now) if flask.g.admin else None
        return flask.render_template(template, view=view, token=token, hold_token=hold)

    def posted(action: str, subject: str) -> float:
        """When a form was posted, once its token for `action` on `subject`, by this user, is checked."""
        now = clock()
        _check_form_token(secret, action, subject, flask.g.user, now)
        return now

    @pages.errorhandler(TapedeckError)
    def refused(err: TapedeckError) -> Any:
        return flask.jsonify({"error": str(err) if err.status < 500 or err.public else "internal error"}), err.status

    @pages.get("/")
    def calls() -> Any:
        where = CallFilter.from_query(_query())
        page = list_calls(store, where, flask.request.args.get("after", ""), PAGE_SIZE)
        more = dict(where.to_query(), after=page.next_after) if page.next_after and page.calls else None
        return flask.render_template("browser/calls.html", page=page, where=where, more=more, flows=_FLOWS)

    @pages.get("/calls/<conversation_uuid>")
    def call(conversation_uuid: str) -> Any:
        return call_page("browser/call.html", conversation_uuid)

    @pages.get("/calls/<conversation_uuid>/live")
    def live(conversation_uuid: str) -> Any:
        view = call_view(store, conversation_uuid)
        return {"live": view.live, "status": view.call.status, "text": view.live_text, "events": len(view.events)}

    @pages.get("/calls/<conversation_uuid>/audio/<name>")
    def audio(conversation_uuid: str, name: str) -> Any:
        recording = recording_of(store, conversation_uuid, name)
        download = "download" in flask.request.args
        within = _same_play_within()
        if within is not None:
            action = AuditAction.DOWNLOAD if download else AuditAction.PLAY
            entry = AuditEntry(conversation_uuid, action, flask.g.user, clock(), recording.key)
            record_action(services.store, entry, once_within=within)
        # Cloud Storage serves the bytes, ranges and all, from a URL good for a few minutes.
        return serve_object(services.store, recording.key, _SIGNED_URL_SECONDS, recording.name if download else None)

    @pages.get("/calls/<conversation_uuid>/audit")
    def audit_log(conversation_uuid: str) -> Any:
        found = read_audit(store, conversation_uuid, AUDIT_PAGE_SIZE)
        if not found.total:
            call_view(store, conversation_uuid)  # NotFound for a call never stored
        return flask.render_template("browser/audit.html", conversation_uuid=conversation_uuid, audit=found)

    @pages.get("/calls/<conversation_uuid>/peaks/<name>")
    def peaks(conversation_uuid: str, name: str) -> Any:
        return flask.jsonify(peaks_of(services.store, recording_of(store, conversation_uuid, name)))

    @pages.get("/calls/<conversation_uuid>/delete")
    def confirm_delete(conversation_uuid: str) -> Any:
        return call_page("browser/delete.html", conversation_uuid)

    @pages.post("/calls/<conversation_uuid>/delete")
    def delete(conversation_uuid: str) -> Any:
        now = posted("delete", conversation_uuid)
        check_deletable(services.store, conversation_uuid)
        record_action(services.store, AuditEntry(conversation_uuid, AuditAction.DELETE, flask.g.user, now))
        delete_call(erasing, conversation_uuid, flask.g.user, now)
        return flask.redirect(flask.url_for("browser.call", conversation_uuid=conversation_uuid), code=303)

    @pages.post("/calls/<conversation_uuid>/hold")
    def hold(conversation_uuid: str) -> Any:
        now, held = posted("hold", conversation_uuid), flask.request.form.get("hold") == "set"
        call_view(store, conversation_uuid)  # NotFound for a call never stored
        action = AuditAction.HOLD if held else AuditAction.RELEASE
        record_action(services.store, AuditEntry(conversation_uuid, action, flask.g.user, now))
        set_legal_hold(services.store, conversation_uuid, held, flask.g.user, now)
        return flask.redirect(flask.url_for("browser.call", conversation_uuid=conversation_uuid), code=303)

    @pages.get("/forget")
    def forget_page() -> Any:
        token = form_token(secret, "forget", "numbers", flask.g.user, clock())
        requests, records = forget_requests(store), forgotten_records(store, PAGE_SIZE)
        return flask.render_template("browser/forget.html", token=token, requests=requests, records=records)

    @pages.post("/forget")
    def forget() -> Any:
        now = posted("forget", "numbers")
        number = read_number(flask.request.form.get("number", ""))
        check_forgettable(settings, number)
        request_forget(services.store, number, flask.g.user, now)
        return flask.redirect(flask.url_for("browser.forget_page"), code=303)

    @pages.get("/problems")
    def problems() -> Any:
        found, after = list_problems(store, flask.request.args.get("after", ""), PAGE_SIZE)
        user, now = flask.g.user, clock()
        tokens = {p.key: form_token(secret, "problem", p.key, user, now) for p in found} if flask.g.admin else {}
        return flask.render_template("browser/problems.html", problems=found, after=after, tokens=tokens)

    @pages.post("/problems/<kind>/<ident>/<action>")
    def act_on_problem(kind: str, ident: str, action: str) -> Any:
        problem_kind = _problem_kind(kind)
        now = posted("problem", problem_key(problem_kind, ident))
        if action == "retry":
            # Run by the next sweep, which has the queue, the messenger and the deliveries' secret.
            request_retry(services.store, problem_kind, ident, now, flask.g.user)
        elif action == "dismiss":
            dismiss_problem(services.store, problem_kind, ident, flask.g.user)
        else:
            raise NotFound("no such action")
        return flask.redirect(flask.url_for("browser.problems"), code=303)

    @pages.get("/prompts")
    def prompts() -> Any:
        views, after = list_prompts(store, flask.request.args.get("after", ""), PAGE_SIZE)
        return flask.render_template("browser/prompts.html", prompts=views, after=after)

    return pages


_FLOWS = ("stream", "voicemail", "conversation")


@dataclass(frozen=True)
class _Erasing:
    """What the browser's delete erases with (EraseServices)."""

    settings: Settings
    store: Any
    transcriber: Any
    messenger: Any

    def transcriber_for(self, engine: str) -> Any:
        return self.transcriber


def create_app(settings: Settings | None = None, services: Services | None = None) -> flask.Flask:
    """The browser as an app of its own: behind IAP on Cloud Storage, loopback only on a local folder."""
    settings = settings or Settings.from_env(os.environ)
    services = services or Services(settings)
    verify = _iap_verifier(settings) if settings.storage.kind == "gcs" else None
    app = flask.Flask(__name__)
    app.register_blueprint(browser_blueprint(services, verify))

    @app.get("/healthz")
    def healthz() -> Any:
        return flask.jsonify({"status": "ok"})

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Any:
        return flask.jsonify({"error": err.description}), err.code

    return app


def production_app() -> flask.Flask:
    """What App Engine serves: settings from the environment, and from Secret Manager the one
    secret the browser's account may read (the stream token's, which signs its delete forms)."""
    env = dict(os.environ)
    if env.get("SECRETS_PROJECT"):
        from shared.adapters.secret_manager_secrets import SecretManagerSecrets

        env = SecretManagerSecrets(env["SECRETS_PROJECT"]).fill(env, BROWSER_SECRET_NAMES)
    return create_app(Settings.from_env(env))
