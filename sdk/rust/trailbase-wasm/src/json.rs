//! JSON without dependencies: a `Value` tree, `parse` and `to_string`, and the `json!` macro.
//!
//! Objects keep their keys in the order they were written or parsed (a later duplicate key
//! replaces the earlier value in place, as `JSON.parse` does). Numbers are `Int` when the text
//! is an integer that fits an `i64`, else `Float`; a `Float` that is not finite is written as
//! `null`, as `JSON.stringify` does.

use std::fmt::{self, Write};

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Why a text is not JSON: what was wrong and the byte offset where it was noticed.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

impl std::error::Error for Error {}

/// How deep arrays and objects may nest in a parsed text: deeper input is an error rather than
/// a recursion that could exhaust the stack.
pub const MAX_DEPTH: usize = 128;

impl Value {
    /// The member `key` of an object; `None` for a missing key or a value that is no object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` in an object (replacing a member of that name in place, else appending).
    /// Does nothing to a value that is no object.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        if let Value::Object(members) = self {
            let key = key.into();
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                Some(*f as i64)
            }
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl fmt::Display for Value {
    /// The compact JSON text, as `JSON.stringify(value)` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_value(&mut out, self);
        f.write_str(&out)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(v as i64)
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, isize);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        if v <= i64::MAX as u64 {
            Value::Int(v as i64)
        } else {
            Value::Float(v as f64)
        }
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(v as f64)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::String(v.clone())
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => v.into(),
            None => Value::Null,
        }
    }
}

impl From<&Value> for Value {
    fn from(v: &Value) -> Self {
        v.clone()
    }
}

/// Builds a `Value` from JSON-like syntax: `json!({"a": 1, "b": [true, null], "c": expr})`.
/// Keys are string literals; a value is `null`, an array or object in this syntax, or any Rust
/// expression whose type converts `Into<Value>`.
#[macro_export]
macro_rules! json {
    // Internal: the members of an object, each `"key": value-tokens` up to a comma.
    (@object $m:ident) => {};
    (@object $m:ident $k:literal : $($rest:tt)*) => {
        $crate::json!(@member $m $k [] $($rest)*)
    };
    (@member $m:ident $k:literal [$($v:tt)+] , $($rest:tt)*) => {
        $m.push((::std::string::String::from($k), $crate::json!($($v)+)));
        $crate::json!(@object $m $($rest)*)
    };
    (@member $m:ident $k:literal [$($v:tt)*] $next:tt $($rest:tt)*) => {
        $crate::json!(@member $m $k [$($v)* $next] $($rest)*)
    };
    (@member $m:ident $k:literal [$($v:tt)+]) => {
        $m.push((::std::string::String::from($k), $crate::json!($($v)+)));
    };
    // Internal: the elements of an array, each value-tokens up to a comma.
    (@array $a:ident []) => {};
    (@array $a:ident [$($v:tt)+] , $($rest:tt)*) => {
        $a.push($crate::json!($($v)+));
        $crate::json!(@array $a [] $($rest)*)
    };
    (@array $a:ident [$($v:tt)*] $next:tt $($rest:tt)*) => {
        $crate::json!(@array $a [$($v)* $next] $($rest)*)
    };
    (@array $a:ident [$($v:tt)+]) => {
        $a.push($crate::json!($($v)+));
    };
    (null) => {
        $crate::json::Value::Null
    };
    ([ $($tt:tt)* ]) => {{
        #[allow(unused_mut)]
        let mut a: ::std::vec::Vec<$crate::json::Value> = ::std::vec::Vec::new();
        $crate::json!(@array a [] $($tt)*);
        $crate::json::Value::Array(a)
    }};
    ({ $($tt:tt)* }) => {{
        #[allow(unused_mut)]
        let mut m: ::std::vec::Vec<(::std::string::String, $crate::json::Value)> =
            ::std::vec::Vec::new();
        $crate::json!(@object m $($tt)*);
        $crate::json::Value::Object(m)
    }};
    ($e:expr) => {
        $crate::json::Value::from($e)
    };
}

/// Parses one JSON text (RFC 8259; surrounding whitespace allowed, nothing else after it).
pub fn parse(text: &[u8]) -> Result<Value, Error> {
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

/// The compact JSON text of `v`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: &str) -> Error {
        Error {
            message: message.to_string(),
            offset: self.i,
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, Error> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        match self.peek() {
            None => Err(self.err("unexpected end of JSON input")),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("JSON nested too deeply"));
                }
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("JSON nested too deeply"));
                }
                self.i += 1;
                let mut obj = Value::Object(Vec::new());
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(obj);
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key in an object"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected ':' after an object key"));
                    }
                    self.i += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    obj.insert(key, v);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(obj);
                        }
                        _ => return Err(self.err("expected ',' or '}' in an object")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(self.err("invalid number"));
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integral = false;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            integral = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        // The bytes are ASCII digits, signs, '.' and 'e' only.
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
        if integral {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err("invalid number"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        if self.i + 4 > self.s.len() {
            return Err(self.err("truncated \\u escape"));
        }
        let mut v = 0u32;
        for k in 0..4 {
            let d = (self.s[self.i + k] as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + d;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, Error> {
        self.i += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\' | 0..=0x1f) {
                self.i += 1;
            }
            out.extend_from_slice(&self.s[start..self.i]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| Error {
                        message: "invalid UTF-8 in a string".to_string(),
                        offset: start,
                    });
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    let ch = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    self.i = save;
                                    0xfffd
                                }
                            } else {
                                hi
                            };
                            // A lone surrogate has no UTF-8 form: U+FFFD stands for it.
                            char::from_u32(cp).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(self.err("invalid escape in a string")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                Some(_) => return Err(self.err("control character in a string")),
            }
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{}", i);
        }
        Value::Float(f) => write_float(out, *f),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (k, (key, item)) in members.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Writes a float as JavaScript does for the common range: integers without a fraction,
/// others in the shortest form that reads back exactly; exponents beyond 1e21 as `1e+21`.
fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f == 0.0 {
        out.push('0');
    } else if f.abs() >= 1e21 || f.abs() < 1e-6 {
        let s = format!("{:e}", f);
        // Rust writes 1e21 and 1.5e-7; JavaScript 1e+21 and 1.5e-7.
        match s.find('e') {
            Some(p) if !s[p + 1..].starts_with('-') => {
                out.push_str(&s[..=p]);
                out.push('+');
                out.push_str(&s[p + 1..]);
            }
            _ => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{}", f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let text = r#"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n","d":-2.5,"e":{}}"#;
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(to_string(&v), text);
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        assert_eq!(v.get("d").and_then(Value::as_f64), Some(-2.5));
    }

    #[test]
    fn parses_escapes_and_surrogates() {
        let v = parse(br#""\u00e9\ud83d\ude00\u0001\/""#).unwrap();
        assert_eq!(v, Value::String("é😀\u{1}/".to_string()));
        assert_eq!(to_string(&v), "\"é😀\\u0001/\"");
        assert_eq!(
            parse(br#""\ud800""#).unwrap(),
            Value::String("\u{fffd}".into())
        );
    }

    #[test]
    fn duplicate_keys_replace_in_place() {
        let v = parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(to_string(&v), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse(b"9223372036854775807").unwrap(), Value::Int(i64::MAX));
        assert_eq!(
            parse(b"9223372036854775808").unwrap(),
            Value::Float(9.223372036854776e18)
        );
        assert_eq!(parse(b"1e3").unwrap(), Value::Float(1000.0));
        assert_eq!(to_string(&Value::Float(1000.0)), "1000");
        assert_eq!(to_string(&Value::Float(0.1)), "0.1");
        assert_eq!(to_string(&Value::Float(1e21)), "1e+21");
        assert_eq!(to_string(&Value::Float(1.5e-7)), "1.5e-7");
        assert_eq!(to_string(&Value::Float(f64::NAN)), "null");
        for bad in ["01", "-", "1.", "1e", "+1", ".5"] {
            assert!(parse(bad.as_bytes()).is_err(), "{}", bad);
        }
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "{a:1}",
            "\"abc",
            "nul",
            "[1] 2",
            "\"\t\"",
            "\"\\x\"",
            "\"\\u12\"",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{:?}", bad);
        }
        assert!(parse(b"\"\xff\"").is_err());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().message,
            "JSON nested too deeply"
        );
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn macro_builds_values() {
        let name = "Ann";
        let n = 3;
        let v = json!({
            "name": name,
            "n": n + 1,
            "list": [1, "two", null, [], {}],
            "nested": {"ok": true, "len": name.len()},
            "opt": (None::<i32>),
        });
        assert_eq!(
            v.to_string(),
            r#"{"name":"Ann","n":4,"list":[1,"two",null,[],{}],"nested":{"ok":true,"len":3},"opt":null}"#
        );
        assert_eq!(json!(null), Value::Null);
        assert_eq!(json!([]).to_string(), "[]");
    }
}
