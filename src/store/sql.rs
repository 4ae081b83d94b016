//! The small SQL layer both backends implement: values, one connection
//! trait, transactions. The store's logic (`logic.rs`) is written once
//! against it; SQL text uses `$1, $2, …` placeholders, which SQLite reads as
//! `?1, ?2, …` after [`to_sqlite`].

use super::StoreError;

/// A SQL value. Integers are 64-bit everywhere (`BIGINT` on PostgreSQL).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            Val::Text(t) => t.parse().unwrap_or(0),
            Val::Null => 0,
        }
    }

    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Val::Null => None,
            other => Some(other.int()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Val::Text(t) => t.clone(),
            Val::Int(i) => i.to_string(),
            Val::Null => String::new(),
        }
    }

    pub fn opt_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            other => Some(other.text()),
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

pub type Row = Vec<Val>;

/// One database connection, as the store's logic uses it.
pub trait Conn: Send {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError>;
    /// Streams rows to `each` without holding them all.
    fn query_each(
        &mut self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(&[Val]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`).
    fn begin(&mut self) -> Result<(), StoreError>;
    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL; nothing on SQLite, where the
    /// write transaction already excludes other writers.
    fn lock_clause(&self) -> &'static str;
}

/// Runs `body` in a transaction: commit on Ok, roll back on Err.
pub fn in_tx<T>(
    conn: &mut dyn Conn,
    body: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.begin()?;
    match body(conn) {
        Ok(value) => {
            conn.batch("COMMIT")?;
            Ok(value)
        }
        Err(error) => {
            let _ = conn.batch("ROLLBACK");
            Err(error)
        }
    }
}

/// `$1`, `$2`, … → `?1`, `?2`, … (SQLite's numbered parameters).
pub fn to_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// `($from, $from+1, …)` placeholders for an IN list of `n` values.
pub fn placeholders(from: usize, n: usize) -> String {
    let list: Vec<String> = (from..from + n).map(|i| format!("${i}")).collect();
    format!("({})", list.join(","))
}
