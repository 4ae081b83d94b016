//! Helpers for the store tests: a fresh store per test on either backend.
//!
//! PostgreSQL: the server at `OUTDIAL_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`), which `scripts/test` installs and
//! starts when missing. Each test gets its own database
//! `outdial_test_<pid>_<n>`, dropped afterwards. If the server cannot be
//! reached the PostgreSQL tests fail; they never skip.

#![allow(dead_code)]

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use outdial::campaign::import::ImportRow;
use outdial::campaign::model::PhoneKind;
use outdial::campaign::rules::CampaignRules;
use outdial::campaign::window::CallingWindow;
use outdial::store::{self, CampaignId, Store};

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

pub fn pg_server() -> String {
    std::env::var("OUTDIAL_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A PostgreSQL database that is dropped with this value.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let server = pg_server();
        let mut admin = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {server} ({e}); run scripts/test, which \
                     installs and starts it, or set OUTDIAL_TEST_PG"
                )
            });
        let name = format!(
            "outdial_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop a leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        PgDatabase {
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) =
            postgres::Client::connect(&format!("{}/postgres", pg_server()), postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub enum Guard {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

/// A store for one test, with what must outlive it.
pub struct TestStore {
    pub store: Box<dyn Store>,
    pub url: String,
    // Dropped after the store (field order).
    _guard: Guard,
}

impl Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        self.store.as_ref()
    }
}

impl TestStore {
    /// Another connection to the same database (a second dialer node).
    pub fn reopen(&self) -> Box<dyn Store> {
        store::open(&self.url).expect("reopen the store")
    }
}

pub fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    TestStore {
        store: store::open(&url).expect("open SQLite store"),
        url,
        _guard: Guard::Sqlite(dir),
    }
}

pub fn postgres_store() -> TestStore {
    let db = PgDatabase::create();
    let url = db.url.clone();
    TestStore {
        store: store::open(&url).expect("open PostgreSQL store"),
        url,
        _guard: Guard::Postgres(db),
    }
}

/// Wednesday 2026-07-15 12:00 in New York (16:00 UTC).
pub fn noon_ny() -> Timestamp {
    "2026-07-15T16:00:00Z".parse().unwrap()
}

pub fn rules(name: &str) -> CampaignRules {
    CampaignRules::with_defaults(name)
}

/// Rules whose window is always open (for tests about other things).
pub fn always_open(name: &str) -> CampaignRules {
    let mut rules = CampaignRules::with_defaults(name);
    rules.window = CallingWindow {
        start_min: 0,
        end_min: 24 * 60,
        days: [true; 7],
    };
    rules
}

pub fn row(line: u64, id: &str, phones: &[&str]) -> ImportRow {
    ImportRow {
        line,
        external_id: id.to_string(),
        name: format!("Contact {id}"),
        time_zones: "America/New_York".into(),
        priority: 0,
        custom_json: "{}".into(),
        phones: phones
            .iter()
            .map(|p| (PhoneKind::Home, p.to_string()))
            .collect(),
    }
}

/// `n` records `r0…` with one distinct number each.
pub fn rows(n: usize) -> Vec<ImportRow> {
    (0..n)
        .map(|i| {
            let mut r = row(i as u64 + 2, &format!("r{i}"), &[]);
            r.phones = vec![(PhoneKind::Home, format!("+1202{:07}", i))];
            r
        })
        .collect()
}

pub fn campaign_with(store: &dyn Store, rules: &CampaignRules, rows: &[ImportRow]) -> CampaignId {
    let id = store.sync_campaign(rules).unwrap();
    let run = store.begin_import(id, noon_ny()).unwrap();
    store.import_batch(id, run, rows).unwrap();
    id
}
