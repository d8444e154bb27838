"""pytest plugin: one tofulab server per test session, a throw-away organization per test.

    def test_upload(tofulab):
        client = TofuPilot(api_key=tofulab.station_api_key, server_url=tofulab.api_url)
        ...

`tofulab` gives `url`, `api_url`, `user_api_key`, `station_api_key`, `procedure_id`,
`station_id`, `organization_id`, and helpers for faults (`fault`, scoped to the test's
organization) and the journal (`requests`). The organization and its faults are deleted
after the test, so tests can run in any order or in parallel without seeing each other.

`TOFULAB_FIXTURE_DATABASE_URL` serves from that database instead of a temporary SQLite
file; `TOFULAB_BIN` picks another binary than the one installed with the package.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

import pytest

from . import Organization, Server


class TofulabFixture:
    """What a test gets: its organization's keys and ids, and the control helpers."""

    def __init__(self, server: Server, org: Organization):
        self.server = server
        self.organization = org
        self.url = server.url
        self.api_url = server.api_url
        self.organization_id = org.id
        self.user_api_key = org.user_api_key
        self.station_api_key = org.station_api_key
        self.procedure_id = org.procedure_id
        self.station_id = org.station_id
        self._faults: list = []

    def fault(self, method: str, path: str, *, when: str = "before", **rule: Any) -> str:
        """A fault rule for this test's organization only; removed after the test."""
        rule.setdefault("organization_id", self.organization_id)
        fault_id = self.server.add_fault(method, path, when=when, **rule)
        self._faults.append(fault_id)
        return fault_id

    def requests(self, method: Optional[str] = None, path: Optional[str] = None,
                 status: Optional[int] = None, limit: Optional[int] = None) -> list:
        """This organization's requests, newest first."""
        return self.server.requests(organization_id=self.organization_id, method=method,
                                    path=path, status=status, limit=limit)

    def reset(self) -> None:
        """Deletes this organization's runs, units, parts, batches and attachments."""
        self.server.reset_organization(self.organization_id)

    def _cleanup(self) -> None:
        for fault_id in self._faults:
            try:
                self.server.remove_fault(fault_id)
            except Exception:  # already gone (a reset clears every rule)
                pass
        self.server.delete_organization(self.organization_id)


@pytest.fixture(scope="session")
def tofulab_server():
    """The session's tofulab server."""
    server = Server.start(database_url=os.environ.get("TOFULAB_FIXTURE_DATABASE_URL"))
    yield server
    server.stop()


@pytest.fixture
def tofulab(tofulab_server: Server, request: pytest.FixtureRequest):
    """A throw-away organization on the session's server, deleted after the test."""
    name = re.sub(r"[^A-Za-z0-9 _-]", " ", request.node.name)[:60] or "pytest"
    org = tofulab_server.create_organization(name=name)
    fixture = TofulabFixture(tofulab_server, org)
    yield fixture
    fixture._cleanup()
