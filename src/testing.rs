//! tofulab inside another project's tests (cargo feature `testing`): a server in the same
//! process, on a free port, over a fresh SQLite database in a temporary directory, with one
//! organization whose keys and procedure are ready to use. Nothing to install or start.
//!
//! ```toml
//! [dev-dependencies]
//! tofulab = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! use tofupilot::config::ClientConfig;
//! use tofupilot::types::LogGetOutcome;
//! use tofupilot::TofuPilot;
//!
//! #[tokio::main]
//! async fn main() {
//!     let server = tofulab::testing::TestServer::start().await;
//!     let station = TofuPilot::with_config(
//!         ClientConfig::new(&server.station_api_key).base_url(&server.api_url),
//!     );
//!     let now = chrono::Utc::now();
//!     let created = station
//!         .runs()
//!         .create()
//!         .procedure_id(&server.procedure_id)
//!         .serial_number("SN-0001")
//!         .part_number("PCB-A")
//!         .started_at(now)
//!         .ended_at(now)
//!         .outcome(LogGetOutcome::Pass)
//!         .send()
//!         .await
//!         .unwrap();
//!
//!     let user = TofuPilot::with_config(
//!         ClientConfig::new(&server.user_api_key).base_url(&server.api_url),
//!     );
//!     let run = user.runs().get().id(&created.id).send().await.unwrap();
//!     assert_eq!(run.unit.serial_number, "SN-0001");
//!     server.stop().await;
//! }
//! ```

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apikey::{self, KeyKind};
use crate::db::seed::{SeedOrganization, SeedProcedure, SeedStation, SeedUser};
use crate::db::Db;
use crate::middleware::rate_limit::RateLimiter;
use crate::{AppState, Settings};

/// A running in-process tofulab. Dropping it stops the server; `stop` also waits for it.
pub struct TestServer {
    /// Base URL (`http://127.0.0.1:PORT`): for signed file URLs and the dashboard.
    pub url: String,
    /// What the official clients take as their base URL (`{url}/api`).
    pub api_url: String,
    pub organization_id: String,
    pub user_api_key: String,
    pub station_api_key: String,
    pub station_id: String,
    /// A procedure the station is linked to.
    pub procedure_id: String,
    /// The storage, for assertions a test wants to make below the API.
    pub db: Db,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the default settings; panics if it cannot (a test helper).
    pub async fn start() -> TestServer {
        Self::start_with(Settings::default())
            .await
            .unwrap_or_else(|e| panic!("tofulab test server: {e}"))
    }

    /// Starts a server with `settings` (rate limiting off).
    pub async fn start_with(settings: Settings) -> Result<TestServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("tofulab-test-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let db = Db::connect(&format!(
            "sqlite://{}",
            dir.path().join("tofulab.db").display()
        ))
        .await?;
        let org = SeedOrganization {
            name: "Test Lab".into(),
            slug: None,
            users: vec![SeedUser {
                email: "tester@tofulab.test".into(),
                name: Some("Tester".into()),
                api_key: Some(apikey::generate(KeyKind::User)),
            }],
            teams: vec![],
            procedures: vec![SeedProcedure {
                id: None,
                name: "Functional Test".into(),
            }],
            stations: vec![SeedStation {
                id: None,
                name: "Test Station".into(),
                api_key: Some(apikey::generate(KeyKind::Station)),
                procedures: vec!["Functional Test".into()],
                team: None,
            }],
        };
        let created = db
            .create_organization(&org)
            .await
            .map_err(|e| format!("cannot create the test organization: {e}"))?;
        let state = AppState::new(db.clone(), settings, RateLimiter::new(None))
            .await
            .map_err(|e| format!("cannot start: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the address: {e}"))?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve(listener, state, async {
            let _ = rx.await;
        }));
        let url = format!("http://{addr}");
        Ok(TestServer {
            api_url: format!("{url}/api"),
            url,
            organization_id: created.organization.id.to_string(),
            user_api_key: org.users[0].api_key.clone().unwrap_or_default(),
            station_api_key: org.stations[0].api_key.clone().unwrap_or_default(),
            station_id: created.stations[0].id.to_string(),
            procedure_id: created.procedures[0].id.to_string(),
            db,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and closes the database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.db.close().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
