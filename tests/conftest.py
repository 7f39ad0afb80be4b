"""Fixtures only (helpers are modules of their own): settings, stores on a local folder and on the
storage emulator, the running servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.adapters.gcs_blob_store import GcsBlobStore
from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.ports import BlobStore
from tests.aws import moto_server, point_boto3_at, reset
from tests.faultproxy import FaultProxy
from tests.iap_keys import KeyList
from tests.servers import Emulator, free_port, fresh_bucket, gcs_client, running, storage_emulator_command
from tests.testbed import CONTRACT_FAULTS, QUICK_RETRY, TOKEN_SECRET
from tools.standin.api import serve_in_thread


@pytest.fixture(scope="session")
def storage_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """gcp-storage-emulator as a real server on loopback, shared by the session."""
    port = free_port()
    bucket = "tapedeck-test"
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    url = f"http://127.0.0.1:{port}"
    with running(storage_emulator_command(port, bucket), {}, url, log):
        yield Emulator(url, bucket)


@pytest.fixture
def emulator_env(storage_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator.url)
    return storage_emulator


@pytest.fixture(scope="session")
def fault_proxy(storage_emulator: Emulator) -> Iterator[FaultProxy]:
    """tests/faultproxy.py in front of the emulator, shared by the session: preconditions enforced
    as Cloud Storage enforces them, faults only as a test asks (see `faults`)."""
    with FaultProxy(storage_emulator.url, seed=7) as proxy:
        yield proxy


@pytest.fixture
def faults(fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy for one test, which sets its rates or scripts faults; reset afterwards."""
    fault_proxy.reset()
    yield fault_proxy
    fault_proxy.reset()


@pytest.fixture(
    params=["local", pytest.param("gcs", marks=pytest.mark.slow), pytest.param("gcs-faults", marks=pytest.mark.slow)]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """The same store contract, run against each adapter: the local folder, the storage emulator,
    and the emulator behind the fault proxy (Cloud Storage's preconditions, and faults)."""
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "store")
        return
    emulator: Emulator = request.getfixturevalue("storage_emulator")
    if request.param == "gcs":
        yield GcsBlobStore(fresh_bucket(emulator), gcs_client(emulator))
        return
    proxy: FaultProxy = request.getfixturevalue("faults")
    bucket = fresh_bucket(emulator)
    proxy.rates = CONTRACT_FAULTS
    yield GcsBlobStore(bucket, gcs_client(Emulator(proxy.url, bucket)), QUICK_RETRY)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A wiped moto, with boto3 pointed at it through the environment."""
    reset(moto)
    point_boto3_at(moto, monkeypatch)
    return moto


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def configure(**env: str) -> None:
        base = {
            "LOCAL_STORAGE_DIR": str(tmp_path / "data"),
            "STREAM_TOKEN_SECRET": TOKEN_SECRET,
            "PUBLIC_URL": "https://fn.example.test",
            "RECORDER_URL": "wss://rec.example.test/socket",
        }
        for name, value in {**base, **env}.items():
            monkeypatch.setenv(name, value)

    configure()
    yield configure


@pytest.fixture
def key_list() -> KeyList:
    """Google's IAP key list, holding one key, `kid-1`."""
    keys = KeyList()
    keys.add("kid-1")
    return keys


@pytest.fixture
def keys_url(key_list: KeyList) -> Iterator[str]:
    """Where the key list is served, on loopback."""
    with serve_in_thread(key_list.app(), "127.0.0.1", 0) as base:
        yield f"{base}/iap/verify/public_key"
