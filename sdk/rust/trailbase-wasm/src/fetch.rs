//! Outgoing HTTP requests, made by trail (libcurl) on the worker's loop under the policy of
//! `fetch { ... }`: allowed hosts, no private addresses unless allowed, redirects followed,
//! bounded bodies and time (docs/guest-abi.md).

use std::fmt;

use crate::abi::{self, Reader, Writer};
use crate::json;

/// A request to send: `Request::get(url)`, `Request::post(url, body)`, `.header(..)`.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 0: the config's `fetch.timeout_ms`.
    pub timeout_ms: u32,
}

impl Request {
    pub fn new(method: &str, url: impl ToString) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: 0,
        }
    }

    pub fn get(url: impl ToString) -> Request {
        Request::new("GET", url)
    }

    pub fn post(url: impl ToString, body: impl Into<Vec<u8>>) -> Request {
        let mut r = Request::new("POST", url);
        r.body = body.into();
        r
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// A JSON body, with `content-type: application/json`.
    pub fn json(self, value: &json::Value) -> Request {
        self.header("content-type", "application/json")
            .body(value.to_string().into_bytes())
    }

    /// The time the whole request may take, redirects included.
    pub fn timeout_ms(mut self, ms: u32) -> Request {
        self.timeout_ms = ms;
        self
    }
}

/// The response: any HTTP status (4xx and 5xx included), the final response's headers and
/// body, and the URL it came from after redirects.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 becomes U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<json::Value, json::Error> {
        json::parse(&self.body)
    }
}

/// A request that got no HTTP response: a refused host or address, a connection failure, a
/// timeout, too large a body, too many redirects (trail's message says which).
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fetch failed: {}", self.message)
    }
}

impl std::error::Error for Error {}

fn decode_response(b: &[u8]) -> Result<Response, String> {
    let mut r = Reader::new(b);
    let status = r.u32()?;
    let headers = r.pairs()?;
    let body = r.bytes()?.to_vec();
    let url = r.string()?;
    Ok(Response {
        status: status.min(999) as u16,
        headers,
        body,
        url,
    })
}

/// Sends `req`; the response whatever its status.
pub async fn fetch(req: Request) -> Result<Response, Error> {
    let mut w = Writer::default();
    w.str(&req.method);
    w.str(&req.url);
    w.pairs(&req.headers);
    w.bytes(&req.body);
    w.u32(req.timeout_ms);
    let bytes = abi::fetch(&w.buf)
        .await
        .map_err(|message| Error { message })?;
    decode_response(&bytes).map_err(|e| Error {
        message: format!("trail returned a malformed response: {}", e),
    })
}

/// GETs `url`; the body of a 2xx response, an error for any other status.
pub async fn get(url: impl ToString) -> Result<Vec<u8>, Error> {
    let url = url.to_string();
    let resp = fetch(Request::get(&url)).await?;
    if !(200..300).contains(&resp.status) {
        return Err(Error {
            message: format!("GET {} answered {}", url, resp.status),
        });
    }
    Ok(resp.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_responses() {
        let mut w = Writer::default();
        w.u32(404);
        w.pairs(&[("content-type".into(), "text/plain".into())]);
        w.bytes(b"nope");
        w.str("http://x/y");
        let r = decode_response(&w.buf).unwrap();
        assert_eq!(
            (r.status, r.text().as_str(), r.url.as_str()),
            (404, "nope", "http://x/y")
        );
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert!(decode_response(&w.buf[..w.buf.len() - 1]).is_err());
    }
}
