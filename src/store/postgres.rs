//! The PostgreSQL backend: several dialer nodes share one database; the
//! hopper locks candidates with `FOR UPDATE SKIP LOCKED`, so two nodes never
//! lease the same record, and a unique key on the numbers being dialed stops
//! one number being dialed twice at once.

use std::collections::HashMap;
use std::error::Error;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use super::StoreError;
use super::logic::SqlStore;
use super::migrations::{Flavor, migrate};
use super::sql::{Conn, Row, Val};

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => {
                if *ty == Type::INT4 {
                    i32::try_from(*i)?.to_sql(ty, out)
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
                    i.to_string().to_sql(ty, out)
                } else {
                    i.to_sql(ty, out)
                }
            }
            Val::Text(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn row_values(row: &postgres::Row, out: &mut Vec<Val>) -> Result<(), StoreError> {
    out.clear();
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Val::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Val::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(Val::from)
        } else if *ty == Type::NUMERIC {
            return Err(StoreError::Corrupt(format!(
                "column {} is NUMERIC; cast it to BIGINT",
                column.name()
            )));
        } else {
            row.try_get::<_, Option<String>>(i)?.map(Val::Text)
        };
        out.push(value.unwrap_or(Val::Null));
    }
    Ok(())
}

pub struct PostgresConn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// To connect again when the server closed the connection.
    config: postgres::Config,
}

impl PostgresConn {
    /// A new connection in place of one the server closed (a restart, a
    /// failover, a pooler's idle timeout): without it the node could not
    /// reach its store again until restarted.
    fn reconnect(&mut self) -> Result<(), StoreError> {
        self.client = self.config.connect(NoTls)?;
        self.statements.clear();
        tracing::warn!("connected to PostgreSQL again after the connection was closed");
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.statements.len() > 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// The server ended this session (`pg_terminate_backend`, a shutdown): the
/// connection is gone even if the client has not noticed yet.
fn lost(error: &postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| code.code().starts_with("57P") || code.code().starts_with("08"))
}

fn refs(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Conn for PostgresConn {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, &refs(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let rows = self.client.query(&statement, &refs(params))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::new();
            row_values(row, &mut values)?;
            out.push(values);
        }
        Ok(out)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(&[Val]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let statement = self.statement(sql)?;
        let mut rows = self.client.query_raw(&statement, refs(params))?;
        let mut values = Vec::new();
        while let Some(row) = rows.next()? {
            row_values(&row, &mut values)?;
            each(&values)?;
        }
        Ok(())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client.batch_execute(sql)?)
    }

    /// Every store call is one transaction, so a lost connection is
    /// replaced here, where nothing of the transaction has run yet — never
    /// in the middle of one (its earlier statements died with the old
    /// connection; the error reaches the caller, who may try again).
    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.client.is_closed() {
            match self.client.batch_execute("BEGIN") {
                Ok(()) => return Ok(()),
                Err(error) if !(error.is_closed() || self.client.is_closed() || lost(&error)) => {
                    return Err(error.into());
                }
                Err(_) => {}
            }
        }
        self.reconnect()?;
        self.batch("BEGIN")
    }

    fn lock_clause(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
}

/// How long a connection attempt may take unless the URL says otherwise.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to and migrates a PostgreSQL store.
pub fn open(url: &str) -> Result<SqlStore, StoreError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        // A server that does not answer (a host down, packets dropped)
        // must not hold the store for the TCP timeout of minutes while
        // every store call waits behind it; `?connect_timeout=` overrides.
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let client = config.connect(NoTls)?;
    let mut conn = PostgresConn {
        client,
        statements: HashMap::new(),
        config,
    };
    migrate(&mut conn, Flavor::Postgres)?;
    Ok(SqlStore::new(Box::new(conn), Flavor::Postgres))
}
