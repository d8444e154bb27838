"""An example suite as a TofuPilot user writes it: station code under test, talking to a
tofulab server through the official Python client and the OpenHTF upload callback. The
`tofulab` fixture (from the `tofulab` package's pytest plugin) gives every test its own
organization, so these tests can run in any order and in parallel."""

from datetime import datetime, timedelta, timezone

import httpx
import openhtf as htf
from openhtf.util import units
from tofupilot.openhtf import upload
from tofupilot.v2 import TofuPilot
from tofupilot.v2.utils import BackoffStrategy, RetryConfig


def test_a_run_posted_by_a_station_reads_back(tofulab):
    station = TofuPilot(api_key=tofulab.station_api_key, server_url=tofulab.api_url)
    started = datetime.now(timezone.utc)
    created = station.runs.create(
        outcome="PASS", procedure_id=tofulab.procedure_id, started_at=started,
        ended_at=started + timedelta(seconds=3), serial_number="SN-0001",
        part_number="PCB-A",
    )
    user = TofuPilot(api_key=tofulab.user_api_key, server_url=tofulab.api_url)
    run = user.runs.get(id=created.id)
    assert run.unit.serial_number == "SN-0001"
    assert [r.id for r in user.runs.list().data] == [created.id], "only this test's runs"


@htf.measures(htf.Measurement("rail_voltage").in_range(3.1, 3.5).with_units(units.VOLT))
def power_on(test):
    test.measurements.rail_voltage = 3.3


def test_an_openhtf_test_uploads_its_record(tofulab):
    identifier = httpx.get(
        f"{tofulab.api_url}/v2/procedures/{tofulab.procedure_id}",
        headers={"Authorization": f"Bearer {tofulab.user_api_key}"},
    ).json()["identifier"]
    test = htf.Test(power_on, test_name="board_fvt", procedure_id=identifier,
                    part_number="PCB-B")
    test.add_output_callbacks(upload(api_key=tofulab.station_api_key, url=tofulab.url))
    test.execute(test_start=lambda: "SN-OHTF-1")

    user = TofuPilot(api_key=tofulab.user_api_key, server_url=tofulab.api_url)
    runs = user.runs.list(serial_numbers=["SN-OHTF-1"]).data
    assert len(runs) == 1 and runs[0].outcome == "PASS"
    uploads = tofulab.requests(method="POST")
    assert any(r["path"].startswith("/api/") for r in uploads), uploads


def test_station_code_retries_through_a_flaky_server(tofulab):
    tofulab.fault("GET", "/api/v2/procedures", status=503, retry_after=1, times=2)
    retries = RetryConfig("backoff", BackoffStrategy(50, 2000, 1.5, 30000),
                          retry_connection_errors=True)
    client = TofuPilot(api_key=tofulab.station_api_key, server_url=tofulab.api_url,
                       retry_config=retries)
    assert [p.id for p in client.procedures.list().data] == [tofulab.procedure_id]
    statuses = [r["status"] for r in tofulab.requests(path="/api/v2/procedures")]
    assert statuses == [200, 503, 503]
