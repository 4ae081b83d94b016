//! The SQLite backend: one file, WAL journal, one connection behind the
//! store's mutex (SQLite has one writer at a time anyway).

use std::path::Path;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ToSql, params_from_iter};

use super::StoreError;
use super::logic::SqlStore;
use super::migrations::{Flavor, migrate};
use super::sql::{Conn, Row, Val, to_sqlite};

impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Owned(Value::Null),
            Val::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Val::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

fn val(value: ValueRef<'_>) -> Val {
    match value {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

pub struct SqliteConn {
    conn: Connection,
}

impl Conn for SqliteConn {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let mut statement = self.conn.prepare_cached(&to_sqlite(sql))?;
        Ok(statement.execute(params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.query_each(sql, params, &mut |row| {
            out.push(row.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(&[Val]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(&to_sqlite(sql))?;
        let columns = statement.column_count();
        let mut rows = statement.query(params_from_iter(params.iter()))?;
        let mut values = Vec::with_capacity(columns);
        while let Some(row) = rows.next()? {
            values.clear();
            for i in 0..columns {
                values.push(val(row.get_ref(i)?));
            }
            each(&values)?;
        }
        Ok(())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.batch("BEGIN IMMEDIATE")
    }

    fn lock_clause(&self) -> &'static str {
        ""
    }
}

/// Opens (creating if needed) and migrates a SQLite store file.
pub fn open(path: &Path) -> Result<SqlStore, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_prepared_statement_cache_capacity(256);
    let mut conn = SqliteConn { conn };
    migrate(&mut conn, Flavor::Sqlite)?;
    Ok(SqlStore::new(Box::new(conn), Flavor::Sqlite))
}
