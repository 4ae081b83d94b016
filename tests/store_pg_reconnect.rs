//! A PostgreSQL server that drops the dialer's connection (a restart, a
//! failover, a pooler's idle timeout — here `pg_terminate_backend`) does not
//! cut the node off its store: the next call connects again. (It used to
//! fail every call until the node was restarted.)

mod store_common;

use store_common::*;

/// Ends every session of `database` but the admin's own.
fn drop_connections(database: &str) -> i64 {
    let mut admin =
        postgres::Client::connect(&format!("{}/postgres", pg_server()), postgres::NoTls)
            .expect("connect as admin");
    let rows = admin
        .query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .expect("terminate the sessions");
    rows[0].get(0)
}

#[test]
fn the_store_connects_again_after_the_server_drops_its_connection() {
    let store = postgres_store();
    let database = store.url.rsplit('/').next().unwrap().to_string();
    let campaign = store
        .sync_campaign(&rules("demo"))
        .expect("create the campaign");
    for round in 0..3 {
        assert_eq!(drop_connections(&database), 1, "round {round}: one session");
        // The very first call after the drop is answered, not failed.
        assert_eq!(
            store.campaign_id("demo").expect("the store answers again"),
            Some(campaign),
            "round {round}"
        );
    }
}
