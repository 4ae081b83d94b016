//! SQL of `node_presence` (see [`crate::driver::node_presence`]): which
//! process runs each node name, and when it last said so.

use jiff::Timestamp;

use super::sql::Conn;
use super::{NODE_FORGOTTEN_AFTER, NodeClaim, NodePresence, StoreError, from_ms, ms};

/// [`super::Store::claim_node`].
pub(super) fn claim(
    conn: &mut dyn Conn,
    node: &str,
    instance: &str,
    now: Timestamp,
    replace: Option<&str>,
) -> Result<NodeClaim, StoreError> {
    // Nodes silent for a week are forgotten (a container's name
    // changes with each new container: its rows would pile up in
    // the list of nodes, all down).
    let forgotten = now
        .checked_sub(NODE_FORGOTTEN_AFTER)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    conn.exec(
        "DELETE FROM node_presence WHERE seen_at < $1 AND node <> $2",
        &[ms(forgotten).into(), node.into()],
    )?;
    // Two processes claiming at once: one inserts, the other finds
    // its row (locked on PostgreSQL until the first commits).
    conn.exec(
        "INSERT INTO node_presence (node, instance, seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (node) DO NOTHING",
        &[node.into(), instance.into(), ms(now).into()],
    )?;
    let sql = format!(
        "SELECT instance, seen_at FROM node_presence WHERE node = $1{}",
        conn.lock_clause()
    );
    let rows = conn.query(&sql, &[node.into()])?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt(format!("node `{node}` has no presence row")))?;
    let holder = row[0].text();
    if holder != instance && replace != Some(holder.as_str()) {
        return Ok(NodeClaim::HeldBy {
            instance: holder,
            seen_at: from_ms(row[1].int()),
        });
    }
    conn.exec(
        "UPDATE node_presence SET instance = $2, seen_at = $3 WHERE node = $1",
        &[node.into(), instance.into(), ms(now).into()],
    )?;
    Ok(NodeClaim::Claimed)
}

/// [`super::Store::node_heartbeat`].
pub(super) fn heartbeat(
    conn: &mut dyn Conn,
    node: &str,
    instance: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let updated = conn.exec(
        "UPDATE node_presence SET seen_at = $3 WHERE node = $1 AND instance = $2",
        &[node.into(), instance.into(), ms(now).into()],
    )?;
    if updated > 0 {
        return Ok(true);
    }
    // Not ours: held by another process, or the row is gone (an
    // operator emptied the table, a database restored from before
    // this start): a free name is taken back, a held one is not.
    let inserted = conn.exec(
        "INSERT INTO node_presence (node, instance, seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (node) DO NOTHING",
        &[node.into(), instance.into(), ms(now).into()],
    )?;
    Ok(inserted > 0)
}

/// [`super::Store::release_node`].
pub(super) fn release(conn: &mut dyn Conn, node: &str, instance: &str) -> Result<(), StoreError> {
    conn.exec(
        "DELETE FROM node_presence WHERE node = $1 AND instance = $2",
        &[node.into(), instance.into()],
    )?;
    Ok(())
}

/// [`super::Store::nodes`].
pub(super) fn list(conn: &mut dyn Conn) -> Result<Vec<NodePresence>, StoreError> {
    Ok(conn
        .query(
            "SELECT node, instance, seen_at FROM node_presence ORDER BY node",
            &[],
        )?
        .iter()
        .map(|r| NodePresence {
            node: r[0].text(),
            instance: r[1].text(),
            seen_at: from_ms(r[2].int()),
        })
        .collect())
}
