"""tofulab for Python tests: the tofulab server binary, started on a free port, with its
control API (`/_tofulab`) wrapped in plain methods.

    from tofulab import Server

    with Server.start() as server:
        org = server.create_organization()
        # point the official client at server.api_url with org.user_api_key

The pytest plugin (`tofulab.pytest_plugin`, registered automatically) gives each test a
throw-away organization on one server per session: see the `tofulab` fixture.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

__all__ = ["Organization", "Server", "TofulabError", "binary"]


class TofulabError(RuntimeError):
    """The server answered an error, or could not be started."""


def binary() -> Path:
    """The tofulab executable: `$TOFULAB_BIN`, else the one installed with this package."""
    if os.environ.get("TOFULAB_BIN"):
        return Path(os.environ["TOFULAB_BIN"])
    name = "tofulab.exe" if sys.platform == "win32" else "tofulab"
    for scripts in (sysconfig.get_path("scripts"), sysconfig.get_path("scripts", "posix_user")):
        if scripts and (Path(scripts) / name).exists():
            return Path(scripts) / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise TofulabError("the tofulab binary is not installed; set TOFULAB_BIN")


@dataclass
class Organization:
    """A throw-away organization as the control API created it."""

    id: str
    name: str
    slug: str
    user_api_key: str
    station_api_key: str
    procedure_id: str
    station_id: str
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> "Organization":
        return cls(
            id=data["id"],
            name=data["name"],
            slug=data["slug"],
            user_api_key=data["users"][0]["api_key"],
            station_api_key=data["stations"][0]["api_key"],
            procedure_id=data["procedures"][0]["id"],
            station_id=data["stations"][0]["id"],
            raw=data,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running tofulab with its control API on."""

    def __init__(self, url: str, admin_token: str, process: Optional[subprocess.Popen] = None,
                 log_path: Optional[Path] = None):
        self.url = url.rstrip("/")
        self.api_url = f"{self.url}/api"
        self.admin_token = admin_token
        self._process = process
        self.log_path = log_path

    @classmethod
    def start(cls, *, database_url: Optional[str] = None, seed: Optional[str] = None,
              args: tuple = (), timeout: float = 60) -> "Server":
        """Starts the binary on a free local port: a fresh temporary SQLite database unless
        `database_url` is given, no rate limit, the control API on."""
        token = secrets.token_urlsafe(24)
        port = _free_port()
        db_args = ["--database-url", database_url] if database_url else ["--ephemeral"]
        seed_args = ["--seed", str(seed)] if seed else []
        log_path = Path(tempfile.mkstemp(prefix="tofulab-", suffix=".log")[1])
        log = open(log_path, "w")
        env = {**os.environ, "TOFULAB_ADMIN_TOKEN": token}
        process = subprocess.Popen(
            [str(binary()), "serve", *db_args, *seed_args, "--listen", f"127.0.0.1:{port}",
             "--rate-limit", "off", *args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        server = cls(f"http://127.0.0.1:{port}", token, process, log_path)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return server
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise TofulabError(f"tofulab did not start:\n{server.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stops the server (graceful: in-flight requests finish)."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:]) if self.log_path else ""
        except OSError:
            return ""

    # The control API.

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """One control API call; returns the parsed answer, raises `TofulabError` on 4xx/5xx."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_tofulab{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.admin_token}",
                     "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise TofulabError(f"{method} /_tofulab{path}: {e.code} {e.read().decode()}") from None
        return json.loads(text) if text else None

    def create_organization(self, **spec: Any) -> Organization:
        """A new organization; `spec` is shaped like one organization of a seed file (every
        part optional: `{}` gives a user, a procedure and a linked station, keys generated)."""
        return Organization.from_json(self.control("POST", "/organizations", spec))

    def delete_organization(self, organization_id: str) -> None:
        self.control("DELETE", f"/organizations/{organization_id}")

    def reset_organization(self, organization_id: str) -> None:
        """Deletes the organization's runs, units, parts, batches, attachments and imports."""
        self.control("POST", f"/organizations/{organization_id}/reset")

    def reset(self) -> dict:
        """The whole database back to the seed file the server started with."""
        return self.control("POST", "/reset")

    def setup_token(self, station_id: str) -> dict:
        """A single-use token for `tofupilot login --token … --url …`."""
        return self.control("POST", f"/stations/{station_id}/setup-tokens")

    def add_fault(self, method: str, path: str, *, when: str = "before", **rule: Any) -> str:
        """A fault rule (`status`, `retry_after`, `delay_ms`, `drop_connection`, `times`,
        `probability`, `organization_id`); returns its id."""
        return self.control("POST", "/faults", {"method": method, "path": path, "when": when,
                                                **rule})["id"]

    def faults(self) -> list:
        return self.control("GET", "/faults")["data"]

    def remove_fault(self, fault_id: str) -> None:
        self.control("DELETE", f"/faults/{fault_id}")

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def requests(self, **filters: Any) -> list:
        """Journal entries, newest first (`organization_id`, `method`, `path`, `status`,
        `limit`)."""
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None})
        return self.control("GET", f"/requests?{query}")["data"]

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")
