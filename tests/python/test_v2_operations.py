"""Every v2 operation of the Python SDK, called once against tofulab: each response must
validate in the SDK's pydantic models (a model mismatch raises ResponseValidationError).

`STEPS` is a table: (operation, function of the shared context). The steps run in
order (later ones use what earlier ones created) and every failure is collected, so one
run reports every operation that does not work. `test_table_covers_every_operation`
fails when the SDK has an operation the table does not call (or the other way round).
"""

import inspect
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from tofupilot.v2 import TofuPilotBase, errors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def put(url, content, content_type="application/octet-stream"):
    r = httpx.put(url, content=content, headers={"Content-Type": content_type})
    assert r.status_code == 200, (r.status_code, r.text)


def upload(c, name, content, content_type):
    init = c.v2.attachments.initialize(name=name)
    put(init.upload_url, content, content_type)
    return init.id


def openhtf_record(c, serial):
    record = json.loads((FIXTURES / "openhtf" / "sample.json").read_text())
    record["dut_id"] = serial
    record["metadata"]["procedure_id"] = c.procedure_id
    record["metadata"]["part_number"] = c.part
    return json.dumps(record).encode()


def run_create(c):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    r = c.v2.runs.create(
        serial_number=c.serial,
        procedure_id=c.procedure_id,
        part_number=c.part,
        revision_number="A",
        outcome="PASS",
        started_at=now - timedelta(seconds=30),
        ended_at=now,
        procedure_version=c.tag,
        phases=[{
            "name": "measure",
            "outcome": "PASS",
            "started_at": now - timedelta(seconds=30),
            "ended_at": now - timedelta(seconds=10),
            "measurements": [{
                "name": "voltage", "outcome": "PASS", "measured_value": 3.3, "units": "V",
                "validators": [{"operator": ">=", "expected_value": 3.0, "outcome": "PASS"}],
            }],
        }],
        logs=[{"level": "INFO", "timestamp": now - timedelta(seconds=20),
               "message": "hello", "source_file": "t.py", "line_number": 1}],
    )
    c.run_id = r.id
    return r


def runs_get(c):
    run = c.v2.runs.get(id=c.run_id)
    c.phase_id = run.phases[0].id
    c.measurement_id = run.phases[0].measurements[0].id
    c.log_id = run.logs[0].id
    return run


def run_create_attachment(c):
    r = c.v2.runs.create_attachment(id=c.run_id, name="trace.txt")
    put(r.upload_url, b"trace", "text/plain")
    return r


def unit_create_attachment(c):
    r = c.v2.units.create_attachment(serial_number=c.serial, name="label.txt")
    put(r.upload_url, b"label", "text/plain")
    c.unit_attachment = r.id
    return r


def attachments_initialize(c):
    r = c.v2.attachments.initialize(name="photo.jpg")
    put(r.upload_url, b"\xff\xd8\xff\xe0jpeg", "image/jpeg")
    c.upload_id = r.id
    return r


def imports_structured(c):
    upload_id = upload(c, "record.json", openhtf_record(c, c.serial + "-H"), "application/json")
    r = c.v2.imports.structured(items=[{"upload_id": upload_id, "importer": "OPENHTF"}])
    assert r.results[0].success, r
    return r


def imports_tabular(c):
    started = "2026-01-02T03:04:05Z"
    csv = (
        "serial,result,start,end,name,value,unit,low,high\n"
        f"{c.serial}-T,PASS,{started},2026-01-02T03:05:00Z,voltage,3.3,V,3.0,3.6\n"
        f"{c.serial}-T,PASS,{started},2026-01-02T03:05:00Z,current,0.2,A,,0.5\n"
    ).encode()
    upload_id = upload(c, "results.csv", csv, "text/csv")
    return c.v2.imports.tabular(
        upload_id=upload_id,
        procedure_id=c.procedure_id,
        mapping={
            "fields": {
                "serial_number": {"column": "serial"},
                "part_number": {"value": c.part},
                "outcome": {"column": "result"},
                "started_at": {"column": "start"},
                "ended_at": {"column": "end"},
            },
            "measurements": {
                "layout": "long", "nameColumn": "name", "valueColumn": "value",
                "unitsColumn": "unit", "lowerColumn": "low", "upperColumn": "high",
            },
        },
    )


def deployments_get(c):
    with pytest.raises(errors.ErrorNOTFOUND):
        c.v2.deployments.get(id="00000000-0000-0000-0000-000000000000")
    return "404 as documented"


def parts_delete(c):
    # A part without units: the board part still has units and runs.
    c.v2.parts.create(number=c.part + "-X")
    return c.v2.parts.delete(number=c.part + "-X")


def versions_delete(c):
    # A version no run uses.
    c.v2.procedures.versions.create(procedure_id=c.procedure_id, tag=c.tag + "-x")
    return c.v2.procedures.versions.delete(procedure_id=c.procedure_id, tag=c.tag + "-x")


STEPS = [
    ("identity.whoami", lambda c: c.v2.identity.whoami()),
    ("users.list", lambda c: c.v2.users.list()),
    ("users.get_current", lambda c: c.v2.users.get_current()),
    ("procedures.create", lambda c: setattr(c, "procedure_id", c.v2.procedures.create(name=f"Ops {c.u}").id)),
    ("procedures.list", lambda c: c.v2.procedures.list()),
    ("procedures.get", lambda c: c.v2.procedures.get(id=c.procedure_id)),
    ("procedures.update", lambda c: c.v2.procedures.update(id=c.procedure_id, name=f"Ops {c.u} renamed")),
    ("procedures.versions.create", lambda c: c.v2.procedures.versions.create(procedure_id=c.procedure_id, tag=c.tag)),
    ("procedures.versions.get", lambda c: c.v2.procedures.versions.get(procedure_id=c.procedure_id, tag=c.tag)),
    ("stations.create", lambda c: setattr(c, "station_id", c.v2.stations.create(name=f"Bench {c.u}", procedure_id=c.procedure_id).id)),
    ("stations.list", lambda c: c.v2.stations.list()),
    ("stations.get", lambda c: c.v2.stations.get(id=c.station_id)),
    ("stations.update", lambda c: c.v2.stations.update(id=c.station_id, name=f"Bench {c.u} renamed")),
    ("stations.get_current", lambda c: c.station.stations.get_current()),
    ("parts.create", lambda c: c.v2.parts.create(number=c.part, name="Board", revision_number="A")),
    ("parts.list", lambda c: c.v2.parts.list()),
    ("parts.get", lambda c: c.v2.parts.get(number=c.part)),
    ("parts.update", lambda c: c.v2.parts.update(number=c.part, name="Main board")),
    ("parts.revisions.create", lambda c: c.v2.parts.revisions.create(part_number=c.part, number="B")),
    ("parts.revisions.get", lambda c: c.v2.parts.revisions.get(part_number=c.part, revision_number="B")),
    ("parts.revisions.update", lambda c: c.v2.parts.revisions.update(part_number=c.part, revision_number="B", number="C")),
    ("batches.create", lambda c: c.v2.batches.create(number=c.batch)),
    ("batches.list", lambda c: c.v2.batches.list()),
    ("batches.get", lambda c: c.v2.batches.get(number=c.batch)),
    ("batches.update", lambda c: c.v2.batches.update(number=c.batch, new_number=c.batch + "-2")),
    ("units.create", lambda c: c.v2.units.create(serial_number=c.serial, part_number=c.part, revision_number="A")),
    ("units.list", lambda c: c.v2.units.list()),
    ("units.get", lambda c: c.v2.units.get(serial_number=c.serial)),
    ("units.update", lambda c: c.v2.units.update(serial_number=c.serial, batch_number=c.batch + "-2")),
    ("units.add_child", lambda c: (
        c.v2.units.create(serial_number=c.child, part_number=c.part, revision_number="A"),
        c.v2.units.add_child(serial_number=c.serial, child_serial_number=c.child),
    )[-1]),
    ("units.remove_child", lambda c: c.v2.units.remove_child(serial_number=c.serial, child_serial_number=c.child)),
    ("units.create_attachment", unit_create_attachment),
    ("units.delete_attachment", lambda c: c.v2.units.delete_attachment(serial_number=c.serial, ids=[c.unit_attachment])),
    ("attachments.initialize", attachments_initialize),
    ("attachments.finalize", lambda c: c.v2.attachments.finalize(id=c.upload_id)),
    ("runs.create", run_create),
    ("runs.list", lambda c: c.v2.runs.list(procedure_ids=[c.procedure_id])),
    ("runs.get", runs_get),
    ("runs.update", lambda c: c.v2.runs.update(id=c.run_id, attachments=[c.upload_id])),
    ("runs.create_attachment", run_create_attachment),
    ("runs.update_metadata", lambda c: c.v2.runs.update_metadata(id=c.run_id, metadata={"fixture": "F-7", "temp": 21.5})),
    ("phases.list", lambda c: c.v2.phases.list(procedure_id=c.procedure_id)),
    ("phases.get", lambda c: c.v2.phases.get(id=c.phase_id)),
    ("measurements.list", lambda c: c.v2.measurements.list(procedure_id=c.procedure_id)),
    ("measurements.get", lambda c: c.v2.measurements.get(id=c.measurement_id)),
    ("logs.list", lambda c: c.v2.logs.list(procedure_ids=[c.procedure_id])),
    ("logs.get", lambda c: c.v2.logs.get(id=c.log_id)),
    ("imports.structured", imports_structured),
    ("imports.tabular", imports_tabular),
    ("deployments.list", lambda c: c.v2.deployments.list()),
    ("deployments.get", deployments_get),
    ("runs.delete", lambda c: c.v2.runs.delete(ids=[c.run_id])),
    ("units.delete", lambda c: c.v2.units.delete(serial_numbers=[c.child])),
    ("batches.delete", lambda c: c.v2.batches.delete(number=c.batch + "-2")),
    ("parts.revisions.delete", lambda c: c.v2.parts.revisions.delete(part_number=c.part, revision_number="C")),
    ("parts.delete", parts_delete),
    ("procedures.versions.delete", versions_delete),
    ("stations.remove", lambda c: c.v2.stations.remove(id=c.station_id)),
    ("procedures.delete", lambda c: c.v2.procedures.delete(id=c.procedure_id)),
]


def sdk_operations():
    """Every operation method of the SDK, as `resource.method` (nested resources dotted)."""
    sdk = TofuPilotBase(api_key="unused", server_url="http://127.0.0.1:1/api")
    found = set()

    def walk(obj, prefix):
        for name in dir(obj):
            if name.startswith("_") or name.endswith("_async") or name in ("do_request",):
                continue
            attr = getattr(obj, name, None)
            if attr is None:
                continue
            module = type(attr).__module__
            if module.startswith("tofupilot.v2") and not callable(attr) and hasattr(attr, "sdk_configuration"):
                walk(attr, f"{prefix}{name}.")
            elif prefix and inspect.ismethod(attr) and type(obj).__module__.startswith("tofupilot.v2"):
                found.add(prefix + name)

    walk(sdk, "")
    return found


def test_table_covers_every_operation():
    ops = sdk_operations()
    table = [name for name, _ in STEPS]
    assert len(ops) == 59, sorted(ops)
    assert len(table) == len(set(table)), "an operation appears twice in STEPS"
    assert set(table) == ops, {"missing": sorted(ops - set(table)), "unknown": sorted(set(table) - ops)}


class Ctx:
    pass


def test_every_operation_validates_in_the_sdk_models(server, v2, v2_station, unique):
    c = Ctx()
    c.v2, c.station, c.u = v2, v2_station, unique
    c.part, c.batch, c.tag = f"OPS-{unique}", f"B-{unique}", "1.0.0"
    c.serial, c.child = f"OPS-SN-{unique}", f"OPS-CH-{unique}"
    failures = {}
    for name, step in STEPS:
        try:
            step(c)
        except errors.ResponseValidationError as e:
            failures[name] = f"ResponseValidationError: {e}"
        except Exception as e:  # noqa: BLE001 - every failure is collected and reported
            failures[name] = f"{type(e).__name__}: {e}"
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items()) + "\n" + server.log_tail(20)
