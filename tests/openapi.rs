//! The OpenAPI document tofulab serves (`/api/v2/openapi.json`, generated from its own
//! types) against the vendor's contract (`tests/fixtures/contract-openapi.json`, a copy of
//! the contract's `openapi.json`), operation by operation. The document must describe a
//! server every contract client works with:
//! - the same paths and methods, no more and no fewer;
//! - every contract parameter, with the same enum values, required here only where the
//!   contract requires it (tofulab may accept more parameters: its extra filters);
//! - request bodies: every contract property, the same enums, and nothing required here
//!   that the contract leaves optional, all the way down (tofulab may accept more: more
//!   properties, a property left out, any JSON where the contract lists a union);
//! - responses: every property the contract requires, required here too, with the same
//!   enums, all the way down (tofulab may return more, as BEHAVIOR.md asks: `email` of a
//!   creator, `identifier` of a procedure, …).
//!
//! A response property that tofulab always answers `null` or never has a value for (a
//! deployment: tofulab has none) fits any contract schema. Names of schemas,
//! descriptions, formats and error responses are free to differ: the check is about what
//! a client can send and what it gets back.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

struct Doc<'a> {
    root: &'a Value,
}

impl<'a> Doc<'a> {
    /// Follows `$ref`s to the schema itself.
    fn resolve(&self, mut v: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else {
                return v;
            };
            let path = r.strip_prefix("#/").expect("a local $ref");
            v = path
                .split('/')
                .fold(self.root, |node, key| &node[key.replace("~1", "/")]);
        }
        v
    }

    /// The schema with `null` taken out of it: `anyOf/oneOf [T, null]` is `T`. A nullable
    /// field's nullability is what "required" already says in both documents.
    fn non_null(&self, v: &'a Value) -> &'a Value {
        let v = self.resolve(v);
        for key in ["anyOf", "oneOf"] {
            if let Some(variants) = v.get(key).and_then(Value::as_array) {
                let rest: Vec<&Value> = variants
                    .iter()
                    .filter(|s| self.resolve(s).get("type") != Some(&Value::from("null")))
                    .collect();
                if rest.len() == 1 && rest.len() < variants.len() {
                    return self.non_null(rest[0]);
                }
            }
        }
        v
    }

    /// The variants of a union that are not `null`.
    fn non_null_variants(&self, variants: &'a [Value]) -> Vec<&'a Value> {
        variants
            .iter()
            .filter(|s| self.resolve(s).get("type") != Some(&Value::from("null")))
            .collect()
    }

    /// An `allOf` (a flattened struct) as one object: its parts' properties and required
    /// fields together.
    fn merged(&self, v: &'a Value) -> Value {
        let Some(parts) = v.get("allOf").and_then(Value::as_array) else {
            return v.clone();
        };
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for part in parts {
            let part = self.merged(self.non_null(part));
            if let Some(p) = part.get("properties").and_then(Value::as_object) {
                properties.extend(p.clone());
            }
            if let Some(r) = part.get("required").and_then(Value::as_array) {
                required.extend(r.clone());
            }
        }
        serde_json::json!({"type": "object", "properties": properties, "required": required})
    }

    fn operations(&self) -> BTreeMap<String, &'a Value> {
        let mut out = BTreeMap::new();
        for (path, item) in self.root["paths"].as_object().unwrap() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    out.insert(format!("{} {path}", m.to_uppercase()), op);
                }
            }
        }
        out
    }
}

/// Enum values (or a `const`) of a schema, or of its items for an array.
fn enum_values(doc: &Doc, s: &Value) -> Option<BTreeSet<String>> {
    let s = doc.non_null(s);
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        // A nullable enum lists `null`; nullability is not what is compared here.
        return Some(
            values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| v.to_string())
                .collect(),
        );
    }
    if let Some(c) = s.get("const") {
        return Some(BTreeSet::from([c.to_string()]));
    }
    None
}

fn names(v: Option<&Value>) -> BTreeSet<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// Which way a schema is read: what a client sends, or what it gets back.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Request,
    Response,
}

/// Compares two schemas: enums; for objects the properties and required fields (see the
/// module comment for which way each may differ) and each shared property; for arrays
/// the items. Unions of several non-null shapes are compared by their count only.
#[allow(clippy::too_many_arguments)]
fn compare(
    contract: &Doc,
    ours: &Doc,
    side: Side,
    c: &Value,
    o: &Value,
    at: &str,
    problems: &mut Vec<String>,
    depth: usize,
) {
    if depth > 24 {
        return;
    }
    let (c, o) = (contract.non_null(c), ours.non_null(o));
    let (c, o) = (&contract.merged(c), &ours.merged(o));
    if is_any(o) {
        return; // any JSON: accepts and may answer whatever the contract lists
    }
    if side == Side::Response
        && (o.get("type") == Some(&Value::from("null"))
            || o.get("enum") == Some(&serde_json::json!([])))
    {
        return; // always null, or no value at all: within every contract schema
    }
    // Enums: every value a client may send is accepted here; every value answered here
    // is one the contract lists.
    let (ce, oe) = (enum_values(contract, c), enum_values(ours, o));
    let fits = match side {
        Side::Request => oe
            .as_ref()
            .is_none_or(|oe| ce.as_ref().is_some_and(|ce| ce.is_subset(oe))),
        Side::Response => ce
            .as_ref()
            .is_none_or(|ce| oe.as_ref().is_some_and(|oe| oe.is_subset(ce))),
    };
    if !fits {
        problems.push(format!("{at}: enum {ce:?} in the contract, {oe:?} here"));
    }
    if let Some(cp) = c.get("properties").and_then(Value::as_object) {
        let Some(op) = o.get("properties").and_then(Value::as_object) else {
            problems.push(format!(
                "{at}: an object with properties in the contract, not here"
            ));
            return;
        };
        let (cn, on) = (names(Some(&c["properties"])), names(Some(&o["properties"])));
        let (cr, or) = (names(c.get("required")), names(o.get("required")));
        match side {
            Side::Request => {
                let missing: Vec<_> = cn.difference(&on).collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{at}: properties the contract accepts, missing here: {missing:?}"
                    ));
                }
                let extra: Vec<_> = or.difference(&cr).collect();
                if !extra.is_empty() {
                    problems.push(format!(
                        "{at}: required here, optional in the contract: {extra:?}"
                    ));
                }
            }
            Side::Response => {
                let missing: Vec<_> = cr.difference(&or).collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{at}: required by the contract, not required here: {missing:?}"
                    ));
                }
            }
        }
        for (name, cs) in cp {
            if let Some(os) = op.get(name) {
                compare(
                    contract,
                    ours,
                    side,
                    cs,
                    os,
                    &format!("{at}.{name}"),
                    problems,
                    depth + 1,
                );
            }
        }
        return;
    }
    if let Some(ci) = c.get("items") {
        match o.get("items") {
            Some(oi) => compare(
                contract,
                ours,
                side,
                ci,
                oi,
                &format!("{at}[]"),
                problems,
                depth + 1,
            ),
            None => problems.push(format!("{at}: an array in the contract, not here")),
        }
        return;
    }
    for key in ["anyOf", "oneOf"] {
        let Some(cv) = c.get(key).and_then(Value::as_array) else {
            continue;
        };
        let cv = contract.non_null_variants(cv);
        let ov = o
            .get("anyOf")
            .or(o.get("oneOf"))
            .and_then(Value::as_array)
            .map(|v| ours.non_null_variants(v));
        if ov.as_ref().map(Vec::len) == Some(cv.len()) {
            continue;
        }
        // One object here for a union of objects there: it must take every variant's
        // properties.
        if side == Side::Request && o.get("properties").is_some() {
            for (i, variant) in cv.iter().enumerate() {
                let variant = contract.non_null(variant);
                if variant.get("properties").is_some() {
                    let lenient = serde_json::json!({"properties": variant["properties"]});
                    compare(
                        contract,
                        ours,
                        side,
                        &lenient,
                        o,
                        &format!("{at}<{i}>"),
                        problems,
                        depth + 1,
                    );
                }
            }
            continue;
        }
        problems.push(format!(
            "{at}: a union of {} in the contract, {:?} here",
            cv.len(),
            ov.as_ref().map(Vec::len)
        ));
    }
}

/// A schema that admits any JSON value (`serde_json::Value`).
fn is_any(s: &Value) -> bool {
    [
        "type",
        "properties",
        "items",
        "anyOf",
        "oneOf",
        "allOf",
        "enum",
        "const",
        "$ref",
    ]
    .iter()
    .all(|k| s.get(k).is_none())
}

/// `(in, name)` → the parameter.
fn parameters<'a>(doc: &Doc<'a>, op: &'a Value) -> BTreeMap<(String, String), &'a Value> {
    op.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| doc.resolve(p))
        .map(|p| {
            (
                (
                    p["in"].as_str().unwrap().to_string(),
                    p["name"].as_str().unwrap().to_string(),
                ),
                p,
            )
        })
        .collect()
}

/// The schema of the first 2xx response, as JSON.
fn success_schema<'a>(doc: &Doc<'a>, op: &'a Value) -> Option<&'a Value> {
    let responses = op["responses"].as_object()?;
    let (_, r) = responses
        .iter()
        .find(|(status, _)| status.starts_with('2'))?;
    doc.resolve(r)
        .get("content")?
        .get("application/json")?
        .get("schema")
}

fn compare_operation(
    contract: &Doc,
    ours: &Doc,
    name: &str,
    c: &Value,
    o: &Value,
    problems: &mut Vec<String>,
) {
    let (cp, op) = (parameters(contract, c), parameters(ours, o));
    let (ck, ok): (BTreeSet<_>, BTreeSet<_>) = (cp.keys().collect(), op.keys().collect());
    let missing: Vec<_> = ck.difference(&ok).collect();
    if !missing.is_empty() {
        problems.push(format!("{name}: parameters missing here {missing:?}"));
    }
    for (key, cparam) in &cp {
        let Some(oparam) = op.get(key) else { continue };
        let at = format!("{name} parameter {}", key.1);
        let (cr, or) = (cparam["required"] == true, oparam["required"] == true);
        if or && !cr {
            problems.push(format!("{at}: required here, optional in the contract"));
        }
        compare(
            contract,
            ours,
            Side::Request,
            &cparam["schema"],
            &oparam["schema"],
            &at,
            problems,
            0,
        );
    }
    let (cb, ob) = (
        c.get("requestBody").map(|b| contract.resolve(b)),
        o.get("requestBody").map(|b| ours.resolve(b)),
    );
    match (cb, ob) {
        (Some(cb), Some(ob)) => {
            let (cr, or) = (cb["required"] == true, ob["required"] == true);
            if cr != or {
                problems.push(format!(
                    "{name} body: required {cr} in the contract, {or} here"
                ));
            }
            let (ct, ot) = (names(cb.get("content")), names(ob.get("content")));
            if ct != ot {
                problems.push(format!(
                    "{name} body: content types {ct:?} in the contract, {ot:?} here"
                ));
            }
            for t in ct.intersection(&ot) {
                compare(
                    contract,
                    ours,
                    Side::Request,
                    &cb["content"][t]["schema"],
                    &ob["content"][t]["schema"],
                    &format!("{name} body"),
                    problems,
                    0,
                );
            }
        }
        (None, None) => {}
        (c, _) => problems.push(format!(
            "{name}: a request body in the contract: {}, here: {}",
            c.is_some(),
            ob.is_some()
        )),
    }
    match (success_schema(contract, c), success_schema(ours, o)) {
        (Some(cs), Some(os)) => compare(
            contract,
            ours,
            Side::Response,
            cs,
            os,
            &format!("{name} response"),
            problems,
            0,
        ),
        (None, None) => {}
        (cs, os) => problems.push(format!(
            "{name}: a JSON response in the contract: {}, here: {}",
            cs.is_some(),
            os.is_some()
        )),
    }
}

#[tokio::test]
async fn the_document_matches_the_contract_operation_by_operation() {
    let srv = TestServer::start().await;
    let r = srv
        .call(reqwest::Method::GET, "/api/v2/openapi.json", None, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let served = r.json;
    if let Ok(path) = std::env::var("TOFULAB_OPENAPI_DUMP") {
        std::fs::write(path, serde_json::to_string_pretty(&served).unwrap()).unwrap();
    }
    assert_eq!(served["openapi"], "3.1.0");
    // Every reference resolves: a dangling one would read as an empty schema below.
    let text = served.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            served["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
    assert_eq!(served["servers"][0]["url"], "/api");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/contract-openapi.json"
    ))
    .unwrap();
    let contract_root: Value = serde_json::from_str(&text).unwrap();
    let (contract, ours) = (
        Doc {
            root: &contract_root,
        },
        Doc { root: &served },
    );
    let (cops, oops) = (contract.operations(), ours.operations());
    let (ck, ok): (BTreeSet<_>, BTreeSet<_>) = (cops.keys().collect(), oops.keys().collect());
    let mut problems = Vec::new();
    for missing in ck.difference(&ok) {
        problems.push(format!("{missing}: in the contract, not in the document"));
    }
    for extra in ok.difference(&ck) {
        problems.push(format!("{extra}: in the document, not in the contract"));
    }
    for (name, c) in &cops {
        if let Some(o) = oops.get(name) {
            compare_operation(&contract, &ours, name, c, o, &mut problems);
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn the_document_is_public_and_the_docs_page_is_served_offline() {
    let srv = TestServer::start().await;
    // No key: the document describes the API, it holds no data.
    let r = srv
        .call(reqwest::Method::GET, "/api/v2/openapi.json", None, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let ops: usize = r.json["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
        .sum();
    assert_eq!(ops, 59);
    // Every operation documents the error envelope.
    let created = &r.json["paths"]["/v2/batches"]["post"]["responses"];
    for status in ["400", "401", "404", "409", "429", "500", "503"] {
        assert!(created.get(status).is_some(), "no {status} response");
    }
    let page = srv
        .raw(reqwest::Method::GET, "/api/docs/")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // The page's assets come from the binary, and it loads the document from this server.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let r = srv
            .raw(reqwest::Method::GET, &format!("/api/docs/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let body = r.text().await.unwrap();
        assert!(body.len() > 100, "{asset}");
        if asset == "swagger-initializer.js" {
            assert!(body.contains("/api/v2/openapi.json"), "{body}");
        }
        assert!(
            !body.contains("https://unpkg.com"),
            "{asset} loads from the network"
        );
    }
}
