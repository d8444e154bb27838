//! Turning files stations produce into runs: OpenHTF JSON test records (the legacy
//! `POST /api/v1/import` and v2 `imports.structured`) and CSV files with a column
//! mapping (`imports.tabular`). Parsing only: these modules read bytes and produce the
//! plain input of `Db::create_run`; they know nothing of HTTP or SQL.

pub mod lenient_json;
pub mod openhtf;
pub mod validators;
