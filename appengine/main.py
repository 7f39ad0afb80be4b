"""The recorder's Flask application factory: `/socket` for Vonage audio and `/healthz`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from flask import Flask, jsonify, request
from flask_sock import Sock

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.adapters.google_streaming_transcriber import cooperate_with_gevent
from shared.config.settings import SECRET_NAMES, Settings
from shared.core.ports import LiveListener, StreamingTranscriber
from shared.core.tasks import Task
from shared.flows.recording_outcomes import settle_task
from shared.flows.results import claim_result
from shared.flows.stitching import stitch_task
from shared.flows.streams import CLOSE_INTERNAL_ERROR, StreamContext, run_stream
from shared.flows.transcription import transcribe_task
from shared.flows.voicemail import LiveMessage, page_live_message
from shared.runtime.frame_socket import NO_READER, FrameSocket
from shared.runtime.live_webhook import WebhookLiveListener, webhook_poster
from shared.runtime.logs import configure_logging
from shared.runtime.services import Services, install_services
from shared.runtime.storage_lane import BackgroundStorageLane

__all__ = ["create_app", "production_app", "record"]

log = logging.getLogger(__name__)

# The largest 20 ms frame is 960 bytes (24 kHz); a frame far past that is not audio.
MAX_FRAME_BYTES = 64 * 1024


def _stop_on_sigterm(stopping: threading.Event) -> None:
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handle)


def _live_engine(settings: Settings) -> StreamingTranscriber | None:
    """The engine that transcribes streams as they come, if LIVE_TRANSCRIBER names one. Built here,
    in the recorder: its decoders run in child processes fed by threads, which no function may start."""
    if settings.live.engine == "none":
        return None
    if settings.live.engine == "google":
        from shared.adapters.google_streaming_transcriber import GoogleStreamingTranscriber

        return GoogleStreamingTranscriber(limit=settings.live.max_streams)
    from shared.adapters.pocketsphinx_streaming_transcriber import PocketsphinxStreamingTranscriber

    return PocketsphinxStreamingTranscriber(limit=settings.live.max_streams)


def _pager(services: Services) -> Callable[[LiveMessage], None]:
    """What a live voicemail's end does: page at once from the live words, or queue the batch
    transcription when they are incomplete."""

    def page(message: LiveMessage) -> None:
        try:
            job = page_live_message(services, message, services.clock())
            if job is not None:
                services.queue.enqueue(transcribe_task(job))
        except Exception:
            log.exception("a live message could not be paged", extra={"call": message.conversation_uuid})

    return page


def _later(services: Services, task: Callable[[str, str], Task], failed: str) -> Callable[[str, str], None]:
    """What the end of a stream's session asks for later: `task` queued for the call and session.
    A failure to queue is logged as `failed`, and not raised: something else asks for it again."""

    def ask(conversation_uuid: str, session: str) -> None:
        try:
            services.queue.enqueue(task(conversation_uuid, session))
        except Exception:
            log.exception(failed, extra={"call": conversation_uuid})

    return ask


def _live_listener(services: Services) -> Callable[[str], LiveListener]:
    """A sender of one stream's live events to a route's live_webhook, signed as every delivery is."""

    def listen(url: str) -> LiveListener:
        return WebhookLiveListener(webhook_poster(services.http, services.settings.delivery, url, services.clock))

    return listen


def create_app(
    settings: Settings | None = None, services: Services | None = None, handle_sigterm: bool = False
) -> Flask:
    """The recorder app; tests pass their own settings and services."""
    settings = settings or Settings.from_env(os.environ)
    services = services or Services(settings)
    configure_logging(settings.log_level)
    if settings.stream.token_secret_generated:
        log.warning("STREAM_TOKEN_SECRET is not set: stream tokens use a random secret of this process")
    app = Flask(__name__)
    # The functions the local platform mounts on this app run against the same services.
    install_services(app, services)
    # flask-sock makes the handshake; FrameSocket reads the frames, without simple-websocket's thread.
    app.config["SOCK_SERVER_OPTIONS"] = NO_READER
    context = StreamContext(
        services.store,
        settings.stream.token_secret,
        settings.storage.upload_chunk_bytes,
        live=_live_engine(settings),
        on_message=_pager(services),
        routes=settings.routes,
        listen=_live_listener(services),
        post_result=lambda call, name, url, payload: claim_result(services, call, name, url, payload),
        # A task that settles the call's recordings (in the tasks function, beside the other
        # outcomes), since the call may already be over; failing that, the sweep settles it once
        # Vonage reports the call's end.
        on_recorded=_later(services, settle_task, "could not ask for a recording to be settled"),
        rotate_seconds=settings.stream.rotate_seconds,
        # Which process recorded each session, in call.json: a host and a worker.
        recorder=f"{socket.gethostname()}/{os.getpid()}",
        # The stitching of a call recorded in several sessions, which waits for the call's end;
        # failing that, the call's `completed` event queues it.
        after_session=_later(services, stitch_task, "could not queue the stitching of a recording"),
        # Each stream's storage steps run away from its socket, so slow storage never holds it up.
        lane=BackgroundStorageLane,
    )
    app.extensions["tapedeck.streams"] = context
    if handle_sigterm:
        # On SIGTERM every open stream stores what it holds and closes, so that its call reconnects
        # to another instance, then finishes its WAV before the worker exits.
        _stop_on_sigterm(context.stopping)
    _add_routes(app, context)
    return app


def _add_routes(app: Flask, context: StreamContext) -> None:
    """The recorder's socket, its health check, and JSON answers to plain requests."""
    sock = Sock(app)

    @app.before_request
    def refuse_plain_http() -> Any:
        # flask-sock would try to take over a plain request's socket; answer it as any other error.
        if request.path == "/socket" and request.headers.get("Upgrade", "").lower() != "websocket":
            return jsonify({"error": "/socket takes a websocket upgrade"}), 426, {"Upgrade": "websocket"}
        # No websocket extension is agreed, permessage-deflate included: PCM hardly compresses,
        # and FrameSocket reads frames as the caller's network sent them.
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return None

    @sock.route("/socket")
    def socket(ws: Any) -> None:
        record(FrameSocket(ws, MAX_FRAME_BYTES), context)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "stopping" if context.stopping.is_set() else "ok"})

    @app.errorhandler(404)
    @app.errorhandler(405)
    def http_error(err: Any) -> Any:
        return jsonify({"error": err.description}), err.code


def record(vonage: FrameSocket, context: StreamContext) -> None:
    """Record one stream on the socket `vonage`; whatever fails, the socket ends with a close frame."""
    try:
        run_stream(vonage, context)
    except Exception:
        # Never let Flask write an HTTP 500 into a socket that is already a websocket.
        log.exception("stream failed")
        vonage.close(CLOSE_INTERNAL_ERROR, "internal error")


def production_app() -> Flask:
    """The app gunicorn serves: settings from the environment (and, deployed, secrets from Secret
    Manager: SECRETS_PROJECT names its project), streams closed on SIGTERM."""
    # gunicorn's gevent worker has patched the standard library by now; gRPC (Secret Manager, live
    # Google transcription) must be told before its first channel, or a stream deadlocks.
    cooperate_with_gevent()
    env = dict(os.environ)
    if env.get("SECRETS_PROJECT"):
        from shared.adapters.secret_manager_secrets import SecretManagerSecrets

        env = SecretManagerSecrets(env["SECRETS_PROJECT"]).fill(env, SECRET_NAMES)
    app = create_app(Settings.from_env(env), handle_sigterm=True)
    # Loaded as the worker starts (gunicorn builds the app after forking), not in the first
    # stream's request, where importing the Cloud Storage client stalled every stream of the worker.
    store = app.extensions["tapedeck.streams"].store
    if isinstance(store, GcsBlobStore):
        store.prepare()
    return app
