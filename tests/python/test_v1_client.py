"""The legacy `TofuPilotClient` (v1 API) against tofulab: runs with sub-units,
attachments and a procedure version, read back with `get_runs` and through v2."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from tofupilot import TofuPilotClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openhtf"


@pytest.fixture
def client(server):
    return TofuPilotClient(api_key=server.user_key, url=server.url)


def test_create_run_with_sub_units_attachments_and_version(server, client, v2, unique, tmp_path):
    sub_serial = f"SUB-{unique}"
    sub = client.create_run(
        unit_under_test={"serial_number": sub_serial, "part_number": f"PCB-{unique}"},
        run_passed=True,
        procedure_id=server.procedure_id,
    )
    assert sub["success"] is True, sub

    report = tmp_path / "report.txt"
    report.write_text("bench report\n")
    scope = tmp_path / "scope.png"
    scope_bytes = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    scope.write_bytes(scope_bytes)

    serial = f"V1-{unique}"
    started = datetime(2026, 3, 4, 10, 0, 0, tzinfo=timezone.utc)
    result = client.create_run(
        unit_under_test={
            "serial_number": serial,
            "part_number": f"ASSY-{unique}",
            "part_name": "Assembly",
            "revision": "B",
            "batch_number": f"LOT-{unique}",
        },
        run_passed=False,
        procedure_id=server.procedure_id,
        procedure_version="v1.4.2",
        started_at=started,
        duration=timedelta(minutes=1, seconds=2.25),
        sub_units=[{"serial_number": sub_serial}],
        attachments=[str(report), str(scope)],
        phases=[
            {
                "name": "measure",
                "outcome": "FAIL",
                "start_time_millis": int(started.timestamp() * 1000),
                "end_time_millis": int(started.timestamp() * 1000) + 1500,
                "docstring": "Measures the rail",
                "measurements": [
                    {"name": "voltage", "outcome": "FAIL", "measured_value": 3.9, "units": "V",
                     "lower_limit": 3.0, "upper_limit": 3.6},
                    {"name": "fw", "outcome": "PASS", "measured_value": "1.2.3",
                     "validators": ["'x' matches /^1\\.2\\.3$/"]},
                    {"name": "pending", "outcome": "UNSET"},
                ],
            }
        ],
        logs=[
            {"level": "WARNING", "timestamp": started.isoformat().replace("+00:00", "Z"),
             "message": "rail high", "source_file": "bench.py", "line_number": 42},
        ],
    )
    assert result["success"] is True, result
    assert "error" not in result and "errors" not in result
    run_id = result["id"]

    found = client.get_runs(serial_number=serial.lower())
    assert found["success"] is True
    assert [r["id"] for r in found["result"]] == [run_id]
    listed = found["result"][0]
    assert listed["unit"]["serial_number"] == serial
    assert listed["outcome"] == "FAIL"
    assert listed["duration"] == "PT1M2.25S"

    run = v2.runs.get(id=run_id)
    assert run.outcome == "FAIL"
    assert run.started_at == started
    assert run.ended_at == started + timedelta(minutes=1, seconds=2.25)
    assert run.procedure.version is not None and run.procedure.version.tag == "v1.4.2"
    assert run.unit.part.number == f"ASSY-{unique}"
    assert run.unit.part.name == "Assembly"
    assert run.unit.part.revision.number == "B"
    assert run.unit.batch.number == f"LOT-{unique}"
    assert [s.serial_number for s in run.sub_units] == [sub_serial]

    phase = run.phases[0]
    assert (phase.name, phase.outcome, phase.docstring) == ("measure", "FAIL", "Measures the rail")
    m = {x.name: x for x in phase.measurements}
    assert [(v.operator, v.expected_value, v.outcome) for v in m["voltage"].validators] == [
        (">=", 3.0, "PASS"), ("<=", 3.6, "FAIL"),
    ]
    assert (m["fw"].validators[0].operator, m["fw"].validators[0].expected_value) == ("matches", r"^1\.2\.3$")
    assert m["pending"].outcome == "UNSET" and m["pending"].measured_value is None
    assert [(log.level, log.message, log.line_number) for log in run.logs] == [("WARNING", "rail high", 42)]

    atts = {a.name: a for a in run.attachments}
    assert set(atts) == {"report.txt", "scope.png"}
    assert httpx.get(atts["scope.png"].download_url).content == scope_bytes
    assert httpx.get(atts["report.txt"].download_url).content == b"bench report\n"


def test_procedure_by_name_is_found_or_created(server, client, v2, unique):
    name = f"Legacy Procedure {unique}"
    first = client.create_run(
        unit_under_test={"serial_number": f"PN-{unique}-1", "part_number": f"P-{unique}"},
        run_passed=True,
        procedure_name=name,
    )
    second = client.create_run(
        unit_under_test={"serial_number": f"PN-{unique}-2", "part_number": f"P-{unique}"},
        run_passed=True,
        procedure_name=name.upper(),
    )
    assert first["success"] and second["success"], (first, second)
    a, b = v2.runs.get(id=first["id"]), v2.runs.get(id=second["id"])
    assert a.procedure.id == b.procedure.id
    assert a.procedure.name == name


def test_deprecated_steps_become_phases(server, client, v2, unique):
    started = datetime(2026, 3, 4, 11, 0, 0, tzinfo=timezone.utc)
    result = client.create_run(
        unit_under_test={"serial_number": f"STEP-{unique}", "part_number": f"P-{unique}"},
        run_passed=True,
        procedure_id=server.procedure_id,
        steps=[
            {"name": "check", "started_at": started, "duration": timedelta(seconds=1.5),
             "step_passed": True, "measurement_unit": "V", "measurement_value": 3.3,
             "limit_low": 3.0, "limit_high": 3.6},
            {"name": "flash", "started_at": started + timedelta(seconds=2),
             "duration": timedelta(seconds=1), "step_passed": True},
        ],
    )
    assert result["success"], result
    run = v2.runs.get(id=result["id"])
    assert [p.name for p in run.phases] == ["check", "flash"]
    check = run.phases[0].measurements[0]
    assert (check.name, check.measured_value, check.units) == ("check", 3.3, "V")
    assert [v.operator for v in check.validators] == [">=", "<="]
    assert run.phases[1].measurements == []
    assert run.started_at == started


def test_errors_are_reported_by_the_client(server, client, unique):
    missing = client.create_run(
        unit_under_test={"serial_number": f"NOPART-{unique}"},
        run_passed=True,
        procedure_id=server.procedure_id,
    )
    assert missing["success"] is False
    assert missing["status_code"] == 400
    assert "part number" in missing["error"]["message"].lower()

    unknown = client.get_runs(serial_number=f"NOBODY-{unique}")
    assert unknown == {"success": True, "result": []}

    bad_key = TofuPilotClient(api_key="tp_user_not_a_real_key_000000", url=server.url)
    denied = bad_key.create_run(
        unit_under_test={"serial_number": f"X-{unique}", "part_number": "P"},
        run_passed=True,
        procedure_id=server.procedure_id,
    )
    assert denied["success"] is False and denied["status_code"] == 401
    # The client read the message from the JSON body (it only does so for
    # `Content-Type: application/json` exactly).
    assert "api key" in denied["error"]["message"].lower()


def test_report_import_returns_the_run_id(server, client, v2, unique, tmp_path):
    record = json.loads((FIXTURES / "sample.json").read_text())
    record["dut_id"] = f"IMP-{unique}"
    record["metadata"]["procedure_id"] = server.procedure_id
    record["metadata"]["part_number"] = f"PN-IMP-{unique}"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(record))
    run_id = client.create_run_from_openhtf_report(str(path))
    assert run_id
    run = v2.runs.get(id=run_id)
    assert run.unit.serial_number == f"IMP-{unique}"
    assert [p.name for p in run.phases] == ["trigger_phase", "check_power"]

