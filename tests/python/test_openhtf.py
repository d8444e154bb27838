"""A real OpenHTF test uploaded with the `tofupilot.openhtf.upload()` output callback,
read back through the v2 API with the official Python client."""

import httpx
import openhtf as htf
from openhtf.util import units
from tofupilot.openhtf import upload

SCOPE_CSV = b"t,v\n0,0.0\n1,3.3\n"
RAW_DATA = bytes(range(256)) * 4


@htf.measures(
    htf.Measurement("rail_voltage").in_range(3.1, 3.5).with_units(units.VOLT).doc("3V3 rail"),
    htf.Measurement("current_draw").in_range(maximum=0.5).with_units(units.AMPERE),
    htf.Measurement("firmware_version").matches_regex(r"^1\.2\.\d+$"),
    htf.Measurement("self_test_ok").equals(True),
)
def power_on(test):
    """Power the board and read the rails."""
    test.measurements.rail_voltage = 3.3
    test.measurements.current_draw = 0.12
    test.measurements.firmware_version = "1.2.7"
    test.measurements.self_test_ok = True
    test.logger.info("board powered")
    test.attach("scope.csv", SCOPE_CSV, mimetype="text/csv")
    test.attach("raw_data", RAW_DATA)


@htf.measures(
    htf.Measurement("iv_curve").with_dimensions(units.VOLT).with_units(units.AMPERE),
)
def sweep(test):
    for step in range(4):
        test.measurements.iv_curve[step * 0.5] = step * 0.01
    test.logger.warning("sweep done with %d points", 4)


@htf.measures(htf.Measurement("board_temp").in_range(20, 60).with_units(units.DEGREE_CELSIUS))
def thermal(test):
    test.measurements.board_temp = 85
    test.logger.error("board too hot")


@htf.measures(htf.Measurement("serial_echo").equals("ok"))
def wrap_up(test):
    test.measurements.serial_echo = "ok"


def find_run(v2, serial):
    page = v2.runs.list(serial_numbers=[serial])
    assert len(page.data) == 1, page
    return v2.runs.get(id=page.data[0].id)


def by_name(items):
    return {i.name: i for i in items}


def test_openhtf_upload_callback_lands_a_complete_run(server, v2, unique):
    serial = f"OHTF-{unique}"
    part = f"PN-OHTF-{unique}"
    # The record names the procedure by its identifier (a key the Python models do not
    # carry, so read raw), in another case: identifiers resolve case-insensitively.
    identifier = httpx.get(
        f"{server.url}/api/v2/procedures/{server.procedure_id}",
        headers={"Authorization": f"Bearer {server.user_key}"},
    ).json()["identifier"]
    test = htf.Test(
        power_on, sweep, thermal, wrap_up,
        test_name="board_fvt",
        procedure_id=identifier.lower(),
        part_number=part,
    )
    test.add_output_callbacks(upload(api_key=server.user_key, url=server.url))
    test.execute(test_start=lambda: serial)

    run = find_run(v2, serial)
    assert run.outcome == "FAIL"
    assert run.procedure.id == server.procedure_id
    assert run.unit.serial_number == serial
    assert run.unit.part.number == part

    phases = by_name(run.phases)
    assert [p.name for p in run.phases] == ["trigger_phase", "power_on", "sweep", "thermal", "wrap_up"]
    assert phases["trigger_phase"].outcome == "PASS"
    assert phases["power_on"].outcome == "PASS"
    assert phases["thermal"].outcome == "FAIL"
    assert phases["wrap_up"].outcome == "PASS"

    power = by_name(phases["power_on"].measurements)
    assert list(power) == ["rail_voltage", "current_draw", "firmware_version", "self_test_ok"]
    rail = power["rail_voltage"]
    assert (rail.outcome, rail.measured_value, rail.units) == ("PASS", 3.3, "V")
    assert [(v.operator, v.expected_value, v.expression) for v in rail.validators] == [
        ("range", [3.1, 3.5], "3.1 <= x <= 3.5")
    ]
    assert power["current_draw"].validators[0].operator == "<="
    assert power["current_draw"].validators[0].expected_value == 0.5
    fw = power["firmware_version"]
    assert fw.measured_value == "1.2.7"
    assert (fw.validators[0].operator, fw.validators[0].expected_value) == ("matches", r"^1\.2\.\d+$")
    ok = power["self_test_ok"]
    assert ok.measured_value is True
    assert (ok.validators[0].operator, ok.validators[0].expected_value) == ("==", True)

    curve = phases["sweep"].measurements[0]
    assert curve.name == "iv_curve"
    assert curve.units == "A"
    assert curve.measured_value == [[0, 0], [0.5, 0.01], [1.0, 0.02], [1.5, 0.03]]

    temp = phases["thermal"].measurements[0]
    assert (temp.outcome, temp.measured_value, temp.units) == ("FAIL", 85, "°C")
    assert temp.validators[0].outcome == "FAIL"
    # OpenHTF writes a string `equals` as an anchored regex.
    echo = by_name(phases["wrap_up"].measurements)["serial_echo"].validators[0]
    assert (echo.operator, echo.expected_value) == ("matches", "^ok$")

    logs = {(log.level, log.message) for log in run.logs}
    assert ("INFO", "board powered") in logs
    assert ("WARNING", "sweep done with 4 points") in logs
    assert ("ERROR", "board too hot") in logs
    assert all(log.source_file and log.line_number >= 0 for log in run.logs)

    attachments = by_name(run.attachments)
    assert set(attachments) >= {"scope.csv", "raw_data"}
    for name, content in [("scope.csv", SCOPE_CSV), ("raw_data", RAW_DATA)]:
        att = attachments[name]
        assert att.is_report is False
        got = httpx.get(att.download_url)
        assert got.status_code == 200
        assert got.content == content, name
    reports = [a for a in run.attachments if a.is_report]
    assert len(reports) == 1 and reports[0].name.endswith(".json")
    record = httpx.get(reports[0].download_url).json()
    assert record["dut_id"] == serial


def test_openhtf_station_key_on_linked_procedure(server, v2, unique):
    serial = f"OHTF-ST-{unique}"
    test = htf.Test(wrap_up, procedure_id=server.procedure_id, part_number=f"PN-ST-{unique}")
    test.add_output_callbacks(upload(api_key=server.station_key, url=server.url))
    test.execute(test_start=lambda: serial)
    run = find_run(v2, serial)
    assert run.outcome == "PASS"
    assert run.created_by_station is not None
    assert run.created_by_station.id == server.station_id
