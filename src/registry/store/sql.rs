//! One store implementation over two SQL engines: SQLite (rusqlite) and PostgreSQL
//! (tokio-postgres). The store's code talks to a [`Tx`] with rusqlite's shape (`execute`,
//! `query_row`, `prepare`, `query_map`, `Row::get`) and rusqlite's value types (`ToSql` for
//! parameters, `FromSql` for columns), so every rule and query is written once.
//!
//! Values cross to PostgreSQL with SQLite's typing: integers, reals, text and blobs, converted to
//! whatever type the server inferred for a parameter or sent for a column (a bigint, an int, a
//! boolean, a numeric, citext, json…). The PostgreSQL schema keeps SQLite's column types (BIGINT
//! for INTEGER, RFC 3339 TEXT for times, 0/1 for flags), so nothing is lost either way.
//!
//! The few dialect differences are rewritten in one place, [`to_postgres`]: placeholders, `COLLATE
//! NOCASE` (case-insensitive columns are citext there), `LIKE` (case-insensitive in SQLite),
//! `INSERT OR IGNORE`, two-argument `max`/`min`, `instr`, `json_each`. Anything else that differs
//! is written out in the query with [`Tx::is_postgres`].

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::types::{FromSql, ToSql, ToSqlOutput, Value, ValueRef};

/// An error from either engine, or from converting a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", describe_pg(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A statement PostgreSQL refused to prepare (the SQL carries no values, only placeholders).
    #[error("{} in: {sql}", describe_pg(.source))]
    Statement {
        sql: String,
        source: tokio_postgres::Error,
    },
    #[error("the query returned no rows")]
    NoRows,
    #[error("column {column}: {message}")]
    Conversion { column: String, message: String },
}

fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A value that cannot be read as the type asked for (rusqlite's conversion failure).
    pub fn conversion(message: impl Into<String>) -> Error {
        Error::Conversion {
            column: "?".into(),
            message: message.into(),
        }
    }

    /// The PostgreSQL SQLSTATE, when the server refused.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Postgres(e) | Error::Statement { source: e, .. } => e.code().map(|c| c.code()),
            _ => None,
        }
    }

    fn is_no_rows(&self) -> bool {
        matches!(
            self,
            Error::NoRows | Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)
        )
    }
}

/// `.optional()` on a single-row result, as in rusqlite.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_no_rows() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Which engine a transaction runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection with its prepared statements (named statements live as long as the
/// session; preparing once saves a round trip on every later use).
pub struct PgConn {
    pub client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
}

/// Statements kept per connection; beyond this the cache starts again (queries built with a
/// varying number of placeholders must not grow it without end).
const STATEMENT_CACHE: usize = 512;

/// Waits for a PostgreSQL call on this thread. The connection itself is driven by a runtime
/// of its own (store/postgres.rs), so this works on any thread: a blocking-pool thread, a test's
/// runtime thread, a plain thread.
pub fn wait<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

impl PgConn {
    pub fn new(client: tokio_postgres::Client) -> PgConn {
        PgConn {
            client,
            statements: HashMap::new(),
        }
    }

    /// Runs `f` in one transaction whose first statements are `begin` (isolation, locks):
    /// committed when `f` succeeds, rolled back otherwise.
    pub fn in_transaction<T, E: From<Error>>(
        &mut self,
        begin: &str,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let PgConn { client, statements } = self;
        let pg = wait(client.transaction()).map_err(Error::from)?;
        // PostgreSQL accepts SET TRANSACTION until the transaction's first query.
        wait(pg.batch_execute(begin)).map_err(Error::from)?;
        let tx = Tx {
            inner: Inner::Postgres(PgTx {
                tx: pg,
                statements: RefCell::new(statements),
            }),
        };
        let out = f(&tx)?;
        match tx.inner {
            Inner::Postgres(pg) => wait(pg.tx.commit()).map_err(Error::from)?,
            Inner::Sqlite(_) => unreachable!("a PostgreSQL transaction"),
        }
        Ok(out)
    }
}

struct PgTx<'a> {
    tx: tokio_postgres::Transaction<'a>,
    statements: RefCell<&'a mut HashMap<String, tokio_postgres::Statement>>,
}

impl PgTx<'_> {
    fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let prepared = prepare(&self.tx, &to_postgres(sql))?;
        let mut statements = self.statements.borrow_mut();
        if statements.len() >= STATEMENT_CACHE {
            statements.clear();
        }
        statements.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }
}

/// Prepares `sql`, letting PostgreSQL infer every parameter's type. A parameter it cannot infer
/// (SQLite's `?2 IS NULL OR x = ?2`: PostgreSQL types `$2` at its first use) is declared text
/// and the prepare tried again, then bigint if text has no operator there. Each attempt runs
/// under a savepoint: a failed prepare must not abort the caller's transaction.
fn prepare(tx: &tokio_postgres::Transaction<'_>, sql: &str) -> Result<tokio_postgres::Statement> {
    use tokio_postgres::types::{Kind, Type};
    let unspecified = Type::new("unspecified".into(), 0, Kind::Pseudo, String::new());
    let mut types: Vec<Type> = Vec::new();
    let mut last_declared: Option<usize> = None;
    let refused = |e: tokio_postgres::Error| Error::Statement {
        sql: sql.to_string(),
        source: e,
    };
    loop {
        wait(tx.batch_execute("SAVEPOINT steward_prepare")).map_err(refused)?;
        let attempt = wait(tx.prepare_typed(sql, &types));
        let end = match attempt {
            Ok(_) => "RELEASE SAVEPOINT steward_prepare",
            Err(_) => "ROLLBACK TO SAVEPOINT steward_prepare",
        };
        wait(tx.batch_execute(end)).map_err(refused)?;
        let e = match attempt {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        let code = e.as_db_error().map(|db| db.code().code().to_string());
        let undetermined = e.as_db_error().and_then(|db| {
            matches!(db.code().code(), "42P08" | "42P18")
                .then(|| {
                    db.message()
                        .rsplit('$')
                        .next()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .flatten()
        });
        match (undetermined, code.as_deref(), last_declared) {
            (Some(n), _, _)
                if (1..=100).contains(&n) && types.get(n - 1).is_none_or(|t| t.oid() == 0) =>
            {
                if types.len() < n {
                    types.resize(n, unspecified.clone());
                }
                types[n - 1] = Type::TEXT;
                last_declared = Some(n - 1);
            }
            // Text had no operator where the parameter is used: a number, then.
            (None, Some("42883"), Some(i)) if types[i] == Type::TEXT => types[i] = Type::INT8,
            _ => return Err(refused(e)),
        }
    }
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(PgTx<'a>),
}

/// One transaction (or, on SQLite, a connection inside one) that the store's code runs its
/// queries in.
pub struct Tx<'a> {
    inner: Inner<'a>,
}

impl<'a> Tx<'a> {
    /// A SQLite connection (a `rusqlite::Transaction` derefs to one).
    pub fn sqlite(conn: &'a rusqlite::Connection) -> Tx<'a> {
        Tx {
            inner: Inner::Sqlite(conn),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.dialect() == Dialect::Postgres
    }

    /// The SQLite connection underneath, for what only SQLite has (pragmas, its backup API).
    pub fn as_sqlite(&self) -> Option<&'a rusqlite::Connection> {
        match self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute(sql, rusqlite::params_from_iter(params.refs()))?),
            Inner::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                Ok(PgOps::execute(pg, &stmt, &binds(&params.refs())?)? as usize)
            }
        }
    }

    /// Several statements separated by semicolons, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(pg) => Ok(wait(pg.tx.batch_execute(&to_postgres(sql)))?),
        }
    }

    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare(sql)?.query_row(params, f)
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Stmt {
                inner: StmtInner::Sqlite(SqliteStmt::Plain(c.prepare(sql)?)),
            }),
            Inner::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                Ok(Stmt {
                    inner: StmtInner::Postgres { ops: pg, stmt },
                })
            }
        }
    }

    /// Like [`Self::prepare`], kept in SQLite's statement cache (PostgreSQL caches every
    /// statement per connection anyway).
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Stmt {
                inner: StmtInner::Sqlite(SqliteStmt::Cached(c.prepare_cached(sql)?)),
            }),
            Inner::Postgres(_) => self.prepare(sql),
        }
    }
}

/// What a statement needs of its PostgreSQL transaction (a trait object, so that a statement's
/// type does not carry the transaction's own lifetime).
trait PgOps {
    fn execute(&self, stmt: &tokio_postgres::Statement, binds: &[Bind]) -> Result<u64>;
    fn bind(
        &self,
        stmt: &tokio_postgres::Statement,
        binds: &[Bind],
    ) -> Result<tokio_postgres::Portal>;
    fn fetch(&self, portal: &tokio_postgres::Portal, rows: i32)
    -> Result<Vec<tokio_postgres::Row>>;
}

impl PgOps for PgTx<'_> {
    fn execute(&self, stmt: &tokio_postgres::Statement, binds: &[Bind]) -> Result<u64> {
        Ok(wait(self.tx.execute(stmt, &bind_refs(binds)))?)
    }
    fn bind(
        &self,
        stmt: &tokio_postgres::Statement,
        binds: &[Bind],
    ) -> Result<tokio_postgres::Portal> {
        Ok(wait(self.tx.bind(stmt, &bind_refs(binds)))?)
    }
    fn fetch(
        &self,
        portal: &tokio_postgres::Portal,
        rows: i32,
    ) -> Result<Vec<tokio_postgres::Row>> {
        Ok(wait(self.tx.query_portal(portal, rows))?)
    }
}

enum SqliteStmt<'c> {
    Plain(rusqlite::Statement<'c>),
    Cached(rusqlite::CachedStatement<'c>),
}

impl<'c> SqliteStmt<'c> {
    fn get(&mut self) -> &mut rusqlite::Statement<'c> {
        match self {
            SqliteStmt::Plain(s) => s,
            SqliteStmt::Cached(s) => s,
        }
    }
}

enum StmtInner<'t> {
    Sqlite(SqliteStmt<'t>),
    Postgres {
        ops: &'t dyn PgOps,
        stmt: tokio_postgres::Statement,
    },
}

/// A prepared statement.
pub struct Stmt<'t> {
    inner: StmtInner<'t>,
}

/// Rows fetched per round trip when PostgreSQL streams a long result.
const PG_FETCH: i32 = 2000;

impl Stmt<'_> {
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        match &mut self.inner {
            StmtInner::Sqlite(s) => {
                Ok(s.get().execute(rusqlite::params_from_iter(params.refs()))?)
            }
            StmtInner::Postgres { ops, stmt } => {
                Ok(ops.execute(stmt, &binds(&params.refs())?)? as usize)
            }
        }
    }

    /// Every row mapped by `f` (stopping at the first error), for collecting.
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        let mut rows = self.query(params)?;
        while let Some(row) = rows.next()? {
            let mapped = f(&row);
            let failed = mapped.is_err();
            out.push(mapped);
            if failed {
                break;
            }
        }
        Ok(out.into_iter())
    }

    /// The rows one at a time (PostgreSQL fetches them in batches through a portal).
    pub fn query(&mut self, params: impl Params) -> Result<Rows<'_>> {
        match &mut self.inner {
            StmtInner::Sqlite(s) => Ok(Rows {
                inner: RowsInner::Sqlite(s.get().query(rusqlite::params_from_iter(params.refs()))?),
            }),
            StmtInner::Postgres { ops, stmt } => {
                let portal = ops.bind(stmt, &binds(&params.refs())?)?;
                Ok(Rows {
                    inner: RowsInner::Postgres {
                        ops: *ops,
                        portal,
                        buffer: std::collections::VecDeque::new(),
                        current: None,
                        done: false,
                    },
                })
            }
        }
    }

    /// The first row mapped by `f` (no row: [`Error::NoRows`]).
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(Error::NoRows),
        }
    }

    /// Whether the query returns any row.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        let mut rows = self.query(params)?;
        Ok(rows.next()?.is_some())
    }

    pub fn column_count(&mut self) -> usize {
        match &mut self.inner {
            StmtInner::Sqlite(s) => s.get().column_count(),
            StmtInner::Postgres { stmt, .. } => stmt.columns().len(),
        }
    }
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres {
        ops: &'s dyn PgOps,
        portal: tokio_postgres::Portal,
        buffer: std::collections::VecDeque<tokio_postgres::Row>,
        current: Option<tokio_postgres::Row>,
        done: bool,
    },
}

/// The rows of one query, read in order.
pub struct Rows<'s> {
    inner: RowsInner<'s>,
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match &mut self.inner {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            RowsInner::Postgres {
                ops,
                portal,
                buffer,
                current,
                done,
            } => {
                if buffer.is_empty() && !*done {
                    let batch = ops.fetch(portal, PG_FETCH)?;
                    if batch.len() < PG_FETCH as usize {
                        *done = true;
                    }
                    buffer.extend(batch);
                }
                *current = buffer.pop_front();
                Ok(current.as_ref().map(Row::Postgres))
            }
        }
    }
}

/// A column index: its position, or its name.
pub trait ColumnIndex: Copy {
    fn sqlite(self, row: &rusqlite::Row<'_>) -> rusqlite::Result<usize>;
    fn postgres(self, row: &tokio_postgres::Row) -> Option<usize>;
    fn describe(self) -> String;
}

impl ColumnIndex for usize {
    fn sqlite(self, _: &rusqlite::Row<'_>) -> rusqlite::Result<usize> {
        Ok(self)
    }
    fn postgres(self, row: &tokio_postgres::Row) -> Option<usize> {
        (self < row.len()).then_some(self)
    }
    fn describe(self) -> String {
        self.to_string()
    }
}

impl ColumnIndex for &str {
    fn sqlite(self, row: &rusqlite::Row<'_>) -> rusqlite::Result<usize> {
        row.as_ref().column_index(self)
    }
    fn postgres(self, row: &tokio_postgres::Row) -> Option<usize> {
        row.columns().iter().position(|c| c.name() == self)
    }
    fn describe(self) -> String {
        self.to_string()
    }
}

/// One row of a result.
#[derive(Clone, Copy)]
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// The column at `idx` as `T`, with SQLite's conversions on either engine.
    pub fn get<I: ColumnIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        match self {
            Row::Sqlite(r) => Ok(r.get(idx.sqlite(r)?)?),
            Row::Postgres(r) => {
                let i = idx.postgres(r).ok_or_else(|| Error::Conversion {
                    column: idx.describe(),
                    message: "no such column".into(),
                })?;
                let cell: Cell = r.try_get(i)?;
                T::column_result(ValueRef::from(&cell.0)).map_err(|e| Error::Conversion {
                    column: r.columns()[i].name().to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
}

/// Parameters of a query: rusqlite's forms (`params![..]`, `[a, b]`, `(a, b)`, `[]`, a slice of
/// `&dyn ToSql`).
pub trait Params {
    fn refs(&self) -> Vec<&dyn ToSql>;
}

impl Params for [&(dyn ToSql + Send + Sync); 0] {
    fn refs(&self) -> Vec<&dyn ToSql> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn refs(&self) -> Vec<&dyn ToSql> {
        self.to_vec()
    }
}

impl Params for () {
    fn refs(&self) -> Vec<&dyn ToSql> {
        Vec::new()
    }
}

macro_rules! tuple_params {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: ToSql),+> Params for ($($name,)+) {
            fn refs(&self) -> Vec<&dyn ToSql> {
                vec![$(&self.$idx as &dyn ToSql),+]
            }
        }
    };
}
tuple_params!(A 0);
tuple_params!(A 0, B 1);
tuple_params!(A 0, B 1, C 2);
tuple_params!(A 0, B 1, C 2, D 3);
tuple_params!(A 0, B 1, C 2, D 3, E 4);
tuple_params!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_params!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_params!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn refs(&self) -> Vec<&dyn ToSql> {
                self.iter().map(|v| v as &dyn ToSql).collect()
            }
        }
        impl<T: ToSql + ?Sized> Params for &[&T; $n] {
            fn refs(&self) -> Vec<&dyn ToSql> {
                self.iter().map(|v| v as &dyn ToSql).collect()
            }
        }
    )+};
}
array_params!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);

/// A value on its way to PostgreSQL, written as the type the server inferred for it.
#[derive(Debug)]
struct Bind(Value);

fn binds(params: &[&dyn ToSql]) -> Result<Vec<Bind>> {
    params
        .iter()
        .map(|p| {
            let value = match p.to_sql()? {
                ToSqlOutput::Borrowed(v) => {
                    Value::try_from(v).map_err(|e| Error::conversion(e.to_string()))?
                }
                ToSqlOutput::Owned(v) => v,
                other => {
                    return Err(Error::conversion(format!(
                        "a parameter PostgreSQL cannot take: {other:?}"
                    )));
                }
            };
            Ok(Bind(value))
        })
        .collect()
}

fn bind_refs(binds: &[Bind]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    binds
        .iter()
        .map(|b| b as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

fn is_text(ty: &tokio_postgres::types::Type) -> bool {
    use tokio_postgres::types::Type;
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

fn put<T: tokio_postgres::types::ToSql>(
    value: T,
    ty: &tokio_postgres::types::Type,
    out: &mut bytes::BytesMut,
) -> std::result::Result<(), BoxError> {
    value.to_sql(ty, out).map(|_| ())
}

impl tokio_postgres::types::ToSql for Bind {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, BoxError> {
        use tokio_postgres::types::{IsNull, Type};
        let wrong = |what: &str| -> BoxError {
            format!("cannot pass {what} as a PostgreSQL {}", ty.name()).into()
        };
        match &self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => put(i, ty, out)?,
                Type::INT4 => put(i32::try_from(*i)?, ty, out)?,
                Type::INT2 => put(i16::try_from(*i)?, ty, out)?,
                Type::BOOL => put(*i != 0, ty, out)?,
                Type::FLOAT8 => put(*i as f64, ty, out)?,
                Type::FLOAT4 => put(*i as f32, ty, out)?,
                Type::NUMERIC => encode_numeric(*i, out),
                _ if is_text(ty) => out.extend_from_slice(i.to_string().as_bytes()),
                _ => return Err(wrong("an integer")),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => put(f, ty, out)?,
                Type::FLOAT4 => put(*f as f32, ty, out)?,
                Type::INT8 if f.fract() == 0.0 => put(*f as i64, ty, out)?,
                _ if is_text(ty) => out.extend_from_slice(f.to_string().as_bytes()),
                _ => return Err(wrong("a real number")),
            },
            Value::Text(s) => match *ty {
                Type::JSON => out.extend_from_slice(s.as_bytes()),
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                }
                Type::INT8 => put(s.parse::<i64>().map_err(|_| wrong("text"))?, ty, out)?,
                Type::BYTEA => out.extend_from_slice(s.as_bytes()),
                _ if is_text(ty) => out.extend_from_slice(s.as_bytes()),
                _ => return Err(wrong("text")),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => out.extend_from_slice(b),
                _ => return Err(wrong("a blob")),
            },
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A whole number as a PostgreSQL numeric (binary form: base-10000 digits).
fn encode_numeric(value: i64, out: &mut bytes::BytesMut) {
    let negative = value < 0;
    let mut rest = value.unsigned_abs();
    let mut digits = Vec::new();
    while rest > 0 {
        digits.push((rest % 10_000) as i16);
        rest /= 10_000;
    }
    digits.reverse();
    let weight = digits.len() as i16 - 1;
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.max(0).to_be_bytes());
    out.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// A column read from PostgreSQL as SQLite would hold it.
struct Cell(Value);

impl<'a> tokio_postgres::types::FromSql<'a> for Cell {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Cell, BoxError> {
        use tokio_postgres::types::Type;
        let value = match *ty {
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)? as i64),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)? as i64),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)? as i64),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => decode_numeric(raw)?,
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSON => Value::Text(String::from_utf8(raw.to_vec())?),
            Type::JSONB => Value::Text(String::from_utf8(raw.get(1..).unwrap_or(&[]).to_vec())?),
            _ if is_text(ty) => Value::Text(String::from_utf8(raw.to_vec())?),
            _ => return Err(format!("no SQLite reading of a PostgreSQL {}", ty.name()).into()),
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &tokio_postgres::types::Type) -> std::result::Result<Cell, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// A PostgreSQL numeric (what `sum` and `avg` return) as an integer when it has no fraction.
fn decode_numeric(raw: &[u8]) -> std::result::Result<Value, BoxError> {
    let word = |i: usize| -> std::result::Result<i16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a short numeric".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i32;
    let sign = word(2)? as u16;
    let scale = word(3)?;
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let negative = sign == 0x4000;
    if scale == 0 {
        // A whole number: exact in integers (weight counts base-10000 places before the point).
        let mut value: i128 = 0;
        for i in 0..ndigits {
            value = value * 10_000 + word(4 + i)? as i128;
        }
        let places = weight + 1 - ndigits as i32;
        for _ in 0..places.max(0) {
            value *= 10_000;
        }
        let value = if negative { -value } else { value };
        return Ok(match i64::try_from(value) {
            Ok(v) => Value::Integer(v),
            Err(_) => Value::Real(value as f64),
        });
    }
    let mut value = 0f64;
    for i in 0..ndigits {
        value += word(4 + i)? as f64 * 10_000f64.powi(weight - i as i32);
    }
    Ok(Value::Real(if negative { -value } else { value }))
}

/// The store's SQL (written for SQLite) in PostgreSQL's dialect.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    let mut next_bare = 1;
    let mut insert_or_ignore = false;
    // Placeholders: `?N` -> `$N`, a bare `?` -> the next number. Quoted text is copied as is.
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for (_, q) in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some((_, d)) = chars.peek().copied() {
                    if d.is_ascii_digit() {
                        digits.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if digits.is_empty() {
                    digits = next_bare.to_string();
                    next_bare += 1;
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    let mut sql = out;
    if let Some(at) = find_word(&sql, "INSERT OR IGNORE") {
        sql.replace_range(at..at + "INSERT OR IGNORE".len(), "INSERT");
        insert_or_ignore = true;
    }
    sql = replace_words(&sql, "COLLATE NOCASE", "");
    sql = replace_words(&sql, "NOT LIKE", "NOT ILIKE");
    sql = replace_words(&sql, "LIKE", "ILIKE");
    sql = sql.replace("NOT IILIKE", "NOT ILIKE");
    sql = replace_words(&sql, "instr(", "strpos(");
    sql = json_each(&sql);
    sql = unixepoch(&sql);
    sql = without_unary_plus(&sql);
    sql = two_argument_extrema(&sql);
    sql = json_extract(&sql);
    if insert_or_ignore {
        let trimmed = sql.trim_end().trim_end_matches(';').to_string();
        match find_word(&trimmed, "RETURNING") {
            Some(at) => {
                sql = format!(
                    "{} ON CONFLICT DO NOTHING {}",
                    &trimmed[..at],
                    &trimmed[at..]
                )
            }
            None => sql = format!("{trimmed} ON CONFLICT DO NOTHING"),
        }
    }
    sql
}

/// Where `word` starts in `text` (case-insensitive, not inside a longer identifier).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let upper = text.to_ascii_uppercase();
    let target = word.to_ascii_uppercase();
    let mut from = 0;
    while let Some(pos) = upper[from..].find(&target) {
        let at = from + pos;
        let before = upper[..at].chars().next_back();
        let after = upper[at + target.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let ends_open = target.ends_with('(');
        if !ident(before) && (ends_open || !ident(after)) {
            return Some(at);
        }
        from = at + target.len();
    }
    None
}

fn replace_words(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_word(rest, word) {
        out.push_str(&rest[..at]);
        out.push_str(with);
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// SQLite's `+column` (a unary plus that keeps the planner off that column's index) has no
/// text operator in PostgreSQL: dropped.
fn without_unary_plus(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut prev = ' ';
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied().unwrap_or(' ');
        if c == '+'
            && (prev.is_whitespace() || prev == '(')
            && (next.is_ascii_alphabetic() || next == '_')
        {
            prev = c;
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Rewrites every call `name(args)` with `rewrite(args)`; a call it answers `None` for stays.
fn rewrite_calls(sql: &str, name: &str, rewrite: impl Fn(&str) -> Option<String>) -> String {
    let mut out = sql.to_string();
    let mut from = 0;
    while let Some(pos) = find_word(&out[from..], name) {
        let at = from + pos;
        let open = at + name.len();
        let mut depth = 0;
        let mut close = None;
        for (i, c) in out[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    close = Some(open + i);
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let Some(close) = close else { break };
        match rewrite(out[open..close].trim()) {
            Some(replacement) => {
                out.replace_range(at..=close, &replacement);
                from = at + replacement.len();
            }
            None => from = open,
        }
    }
    out
}

/// A call's arguments, split at its top-level commas.
fn arguments(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in args.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(args[start..].trim());
    out
}

/// SQLite's `json_each(x)` over a JSON array of strings is PostgreSQL's
/// `json_array_elements_text(CAST(x AS json))` (its column is `value` in both).
fn json_each(sql: &str) -> String {
    rewrite_calls(sql, "json_each(", |arg| {
        Some(format!("json_array_elements_text(CAST({arg} AS json))"))
    })
}

/// SQLite's `unixepoch(t)` (whole seconds of an RFC 3339 text) in PostgreSQL.
fn unixepoch(sql: &str) -> String {
    rewrite_calls(sql, "unixepoch(", |arg| {
        Some(format!(
            "CAST(floor(extract(epoch FROM CAST(CAST({arg} AS text) AS timestamptz))) AS BIGINT)"
        ))
    })
}

/// SQLite's `json_extract(x, '$.key')` is PostgreSQL's `(CAST(x AS json) ->> 'key')` (text).
fn json_extract(sql: &str) -> String {
    rewrite_calls(sql, "json_extract(", |args| match arguments(args)[..] {
        [value, path] => {
            let key = path.strip_prefix("'$.")?.strip_suffix('\'')?;
            Some(format!("(CAST({value} AS json) ->> '{key}')"))
        }
        _ => None,
    })
}

/// SQLite's two-argument `max(a, b)` and `min(a, b)` are PostgreSQL's `GREATEST` and `LEAST`
/// (one argument: the aggregate, the same in both).
fn two_argument_extrema(sql: &str) -> String {
    let sql = rewrite_calls(sql, "max(", |args| {
        (arguments(args).len() > 1).then(|| format!("GREATEST({args})"))
    });
    rewrite_calls(&sql, "min(", |args| {
        (arguments(args).len() > 1).then(|| format!("LEAST({args})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_dialect_words_are_rewritten() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '?3'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '?3'"
        );
        assert_eq!(to_postgres("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(
            to_postgres("WHERE email = ?1 COLLATE NOCASE AND name LIKE ?2"),
            "WHERE email = $1  AND name ILIKE $2"
        );
        assert_eq!(
            to_postgres("WHERE name NOT LIKE ?2 AND likely = 1"),
            "WHERE name NOT ILIKE $2 AND likely = 1"
        );
        assert_eq!(
            to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?1)"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            to_postgres("SELECT max(a), max(b, coalesce(c, 0)), min(x), min(1, f(2, 3))"),
            "SELECT max(a), GREATEST(b, coalesce(c, 0)), min(x), LEAST(1, f(2, 3))"
        );
        assert_eq!(
            to_postgres("SELECT value FROM json_each(?1) WHERE instr(a, 'b') > 0"),
            "SELECT value FROM json_array_elements_text(CAST($1 AS json)) WHERE strpos(a, 'b') > 0"
        );
    }

    #[test]
    fn unary_plus_goes_and_sums_stay() {
        assert_eq!(
            to_postgres("WHERE +i.campaign_id = ?3 AND n = n + ?2 AND m = (+x)"),
            "WHERE i.campaign_id = $3 AND n = n + $2 AND m = (x)"
        );
    }

    #[test]
    fn json_paths_become_arrows() {
        assert_eq!(
            to_postgres("AND json_extract(e.details, '$.before') = ?4"),
            "AND (CAST(e.details AS json) ->> 'before') = $4"
        );
    }

    #[test]
    fn numerics_round_trip_through_their_binary_form() {
        for n in [0i64, 1, 9_999, 10_000, 123_456_789, -42, i64::MAX / 4] {
            let mut buf = bytes::BytesMut::new();
            encode_numeric(n, &mut buf);
            match decode_numeric(&buf).unwrap() {
                Value::Integer(back) => assert_eq!(back, n),
                other => panic!("{n} came back as {other:?}"),
            }
        }
    }
}
