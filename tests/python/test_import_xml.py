"""The WATS (WSJF), WSXF, ATML and TestStand importers through the official Python
client: each fixture is uploaded with the client's attachment helpers, imported with
`imports.structured`, and its runs are read back with `runs.get`."""

from pathlib import Path

import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"


def upload(v2, name, content):
    init = v2.attachments.initialize(name=name)
    r = httpx.put(init.upload_url, content=content, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, (r.status_code, r.text)
    return init.id


def fixture(name, serials, unique):
    """The fixture's text with each serial made unique to this run of the tests."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for s in serials:
        text = text.replace(s, f"{s}-{unique}")
    return text.encode("utf-8")


def phase(run, name):
    return next(p for p in run.phases if p.name == name)


def measurement(ph, name):
    return next(m for m in ph.measurements if m.name == name)


def import_one(v2, name, content, importer):
    upload_id = upload(v2, name, content)
    r = v2.imports.structured(items=[{"upload_id": upload_id, "importer": importer}])
    assert len(r.results) == 1
    res = r.results[0]
    assert res.success, res
    assert res.upload_id == upload_id
    assert res.already_imported is False
    return res


def test_wsjf(v2, unique):
    res = import_one(v2, "report.json", fixture("wats.json", ["WSJF-0001"], unique), "WATS")
    run = v2.runs.get(id=res.id)
    assert run.outcome == "FAIL"
    assert run.unit.serial_number == f"WSJF-0001-{unique}"
    assert run.unit.part.number == "PCBA-100"
    assert run.unit.part.revision.number == "B"
    assert run.procedure.name == "Prüfung Endtest"
    assert run.procedure.version.tag == "3.1.0"
    rails = phase(run, "Rails")
    assert rails.outcome == "FAIL"
    v = measurement(rails, "3V3")
    assert (v.measured_value, v.units, v.outcome) == (3.31, "V", "PASS")
    assert v.validators[0].operator == "range"
    assert v.validators[0].expected_value == [3.2, 3.4]
    assert measurement(rails, "Ripple").validators[0].operator == "<="
    assert phase(run, "Skipped check").outcome == "SKIP"
    assert measurement(phase(run, "LED grün"), "LED").measured_value is True


def test_wsxf_several_reports(v2, unique):
    res = import_one(v2, "reports.xml", fixture("wsxf.xml", ["WSXF-0001", "WSXF-0002"], unique), "WSXF")
    assert len(res.ids) == 2
    assert any("repair (UUR)" in w for w in res.warnings)
    first = v2.runs.get(id=res.ids[0])
    assert first.outcome == "PASS"
    assert first.unit.serial_number == f"WSXF-0001-{unique}"
    assert first.procedure.name == "Funktionstest Ü"
    vin = measurement(phase(first, "Supply"), "Vin")
    assert (vin.measured_value, vin.units) == (12.02, "V")
    assert measurement(phase(first, "Supply"), "Iin").measured_value == 31
    second = v2.runs.get(id=res.ids[1])
    assert second.outcome == "ABORTED"
    assert second.unit.serial_number == f"WSXF-0002-{unique}"


def test_atml_collection(v2, unique):
    res = import_one(v2, "results.xml", fixture("atml-6.01.xml", ["ATML-0001", "ATML-0002"], unique), "ATML")
    assert len(res.ids) == 2
    run = v2.runs.get(id=res.ids[0])
    assert run.outcome == "FAIL"
    assert run.unit.serial_number == f"ATML-0001-{unique}"
    assert run.unit.part.number == "BRD-300"
    assert run.procedure.name == "Board"
    power = phase(run, "Power tests")
    voltage = measurement(power, "Voltage")
    assert (voltage.measured_value, voltage.units) == (4.98, "V")
    assert voltage.validators[0].expected_value == [4.75, 5.25]
    assert measurement(power, "Mode").measured_value == "Normal"
    assert v2.runs.get(id=res.ids[1]).outcome == "ABORTED"


def test_teststand_reports(v2, unique):
    res = import_one(v2, "teststand.xml", fixture("teststand.xml", ["TS-0001", "TS-0002", "TS-0003"], unique), "TESTSTAND")
    assert len(res.ids) == 2
    run = v2.runs.get(id=res.ids[0])
    assert run.outcome == "FAIL"
    assert run.unit.serial_number == f"TS-0001-{unique}"
    assert run.unit.part.number == "MB-10"
    assert run.procedure.name == "Étuve Test"
    assert run.procedure.version.tag == "2.0.1"
    v = measurement(phase(run, "Voltage"), "Voltage")
    assert (v.measured_value, v.units, v.outcome) == (3.3, "V", "PASS")
    assert measurement(phase(run, "Rails"), "12V").outcome == "FAIL"
    assert v2.runs.get(id=res.ids[1]).outcome == "ABORTED"

    # The same bytes again: already imported, the same runs.
    again = v2.imports.structured(items=[{"upload_id": res.upload_id, "importer": "TESTSTAND"}])
    assert again.results[0].already_imported is True
    assert sorted(again.results[0].ids) == sorted(res.ids)
