"""How `nox -s serve` runs tapedeck on this machine, and the settings it, `nox -s call` and
`nox -s prompt` run with, beside the Vonage stand-in. Standard library only: the noxfile imports it."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["local_env", "serve_command"]


def local_env(port: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Settings for a local run on `port`; anything already set in `environ` wins."""
    defaults = {
        "PUBLIC_URL": f"http://localhost:{port}",
        "RECORDER_URL": f"ws://localhost:{port}/socket",
        # The Vonage stand-in serves recordings here, checking a dev application key.
        "VONAGE_API_HOST": "127.0.0.1:8091",
        "VONAGE_APPLICATION_ID": "standin-application",
        "VONAGE_PRIVATE_KEY": "data/.standin/application.pem",
        "ROUTES_FILE": "data/routes.yaml",
        # PIN prompt calls: the key `nox -s prompt` sends, the secret its receiver checks, and
        # callbacks to that receiver on loopback over http.
        "PROMPT_API_KEY": "local-prompt-key",
        "CALLBACK_SECRET": "local-callback-secret",
        "ALLOW_PRIVATE_CALLBACKS": "true",
        # Streams and live voicemails are transcribed as they come.
        "LIVE_TRANSCRIBER": "pocketsphinx",
    }
    return {
        **{name: environ.get(name, value) for name, value in defaults.items()},
        # The v4 SDK speaks only https: trust the stand-in's certificate as well as the public
        # roots (the bundle is made by `setup`). Set here whatever the shell has, since a
        # system-wide REQUESTS_CA_BUNDLE would leave the stand-in untrusted.
        "REQUESTS_CA_BUNDLE": "data/.standin/ca-bundle.pem",
    }


def serve_command(port: str) -> list[str]:
    """The local platform under gunicorn: every function, the recorder and the browser on `port`."""
    return [
        "gunicorn",
        "--worker-class",
        "gevent",
        "--workers",
        "1",
        "--bind",
        f"0.0.0.0:{port}",
        "--graceful-timeout",
        "20",
        "--no-control-socket",
        "appengine.devserver:create_dev_app()",
    ]
