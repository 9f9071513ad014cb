//! SQL on the worker's SQLite connection: `query`, `execute`, and transactions.
//!
//! A statement that must wait (for a transaction of another request, or for another
//! connection's write lock) keeps its task pending; the worker serves other requests meanwhile.
//! trail checks every statement against the allow-list of docs/database.md.

use std::fmt;

use crate::abi::{self, Reader, Writer};
use crate::json;

/// A SQL value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_blob(&self) -> Option<&[u8]> {
        match self {
            Value::Blob(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

macro_rules! value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Integer(v as i64)
            }
        }
    )*};
}
value_from_int!(i8, i16, i32, i64, u8, u16, u32, isize);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v as i64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A SQL value as JSON: NULL `null`, numbers, TEXT a string, a BLOB an array of its bytes.
impl From<Value> for json::Value {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => json::Value::Null,
            Value::Integer(i) => json::Value::Int(i),
            Value::Real(f) => json::Value::Float(f),
            Value::Text(s) => json::Value::String(s),
            Value::Blob(b) => json::Value::Array(b.into_iter().map(json::Value::from).collect()),
        }
    }
}

impl From<&Value> for json::Value {
    fn from(v: &Value) -> Self {
        v.clone().into()
    }
}

/// A failed statement: SQLite's message, `not authorized: ...` for a refused one, or why the
/// call did not reach the database.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error { message }
    }
}

/// A query's result with its column names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Escapes a string as a SQL string literal (`'it''s'`), for the rare place a parameter cannot
/// go (a table name in `SELECT COUNT(*) FROM ...`). Use parameters wherever possible.
pub fn escape(s: impl AsRef<str>) -> String {
    let input = s.as_ref();
    let mut out = String::with_capacity(input.len() + 2);
    out.push('\'');
    for c in input.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub(crate) fn encode_params(params: &[Value]) -> Vec<u8> {
    let mut w = Writer::default();
    if params.is_empty() {
        return w.buf;
    }
    w.u32(params.len() as u32);
    for p in params {
        match p {
            Value::Null => w.buf.push(0),
            Value::Integer(i) => {
                w.buf.push(1);
                w.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::Real(f) => {
                w.buf.push(2);
                w.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(s) => {
                w.buf.push(3);
                w.str(s);
            }
            Value::Blob(b) => {
                w.buf.push(4);
                w.bytes(b);
            }
        }
    }
    w.buf
}

fn read_value(r: &mut Reader<'_>) -> Result<Value, String> {
    Ok(match r.u8()? {
        0 => Value::Null,
        1 => Value::Integer(r.u64()? as i64),
        2 => Value::Real(f64::from_bits(r.u64()?)),
        3 => Value::Text(r.string()?),
        4 => Value::Blob(r.bytes()?.to_vec()),
        t => return Err(format!("unknown value tag {}", t)),
    })
}

pub(crate) fn decode_rows(b: &[u8]) -> Result<Rows, String> {
    let mut r = Reader::new(b);
    let ncols = r.count(4)?;
    let mut columns = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        columns.push(r.string()?);
    }
    let nrows = r.u32()? as usize;
    // Every value takes at least its tag byte; this bounds nrows * ncols by the input.
    if ncols > 0 && nrows > b.len() / ncols {
        return Err(format!(
            "{} rows of {} columns exceed the bytes given",
            nrows, ncols
        ));
    }
    let mut rows = Vec::with_capacity(nrows.min(1 << 16));
    for _ in 0..nrows {
        let mut row = Vec::with_capacity(ncols);
        for _ in 0..ncols {
            row.push(read_value(&mut r)?);
        }
        rows.push(row);
    }
    if !r.at_end() {
        return Err("bytes after the rows".to_string());
    }
    Ok(Rows { columns, rows })
}

fn bad_result(what: &str, why: String) -> Error {
    Error {
        message: format!("trail returned a malformed {}: {}", what, why),
    }
}

async fn run_rows(tx: u32, sql: &str, params: &[Value]) -> Result<Rows, Error> {
    let bytes = abi::sql(tx, 0, sql, &encode_params(params)).await?;
    decode_rows(&bytes).map_err(|e| bad_result("query result", e))
}

async fn run_execute(tx: u32, sql: &str, params: &[Value]) -> Result<usize, Error> {
    let bytes = abi::sql(tx, 1, sql, &encode_params(params)).await?;
    let mut r = Reader::new(&bytes);
    let n = r.u64().map_err(|e| bad_result("execute result", e))?;
    Ok(n as usize)
}

/// Runs a query; its rows, each a `Vec` of values in column order.
pub async fn query(
    sql: impl ToString,
    params: impl Into<Vec<Value>>,
) -> Result<Vec<Vec<Value>>, Error> {
    Ok(run_rows(0, &sql.to_string(), &params.into()).await?.rows)
}

/// Runs a query; its column names and rows.
pub async fn query_rows(sql: impl ToString, params: impl Into<Vec<Value>>) -> Result<Rows, Error> {
    run_rows(0, &sql.to_string(), &params.into()).await
}

/// Runs a statement; the number of rows it changed.
pub async fn execute(sql: impl ToString, params: impl Into<Vec<Value>>) -> Result<usize, Error> {
    run_execute(0, &sql.to_string(), &params.into()).await
}

/// A transaction (`BEGIN IMMEDIATE`) on the worker's connection. While it is open, the
/// worker's other statements wait for it. Dropped without `commit`, it is rolled back.
pub struct Transaction {
    id: u32,
    open: bool,
}

impl Transaction {
    /// Begins a transaction, once the connection is free.
    pub async fn begin() -> Result<Transaction, Error> {
        let bytes = abi::tx_begin().await?;
        let id = Reader::new(&bytes)
            .u32()
            .map_err(|e| bad_result("transaction id", e))?;
        Ok(Transaction { id, open: true })
    }

    pub async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, Error> {
        Ok(run_rows(self.id, sql, params).await?.rows)
    }

    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize, Error> {
        run_execute(self.id, sql, params).await
    }

    /// Commits; if `COMMIT` fails the transaction is rolled back and the error returned.
    pub async fn commit(mut self) -> Result<(), Error> {
        self.open = false;
        abi::tx_end(self.id, true).await?;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), Error> {
        self.open = false;
        abi::tx_end(self.id, false).await?;
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.open {
            // The rollback goes ahead; nothing waits for its result.
            drop(abi::tx_end(self.id, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_literals() {
        assert_eq!(escape("foo"), "'foo'");
        assert_eq!(escape("f'oo"), "'f''oo'");
        assert_eq!(escape("a\0b"), "'a\\0b'");
    }

    #[test]
    fn rows_decode_and_reject_bad_counts() {
        let mut w = Writer::default();
        w.u32(2);
        w.str("a");
        w.str("b");
        w.u32(1);
        w.buf.push(1);
        w.buf.extend_from_slice(&(-5i64).to_le_bytes());
        w.buf.push(3);
        w.str("x");
        let rows = decode_rows(&w.buf).unwrap();
        assert_eq!(rows.columns, vec!["a", "b"]);
        assert_eq!(
            rows.rows,
            vec![vec![Value::Integer(-5), Value::Text("x".into())]]
        );
        let mut bad = w.buf.clone();
        bad.push(0);
        assert!(decode_rows(&bad).is_err());
        let mut huge = Writer::default();
        huge.u32(1);
        huge.str("a");
        huge.u32(u32::MAX);
        assert!(decode_rows(&huge.buf).is_err());
    }

    #[test]
    fn params_encode_as_documented() {
        assert!(encode_params(&[]).is_empty());
        let b = encode_params(&[Value::Null, Value::Real(1.5), Value::Blob(vec![9])]);
        let mut want = vec![3, 0, 0, 0, 0, 2];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[4, 1, 0, 0, 0, 9]);
        assert_eq!(b, want);
    }
}
