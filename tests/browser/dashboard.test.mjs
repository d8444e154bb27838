// The dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core (which never downloads a browser). Starts the already-built tofulab
// binary on a fresh database, uploads runs through the API like a station would, then
// signs in and uses the pages as a person would. Screenshots go to docs/screenshots/.
//
// Environment:
//   TOFULAB_BIN                   the binary (default: target/debug/tofulab)
//   TOFULAB_BROWSER_DATABASE_URL  a fresh, empty database (default: a temporary SQLite file)
//   CHROMIUM                      the browser (default: /usr/bin/chromium)
//   SCREENSHOTS                   where screenshots go (default: docs/screenshots; "" = none)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.TOFULAB_BIN || path.join(root, "target/debug/tofulab");
const shots = process.env.SCREENSHOTS ?? path.join(root, "docs/screenshots");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tofulab-browser-"));

const USER_KEY = "tp_user_browserTestUserKey0000000001";
const STATION_A = "tp_station_browserBenchA000000000001";
const STATION_B = "tp_station_browserBenchB000000000001";
const PROCEDURE = "0190a000-0000-7000-8000-000000000001";

let server;
let base;
let browser;
let page;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function api(method, p, body, key = STATION_A, headers = {}) {
  const r = await fetch(base + p, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// Deterministic noise, so the screenshots and figures are the same on every run.
let seed = 42;
function rnd() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
function gauss() {
  return Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
}

const at = (day, minutes) => new Date(Date.UTC(2026, 2, 2 + day, 8, 0, 0) + minutes * 60000).toISOString();

function runBody(serial, day, minute, { vcc, tx, part = "PCBA-100", revision, batch, subUnits } = {}) {
  const vccOk = vcc >= 3.2 && vcc <= 3.4;
  const txOk = tx >= 12.0;
  const sweep = [1, 2, 3, 4, 5, 6].map((f) => -0.5 - 0.35 * f * f / 6 + 0.1 * gauss());
  return {
    serial_number: serial,
    procedure_id: PROCEDURE,
    procedure_version: day < 5 ? "v1.4.0" : "v1.5.0",
    part_number: part,
    revision_number: revision ?? (day < 4 ? "A" : "B"),
    batch_number: batch ?? (day < 6 ? "LOT-2026-03A" : "LOT-2026-03B"),
    started_at: at(day, minute),
    ended_at: at(day, minute + 2.5 + rnd()),
    outcome: vccOk && txOk ? "PASS" : "FAIL",
    sub_units: subUnits,
    phases: [
      {
        name: "power_on", outcome: vccOk ? "PASS" : "FAIL",
        started_at: at(day, minute), ended_at: at(day, minute + 0.4),
        measurements: [{
          name: "vcc", outcome: vccOk ? "PASS" : "FAIL", measured_value: Number(vcc.toFixed(4)), units: "V",
          validators: [{ operator: "range", expected_value: [3.2, 3.4], outcome: vccOk ? "PASS" : "FAIL" }],
        }],
      },
      {
        name: "rf_check", outcome: txOk ? "PASS" : "FAIL",
        started_at: at(day, minute + 0.5), ended_at: at(day, minute + 2.0),
        measurements: [
          {
            name: "tx_power", outcome: txOk ? "PASS" : "FAIL", measured_value: Number(tx.toFixed(3)), units: "dBm",
            validators: [{ operator: ">=", expected_value: 12.0, outcome: txOk ? "PASS" : "FAIL" }],
          },
          {
            name: "gain_sweep", outcome: "PASS", units: "dB",
            x_axis: { data: [1, 2, 3, 4, 5, 6], units: "GHz", name: "frequency" },
            y_axis: [{ data: sweep, name: "gain", units: "dB" }],
          },
        ],
      },
      { name: "cleanup", outcome: "PASS", started_at: at(day, minute + 2.1), ended_at: at(day, minute + 2.4) },
    ],
    logs: [
      { level: "INFO", timestamp: at(day, minute), message: `Testing ${serial}`, source_file: "main.py", line_number: 12 },
      { level: "DEBUG", timestamp: at(day, minute + 0.2), message: "DUT powered, 12 V rail stable", source_file: "power.py", line_number: 40 },
      ...(txOk ? [] : [{ level: "ERROR", timestamp: at(day, minute + 1.5), message: `TX power ${tx.toFixed(2)} dBm below 12 dBm`, source_file: "rf.py", line_number: 88 }]),
    ],
  };
}

async function shot(name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const seedFile = path.join(tmp, "seed.json");
  fs.writeFileSync(seedFile, JSON.stringify({
    organizations: [
      {
        name: "Acme Electronics", slug: "acme",
        users: [{ email: "lab@acme.test", name: "Lab Engineer", api_key: USER_KEY }],
        procedures: [{ id: PROCEDURE, name: "Board Functional Test" }],
        stations: [
          { name: "Bench A", api_key: STATION_A, procedures: [PROCEDURE] },
          { name: "Bench B", api_key: STATION_B, procedures: [PROCEDURE] },
        ],
      },
      {
        name: "Other Lab", slug: "other",
        users: [{ email: "x@other.test", api_key: "tp_user_browserOtherLab00000000000001" }],
      },
    ],
  }));
  const db = process.env.TOFULAB_BROWSER_DATABASE_URL || `sqlite://${path.join(tmp, "tofulab.db")}`;
  server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--database-url", db, "--seed", seedFile], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch { /* not up yet */ }
    if (i > 300) throw new Error("tofulab did not start");
    await new Promise((r) => setTimeout(r, 100));
  }

  // Ten days of production: six boards a day over two benches; failed boards retested.
  for (let day = 0; day < 10; day++) {
    for (let u = 0; u < 6; u++) {
      const serial = `SN-03${String(day + 2).padStart(2, "0")}-${String(u + 1).padStart(2, "0")}`;
      const key = u % 2 ? STATION_B : STATION_A;
      const vcc = 3.3 + 0.035 * gauss() + (day >= 7 ? 0.02 : 0);
      const tx = 13.0 + 0.55 * gauss();
      const body = runBody(serial, day, 30 * u, { vcc, tx });
      await api("POST", "/api/v2/runs", body, key);
      if (body.outcome === "FAIL") {
        const retest = runBody(serial, day, 30 * u + 12, { vcc: 3.3 + 0.02 * gauss(), tx: 13.2 + 0.2 * gauss() });
        await api("POST", "/api/v2/runs", retest, key);
      }
    }
  }
  // The board this test follows: a radio module inside it, a failed TX power, a photo.
  await api("POST", "/api/v2/runs", runBody("RADIO-77", 9, 590, { vcc: 3.31, tx: 13.1, part: "RF-MOD-7", revision: "C" }));
  const run = await api("POST", "/api/v2/runs",
    runBody("SN-BROWSER-1", 9, 600, { vcc: 3.29, tx: 11.42, subUnits: ["RADIO-77"] }));
  await api("PUT", "/api/v2/units/SN-BROWSER-1/children", { child_serial_number: "RADIO-77" });
  await api("POST", "/api/v2/runs", runBody("CHASSIS-9", 9, 560, { vcc: 3.3, tx: 13.0, part: "ENCL-2", revision: "A" }));
  await api("PUT", "/api/v2/units/CHASSIS-9/children", { child_serial_number: "SN-BROWSER-1" });

  browser = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    timezoneId: "UTC",
  });
  page = browser.pages()[0] ?? (await browser.newPage());

  // A scope capture as the run's attachment: drawn and photographed by the browser.
  await page.setContent(`<svg xmlns="http://www.w3.org/2000/svg" width="420" height="200" style="background:#111">
    <polyline fill="none" stroke="#3fe" stroke-width="2" points="${Array.from({ length: 84 }, (_, i) =>
      `${i * 5},${100 - 60 * Math.sin(i / 6) * Math.exp(-i / 60)}`).join(" ")}"/>
    <text x="10" y="190" fill="#ccc" font-family="monospace" font-size="12">CH1 500 mV/div  TX burst</text></svg>`);
  const png = await page.locator("svg").screenshot();
  const up = await api("POST", `/api/v2/runs/${run.id}/attachments`, { name: "tx-burst.png" });
  const put = await fetch(up.upload_url, { method: "PUT", body: png, headers: { "content-type": "image/png" } });
  assert.ok(put.ok, `upload: ${put.status}`);
  await api("POST", `/api/v2/attachments/${up.id}/finalize`);
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("sign in: pages need a session; a wrong key gets a message", async () => {
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login$/);
  await page.fill("input[name=api_key]", "tp_user_notAKeyOfThisServer000000");
  await page.click("button[type=submit]");
  assert.match(await page.textContent("p.error"), /not valid/);
  await shot("login");
  await page.fill("input[name=api_key]", USER_KEY);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  assert.equal(await page.textContent("header .org"), "Acme Electronics");
  const cookies = await browser.cookies(base);
  const session = cookies.find((c) => c.name === "tofulab_session");
  assert.ok(session.httpOnly);
  assert.equal(session.sameSite, "Strict");
  assert.ok(session.expires > Date.now() / 1000);
});

test("runs: the test's run is listed first, filters narrow the list", async () => {
  await page.goto(`${base}/`);
  const first = page.locator("#runs-body tr").first();
  assert.match(await first.textContent(), /SN-BROWSER-1/);
  assert.match(await first.textContent(), /FAIL/, "the outcome is written, not only coloured");
  await shot("runs");

  await page.selectOption("select[name=outcome]", "FAIL");
  await page.click("form.filters button[type=submit]");
  await page.waitForURL(/outcome=FAIL/);
  const outcomes = await page.locator("#runs-body tr .badge").evaluateAll((els) => els.map((e) => e.dataset.outcome));
  assert.ok(outcomes.length > 1);
  assert.ok(outcomes.every((o) => o === "FAIL"), outcomes.join());

  await page.fill("input[name=serial]", "sn-browser-1");
  await page.click("form.filters button[type=submit]");
  await page.waitForURL(/serial=sn-browser-1/);
  assert.equal(await page.locator("#runs-body tr").count(), 1);
});

test("runs: a new run appears without reloading", async () => {
  await page.goto(`${base}/`);
  const marker = await page.evaluate(() => (window.__same_page = Math.random()));
  await api("POST", "/api/v2/runs", {
    serial_number: "SN-LIVE-1", procedure_id: PROCEDURE, part_number: "PCBA-100",
    started_at: at(9, 700), ended_at: at(9, 702), outcome: "PASS",
  }, STATION_B);
  await page.locator("#runs-body tr").first().filter({ hasText: "SN-LIVE-1" }).waitFor({ timeout: 30000 });
  assert.equal(await page.evaluate(() => window.__same_page), marker, "no reload happened");
});

test("run: the failed measurement is highlighted; plot, logs and attachment are there", async () => {
  await page.goto(`${base}/?serial=SN-BROWSER-1`);
  await page.locator("#runs-body tr").first().locator("td:nth-child(2) a").click();
  await page.waitForURL(/\/runs\//);
  const failed = page.locator("table.measurements tr.out-of-limit");
  assert.equal(await failed.count(), 1);
  assert.match(await failed.textContent(), /tx_power/);
  assert.match(await failed.textContent(), /11\.42/);
  assert.match(await failed.textContent(), /x >= 12/);
  const bg = await failed.locator("td").first().evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(bg, "rgb(255, 235, 233)", "highlighted");
  assert.ok(await page.locator("svg.svg-chart polyline").count() >= 1, "the gain sweep is plotted");
  const img = page.locator(".preview img");
  await img.waitFor();
  assert.ok(await img.evaluate((e) => e.complete && e.naturalWidth > 0), "the image preview loaded");
  await shot("run");
  await page.click("nav.levels a:has-text('ERROR+')");
  const levels = await page.locator("table.logs .level").allTextContents();
  assert.deepEqual([...new Set(levels)], ["ERROR"]);
});

test("unit: genealogy links the sub-unit", async () => {
  await page.goto(`${base}/units/SN-BROWSER-1`);
  await page.locator("ul.tree a", { hasText: "RADIO-77" }).waitFor();
  await page.locator("ul.tree a", { hasText: "CHASSIS-9" }).waitFor();
  assert.ok(await page.locator("table.runs tr.run").count() >= 1);
  await shot("unit");
});

test("analytics: the yield on the page equals the JSON endpoint's; CSV downloads", async () => {
  const window = "from=2026-03-02&to=2026-03-11";
  await page.goto(`${base}/procedures/${PROCEDURE}?${window}`);
  const shown = (await page.textContent("[data-metric=fpy]")).trim();
  const json = await api("GET", `/api/lab/v1/yield?procedure_id=${PROCEDURE}&${window}`, undefined, USER_KEY);
  assert.ok(json.window.fpy > 0 && json.window.fpy < 1, `a real mix: ${json.window.fpy}`);
  assert.equal(shown, `${(json.window.fpy * 100).toFixed(1)}%`);
  assert.equal((await page.textContent("[data-metric=units]")).trim(), String(json.window.units));
  assert.ok(await page.locator("#capability tbody tr").count() >= 2);
  assert.ok(await page.locator("#charts svg").count() === 2, "control chart and histogram");
  await shot("procedure");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("#yield a.csv"),
  ]);
  const csv = fs.readFileSync(await download.path(), "utf8").trim().split("\n");
  assert.equal(csv[0], "date,group,units,fpy,spy,tpy,lpy");
  assert.equal(csv.length, 11, "a row per day");
  for (const [i, row] of json.data.entries()) {
    const cells = csv[i + 1].split(",");
    assert.equal(cells[0], row.date);
    assert.equal(Number(cells[2]), row.units);
    assert.equal(cells[3] === "" ? null : Number(cells[3]), row.fpy);
  }
});

test("the API docs page lists every v2 operation, with nothing loaded from elsewhere", async () => {
  const foreign = [];
  const docs = await browser.newPage();
  await docs.route("**/*", (route) => {
    if (route.request().url().startsWith(base)) return route.continue();
    foreign.push(route.request().url());
    return route.abort();
  });
  await docs.goto(`${base}/api/docs/`);
  await docs.locator(".opblock").first().waitFor();
  assert.equal(await docs.locator(".opblock").count(), 59);
  assert.ok(await docs.locator(".opblock-summary-path", { hasText: "/v2/runs/{id}" }).count() >= 1);
  assert.deepEqual(foreign, [], "the page needs no network beyond tofulab");
  if (shots) await docs.screenshot({ path: path.join(shots, "api-docs.png") });
  await docs.close();
});

test("sign out ends the session", async () => {
  await page.goto(`${base}/`);
  await page.click("form.logout button");
  await page.waitForURL(/\/login$/);
  await page.goto(`${base}/procedures/${PROCEDURE}`);
  assert.match(page.url(), /\/login\?next=/);
});
