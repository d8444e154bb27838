"""End-to-end fixtures: a real `tofulab serve` process for the whole session.

The server runs on a free local port with `--rate-limit off` and the control API on
(`--admin-token`), seeded from
`tests/fixtures/conformance-seed.json`, on a fresh database:

- SQLite (default): `--ephemeral`, a temporary file removed when the server exits;
- Postgres: when `TOFULAB_TEST_DATABASE_URL` names a Postgres database
  (`postgres://user@host:port/db`), a fresh database `tofulab_py_<random>` is created next
  to it with `psql` and dropped at the end.

With `TOFULAB_TEST_TLS=1` the server serves HTTPS (HTTP/2 by ALPN) with a certificate
from a private CA made by `scripts/make-test-ca`, and the session trusts that CA the way a
station would: `SSL_CERT_FILE` (httpx, used by the v2 client, and OpenSSL) and
`REQUESTS_CA_BUNDLE` (requests, used by the v1 client and OpenHTF uploads).

The binary is `$TOFULAB_BIN`, else `$CARGO_TARGET_DIR/debug/tofulab`, else
`target/debug/tofulab` (build it first: `cargo build`).
"""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

# The package reports exceptions to PostHog unless told not to; tests have no network
# and must not send anything. Set before `tofupilot` is imported anywhere.
os.environ["DISABLE_TELEMETRY"] = "1"

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "tests" / "fixtures" / "conformance-seed.json"
# Turns on the control API (`/_tofulab`) of the session's server.
ADMIN_TOKEN = "python-e2e-admin-token-0123456789"


def _seed():
    data = json.loads(SEED.read_text())
    lab, other = data["organizations"][0], data["organizations"][1]
    station = lab["stations"][0]
    return {
        "user_key": lab["users"][0]["api_key"],
        "user_email": lab["users"][0]["email"],
        "station_key": station["api_key"],
        "station_id": station["id"],
        "procedure_id": lab["procedures"][0]["id"],
        "other_user_key": other["users"][0]["api_key"],
    }


def _binary():
    if os.environ.get("TOFULAB_BIN"):
        return Path(os.environ["TOFULAB_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "tofulab"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(admin_url, sql):
    subprocess.run(["psql", admin_url, "-qc", sql], check=True, capture_output=True)


class Server:
    def __init__(self, url, log_path, **seed):
        self.url = url
        self.log_path = log_path
        self.__dict__.update(seed)

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"tofulab binary not found at {binary}: run `cargo build` or set TOFULAB_BIN")

    db_args = ["--ephemeral"]
    drop = None
    pg = os.environ.get("TOFULAB_TEST_DATABASE_URL", "")
    if pg.startswith("postgres"):
        parts = urllib.parse.urlsplit(pg)
        name = f"tofulab_py_{uuid.uuid4().hex[:12]}"
        admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        _psql(admin, f"CREATE DATABASE {name}")
        drop = lambda: _psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # noqa: E731
        db_args = ["--database-url", urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))]

    port = _free_port()
    tls_args, scheme, context = [], "http", None
    if os.environ.get("TOFULAB_TEST_TLS") == "1":
        pki = tmp_path_factory.mktemp("pki")
        subprocess.run([str(REPO / "scripts" / "make-test-ca"), str(pki)], check=True,
                       capture_output=True)
        tls_args = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")]
        scheme = "https"
        os.environ["SSL_CERT_FILE"] = str(pki / "ca.pem")
        os.environ["REQUESTS_CA_BUNDLE"] = str(pki / "ca.pem")
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    url = f"{scheme}://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("server") / "tofulab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(binary), "serve", *db_args, "--seed", str(SEED),
         "--listen", f"127.0.0.1:{port}", "--rate-limit", "off",
         "--admin-token", ADMIN_TOKEN, *tls_args],
        stdout=log, stderr=subprocess.STDOUT,
    )
    srv = Server(url, log_path, admin_token=ADMIN_TOKEN, **_seed())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2, context=context) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tofulab did not start:\n{srv.log_tail()}")
            time.sleep(0.1)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if drop:
            drop()


@pytest.fixture(scope="session")
def v2(server):
    """The v2 Python client with the user key."""
    from tofupilot.v2 import TofuPilot

    return TofuPilot(api_key=server.user_key, server_url=f"{server.url}/api")


@pytest.fixture(scope="session")
def v2_station(server):
    """The v2 Python client with the station key."""
    from tofupilot.v2 import TofuPilot

    return TofuPilot(api_key=server.station_key, server_url=f"{server.url}/api")


@pytest.fixture
def unique():
    """A short unique suffix for names and serial numbers."""
    return uuid.uuid4().hex[:10].upper()
