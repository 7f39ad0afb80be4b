"""The recordings browser on Cloud Storage (the storage emulator) behind Identity-Aware Proxy: it
will not start without the audience to check, no page or audio is served without a valid
assertion, and only the accounts BROWSER_ADMINS lists may delete. Assertions are forged with P-256
keys whose list is served on loopback, as Google's is."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from appengine.browser import create_app
from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.config.settings import Settings
from shared.core.errors import ConfigError
from shared.runtime.services import Services
from tests.browser.calls import recorded_stream
from tests.iap_keys import AUDIENCE, KeyList, forge
from tests.servers import Emulator, fresh_bucket, gcs_client
from tests.testbed import TOKEN_SECRET

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(storage_emulator: Emulator, keys_url: str) -> tuple[dict[str, str], GcsBlobStore]:
    bucket = fresh_bucket(storage_emulator)
    store = GcsBlobStore(bucket, gcs_client(storage_emulator))
    env = {
        "STORAGE": "gcs",
        "GCS_BUCKET": bucket,
        "STREAM_TOKEN_SECRET": TOKEN_SECRET,
        "IAP_AUDIENCE": AUDIENCE,
        "IAP_KEYS_URL": keys_url,
    }
    return env, store


def browser(env: dict[str, str], store: GcsBlobStore) -> FlaskClient:
    settings = Settings.from_env(env)
    return create_app(settings, Services(settings, store=store)).test_client()


def assertion(key: Any, kid: str = "kid-1", **changes: Any) -> str:
    """An assertion IAP signed just now."""
    now = int(time.time())
    return forge(key, kid, **({"iat": now - 10, "exp": now + 590} | changes))


def test_the_browser_refuses_to_start_on_cloud_storage_without_an_audience(
    setup: tuple[dict[str, str], GcsBlobStore],
) -> None:
    env, store = setup
    without = {name: value for name, value in env.items() if name != "IAP_AUDIENCE"}
    with pytest.raises(ConfigError, match="IAP_AUDIENCE"):
        browser(without, store)


def test_no_page_or_audio_without_a_valid_assertion(
    setup: tuple[dict[str, str], GcsBlobStore], key_list: KeyList
) -> None:
    env, store = setup
    recorded_stream(store, "CON-iap", time.time())
    client = browser(env, store)
    key = key_list.keys["kid-1"]
    stranger = KeyList()
    forged = {
        "none": None,
        "wrong audience": assertion(key, aud="/projects/1/apps/someone-else"),
        "expired": assertion(key, iat=int(time.time()) - 1200, exp=int(time.time()) - 600),
        "wrong key": assertion(stranger.add("kid-1")),
        "unknown key": assertion(stranger.add("kid-9"), kid="kid-9"),
        "wrong issuer": assertion(key, iss="https://accounts.google.com"),
    }
    paths = ["/", "/calls/CON-iap", "/calls/CON-iap/audio/audio.wav", "/calls/CON-iap/peaks/audio.wav", "/prompts"]
    for why, token in forged.items():
        headers = {"X-Goog-IAP-JWT-Assertion": token} if token else {}
        for path in paths:
            answer = client.get(path, headers=headers)
            assert answer.status_code == 401, (why, path, answer.status_code)
            assert "error" in answer.get_json()
        refused = client.post("/calls/CON-iap/delete", headers=headers, data={"token": "x"})
        assert refused.status_code == 401, why
    assert store.read("calls/CON-iap/audio.wav") is not None

    signed_in = {"X-Goog-IAP-JWT-Assertion": assertion(key)}
    listing = client.get("/", headers=signed_in)
    assert listing.status_code == 200 and "CON-iap" in listing.data.decode()
    page = client.get("/calls/CON-iap", headers=signed_in).data.decode()
    assert "Signed in as sam@example.com" in page and "Hi this is sam" in page
    assert client.get("/calls/CON-iap/peaks/audio.wav", headers=signed_in).get_json()["channels"] == 1


def test_behind_iap_only_the_admins_listed_may_delete(
    setup: tuple[dict[str, str], GcsBlobStore], key_list: KeyList
) -> None:
    import re

    from appengine.browser import form_token
    from tests.browser.visitors import SAME_ORIGIN, TOKEN

    env, store = setup
    recorded_stream(store, "CON-iap", time.time())
    client = browser({**env, "BROWSER_ADMINS": "user:alice@example.com"}, store)
    key = key_list.keys["kid-1"]
    viewer = {"X-Goog-IAP-JWT-Assertion": assertion(key)} | SAME_ORIGIN
    admin = {"X-Goog-IAP-JWT-Assertion": assertion(key, email="Alice@example.com", sub="accounts.google.com:42")}

    page = client.get("/calls/CON-iap", headers=viewer).data.decode()
    assert "Signed in as sam@example.com (viewer)" in page and "Delete this call" not in page
    assert client.get("/calls/CON-iap/delete", headers=viewer).status_code == 403
    token = form_token(TOKEN_SECRET, "delete", "CON-iap", "sam@example.com", time.time())
    refused = client.post("/calls/CON-iap/delete", headers=viewer, data={"token": token})
    assert refused.status_code == 403 and "admins" in refused.get_json()["error"]
    assert store.read("calls/CON-iap/audio.wav") is not None

    confirm = re.search(TOKEN, client.get("/calls/CON-iap/delete", headers=admin).data.decode())
    assert confirm is not None
    done = client.post("/calls/CON-iap/delete", headers=admin | SAME_ORIGIN, data={"token": confirm.group(1)})
    assert done.status_code == 303 and store.read("calls/CON-iap/audio.wav") is None
    assert store.read("calls/CON-iap/call.json").data.count(b"Alice@example.com") == 1  # type: ignore[union-attr]


class SignedBy:
    """The emulator's store, with URLs signed by a client holding a service account's key: the
    emulator cannot sign, and real Google cannot be reached here; the signing itself is the
    library's own, done locally."""

    def __init__(self, store: GcsBlobStore, signer: GcsBlobStore) -> None:
        self.store, self.signer = store, signer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def signed_url(self, key: str, ttl_seconds: int, download_as: str | None = None) -> str:
        return self.signer.signed_url(key, ttl_seconds, download_as)


def test_audio_on_cloud_storage_redirects_to_a_fresh_v4_signed_url(
    setup: tuple[dict[str, str], GcsBlobStore], key_list: KeyList
) -> None:
    from urllib.parse import parse_qs, urlsplit

    import google.cloud.storage as storage
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    env, store = setup
    recorded_stream(store, "CON-iap", time.time())
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    account = "tapedeck-browser@demo.iam.gserviceaccount.com"
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        {"client_email": account, "private_key": pem.decode(), "token_uri": "https://oauth2.googleapis.com/token"}
    )
    signer = GcsBlobStore(store.bucket_name, storage.Client(project="demo", credentials=credentials))
    settings = Settings.from_env(env)
    client = create_app(settings, Services(settings, store=SignedBy(store, signer))).test_client()

    headers = {"X-Goog-IAP-JWT-Assertion": assertion(key_list.keys["kid-1"])}
    answer = client.get("/calls/CON-iap/audio/audio.wav", headers=headers)
    assert answer.status_code == 302
    url = urlsplit(answer.headers["Location"])
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "storage.googleapis.com",
        f"/{store.bucket_name}/calls/CON-iap/audio.wav",
    )
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["900"]
    assert query["X-Goog-Credential"][0].startswith(account + "/")
    assert len(query["X-Goog-Signature"][0]) == 512
    assert "response-content-disposition" not in query
    # A download is signed to come as an attachment, under the recording's name.
    download = client.get("/calls/CON-iap/audio/audio.wav?download=1", headers=headers)
    assert download.status_code == 302
    signed = parse_qs(urlsplit(download.headers["Location"]).query)
    assert signed["response-content-disposition"] == ['attachment; filename="audio.wav"']
