//! HTTP handlers: routes (`routing::get("/greet/:name", handler)`), the request a handler gets,
//! and what it may return (`IntoResponse`: text, bytes, `Json`, `Html`, `Response`, `HttpError`,
//! `Redirect`, `()`, a `(StatusCode, T)` pair, or a `Result` of those).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::json;

/// An HTTP method. `ALL` is a catch-all route: every method without a route of its own on the
/// same path.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
    HEAD,
    OPTIONS,
    ALL,
    /// Any other method token, upper case (`PROPFIND`).
    Other(String),
}

impl Method {
    /// The method as trail's manifest writes it: `GET`, ..., `*` for `ALL`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::ALL => "*",
            Method::Other(m) => m,
        }
    }

    /// The method named `s` (any case).
    pub fn parse(s: &str) -> Method {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            "HEAD" => Method::HEAD,
            "OPTIONS" => Method::OPTIONS,
            "*" => Method::ALL,
            other => Method::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(pub u16);

impl StatusCode {
    pub const OK: StatusCode = StatusCode(200);
    pub const CREATED: StatusCode = StatusCode(201);
    pub const ACCEPTED: StatusCode = StatusCode(202);
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    pub const MOVED_PERMANENTLY: StatusCode = StatusCode(301);
    pub const FOUND: StatusCode = StatusCode(302);
    pub const SEE_OTHER: StatusCode = StatusCode(303);
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    pub const TEMPORARY_REDIRECT: StatusCode = StatusCode(307);
    pub const PERMANENT_REDIRECT: StatusCode = StatusCode(308);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    pub const CONFLICT: StatusCode = StatusCode(409);
    pub const GONE: StatusCode = StatusCode(410);
    pub const PAYLOAD_TOO_LARGE: StatusCode = StatusCode(413);
    pub const UNPROCESSABLE_ENTITY: StatusCode = StatusCode(422);
    pub const TOO_MANY_REQUESTS: StatusCode = StatusCode(429);
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    pub const BAD_GATEWAY: StatusCode = StatusCode(502);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const GATEWAY_TIMEOUT: StatusCode = StatusCode(504);

    pub fn as_u16(&self) -> u16 {
        self.0
    }

    /// A status in 100..=599.
    pub fn from_u16(code: u16) -> Option<StatusCode> {
        if (100..=599).contains(&code) {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.0)
    }

    pub fn is_redirection(&self) -> bool {
        (300..400).contains(&self.0)
    }

    /// The standard reason phrase, `""` for codes without one here.
    pub fn canonical_reason(&self) -> &'static str {
        match self.0 {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            410 => "Gone",
            413 => "Payload Too Large",
            422 => "Unprocessable Entity",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.canonical_reason())
    }
}

/// A request as a handler sees it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) path_params: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) caller: crate::auth::Caller, // req.user(): auth.rs
}

impl Request {
    /// A request made by hand (for tests of handlers): `method` and `url` (the request target,
    /// `/a/b?x=1`), path parameters, headers and body.
    pub fn new(
        method: &str,
        url: &str,
        path_params: Vec<(String, String)>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            path_params,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body,
            caller: Default::default(),
        }
    }

    /// The method, upper case (`GET`).
    pub fn method(&self) -> Method {
        Method::parse(&self.method)
    }

    /// The request target as received: path and query (`/a/b?x=1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The path, without the query, not decoded.
    pub fn path(&self) -> &str {
        match self.url.find('?') {
            Some(q) => &self.url[..q],
            None => &self.url,
        }
    }

    /// The raw query string without `?` (`""` when none).
    pub fn query(&self) -> &str {
        match self.url.find('?') {
            Some(q) => &self.url[q + 1..],
            None => "",
        }
    }

    /// A path parameter of the route (`:name` or `{name}`), percent-decoded.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every path parameter, in the route's order.
    pub fn path_params(&self) -> &[(String, String)] {
        &self.path_params
    }

    /// The first query parameter `name`, decoded as a form does (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every query parameter, decoded, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        query_pairs(self.query())
    }

    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as `(lower-case name, value)`, in arrival order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body's bytes (empty when there is none).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// The body as UTF-8 text; a 400 `HttpError` when it is not.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|_| {
            HttpError::message(
                StatusCode::BAD_REQUEST,
                "the request body is not UTF-8 text",
            )
        })
    }

    /// The body parsed as JSON; a 400 `HttpError` naming the problem when it is not JSON.
    pub fn json(&self) -> Result<json::Value, HttpError> {
        json::parse(&self.body).map_err(|e| {
            HttpError::message(
                StatusCode::BAD_REQUEST,
                format!("invalid JSON in request body: {}", e),
            )
        })
    }
}

/// Decodes `%XX` escapes (and, with `plus`, `+` as a space); invalid escapes stay as they are
/// and bytes that do not form UTF-8 become U+FFFD.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' && i + 2 < b.len() {
            let hex = |x: u8| (x as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus && c == b'+' { b' ' } else { c });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.find('=') {
            Some(e) => (
                percent_decode(&p[..e], true),
                percent_decode(&p[e + 1..], true),
            ),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

/// Matches a request path against a route's path: literal segments, `:name` or `{name}`
/// parameters (one non-empty segment each, percent-decoded), and a trailing `*` matching the
/// rest. `None` when it does not match.
pub fn match_path(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return Some(params),
            (Some("*"), Some(first)) => {
                let rest: Vec<&str> = std::iter::once(first).chain(segs).collect();
                params.push(("*".to_string(), percent_decode(&rest.join("/"), false)));
                return Some(params);
            }
            (Some(p), Some(s)) => {
                let name = if let Some(n) = p.strip_prefix(':') {
                    Some(n)
                } else if p.len() > 2 && p.starts_with('{') && p.ends_with('}') {
                    Some(&p[1..p.len() - 1])
                } else {
                    None
                };
                match name {
                    Some(n) if !s.is_empty() => {
                        params.push((n.to_string(), percent_decode(s, false)))
                    }
                    Some(_) => return None,
                    None if p == s => {}
                    None => return None,
                }
            }
            _ => return None,
        }
    }
}

/// A response: status, headers and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

impl Response {
    /// A 200 response with `body` and no headers (trail adds none for an empty header list but
    /// `content-length`).
    pub fn new(body: impl Into<Vec<u8>>) -> Response {
        Response {
            body: body.into(),
            ..Response::default()
        }
    }

    /// An empty response with `status`.
    pub fn status(status: StatusCode) -> Response {
        Response {
            status,
            ..Response::default()
        }
    }

    /// `200`, `content-type: text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(body.into().into_bytes())
            .with_header("content-type", "text/plain; charset=utf-8")
    }

    /// `200`, `content-type: application/json`, the value's JSON text.
    pub fn json(value: impl Into<json::Value>) -> Response {
        Response::new(value.into().to_string().into_bytes())
            .with_header("content-type", "application/json")
    }

    /// `200`, `content-type: text/html; charset=utf-8`.
    pub fn html(body: impl Into<String>) -> Response {
        Response::new(body.into().into_bytes())
            .with_header("content-type", "text/html; charset=utf-8")
    }

    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// Sets header `name` (replacing one of the same name, any case).
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.set_header(name, value);
        self
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An error a handler returns: its status, and a message sent as `{"error": message}`
/// (`application/json`, the status's reason phrase when there is no message).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: Option<String>,
}

impl HttpError {
    pub fn status(status: StatusCode) -> HttpError {
        HttpError {
            status,
            message: None,
        }
    }

    pub fn message(status: StatusCode, message: impl ToString) -> HttpError {
        HttpError {
            status,
            message: Some(message.to_string()),
        }
    }

    /// A 500 with `message`.
    pub fn internal(message: impl ToString) -> HttpError {
        HttpError::message(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// The message (the status's reason phrase when there is none), as the response's `error`.
impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => f.write_str(self.status.canonical_reason()),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<json::Error> for HttpError {
    fn from(e: json::Error) -> Self {
        HttpError::message(StatusCode::BAD_REQUEST, format!("invalid JSON: {}", e))
    }
}

impl From<crate::db::Error> for HttpError {
    fn from(e: crate::db::Error) -> Self {
        HttpError::internal(e)
    }
}

impl From<crate::fetch::Error> for HttpError {
    fn from(e: crate::fetch::Error) -> Self {
        HttpError::message(StatusCode::BAD_GATEWAY, e)
    }
}

impl From<crate::fs::Error> for HttpError {
    fn from(e: crate::fs::Error) -> Self {
        let status = match e.code.as_str() {
            "ENOENT" => StatusCode::NOT_FOUND,
            "EACCES" => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError::message(status, e)
    }
}

/// A JSON response: `Json(value)` answers `200`, `application/json`.
#[derive(Clone, Debug)]
pub struct Json<T>(pub T);

/// An HTML response: `Html(text)` answers `200`, `text/html; charset=utf-8`.
#[derive(Clone, Debug)]
pub struct Html<T>(pub T);

/// A redirect: `Location` and a 3xx status.
#[derive(Clone, Debug)]
pub struct Redirect {
    status: StatusCode,
    location: String,
}

impl Redirect {
    /// `303 See Other`.
    pub fn to(uri: &str) -> Redirect {
        Redirect {
            status: StatusCode::SEE_OTHER,
            location: uri.to_string(),
        }
    }

    /// `307 Temporary Redirect`.
    pub fn temporary(uri: &str) -> Redirect {
        Redirect {
            status: StatusCode::TEMPORARY_REDIRECT,
            location: uri.to_string(),
        }
    }

    /// `308 Permanent Redirect`.
    pub fn permanent(uri: &str) -> Redirect {
        Redirect {
            status: StatusCode::PERMANENT_REDIRECT,
            location: uri.to_string(),
        }
    }
}

/// What a handler may return.
pub trait IntoResponse {
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::new(self).with_header("content-type", "application/octet-stream")
    }
}

impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Response {
        self.to_vec().into_response()
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::default()
    }
}

impl IntoResponse for json::Value {
    fn into_response(self) -> Response {
        Response::json(self)
    }
}

impl<T: Into<json::Value>> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        Response::json(self.0)
    }
}

impl<T: Into<String>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        Response::html(self.0)
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        Response::status(self.status).with_header("location", &self.location)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let message = match self.message {
            Some(m) => m,
            None => self.status.canonical_reason().to_string(),
        };
        Response::json(crate::json!({ "error": message })).with_status(self.status)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::status(self)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

pub(crate) type Handler = Box<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response>>>>;

/// A route: method, path (`/greet/:name`, `/files/{id}`, `/static/*`) and its handler.
pub struct HttpRoute {
    pub method: Method,
    pub path: String,
    pub(crate) handler: Handler,
}

impl HttpRoute {
    /// A route whose handler is an async function or closure of a `Request`.
    pub fn new<F, Fut, R>(method: Method, path: impl ToString, f: F) -> HttpRoute
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: IntoResponse,
    {
        HttpRoute {
            method,
            path: path.to_string(),
            handler: Box::new(move |req| {
                let fut = f(req);
                Box::pin(async move { fut.await.into_response() })
            }),
        }
    }

    /// Runs the handler on `req` (what trail does for a request to this route).
    pub async fn call(&self, req: Request) -> Response {
        (self.handler)(req).await
    }
}

/// Routes by method: `routing::get("/hello", |_req| async { "Hello" })`.
pub mod routing {
    use super::{HttpRoute, IntoResponse, Method, Request};
    use std::future::Future;

    macro_rules! method_fn {
        ($($name:ident => $m:ident),*) => {$(
            pub fn $name<F, Fut, R>(path: impl ToString, f: F) -> HttpRoute
            where
                F: Fn(Request) -> Fut + 'static,
                Fut: Future<Output = R> + 'static,
                R: IntoResponse,
            {
                HttpRoute::new(Method::$m, path, f)
            }
        )*};
    }

    method_fn!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE,
               head => HEAD, options => OPTIONS, all => ALL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_paths_with_parameters() {
        assert_eq!(match_path("/hello", "/hello"), Some(vec![]));
        assert_eq!(match_path("/hello", "/hello/"), None);
        assert_eq!(
            match_path("/greet/:name", "/greet/Al%20ice"),
            Some(vec![("name".into(), "Al ice".into())])
        );
        assert_eq!(
            match_path("/a/{x}/b/:y", "/a/1/b/2"),
            Some(vec![("x".into(), "1".into()), ("y".into(), "2".into())])
        );
        assert_eq!(match_path("/greet/:name", "/greet/"), None);
        assert_eq!(match_path("/greet/:name", "/greet"), None);
        assert_eq!(
            match_path("/static/*", "/static/a/b%2Fc"),
            Some(vec![("*".into(), "a/b/c".into())])
        );
    }

    #[test]
    fn request_accessors() {
        let req = Request::new(
            "get",
            "/api/example?page=2&q=a+b%21&flag&page=3",
            vec![("id".into(), "7".into())],
            vec![("X-Forwarded-For".into(), "1.2.3.4".into())],
            br#"{"message":"test"}"#.to_vec(),
        );
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.path(), "/api/example");
        assert_eq!(req.query_param("page").as_deref(), Some("2"));
        assert_eq!(req.query_param("q").as_deref(), Some("a b!"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("nope"), None);
        assert_eq!(req.path_param("id"), Some("7"));
        assert_eq!(req.header("x-forwarded-for"), Some("1.2.3.4"));
        assert_eq!(
            req.json().unwrap().get("message").unwrap().as_str(),
            Some("test")
        );
        let bad = Request::new("POST", "/", vec![], vec![], b"{nope".to_vec());
        let err = bad.json().unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err
            .message
            .unwrap()
            .starts_with("invalid JSON in request body: "));
    }

    #[test]
    fn responses() {
        let r = "hi".into_response();
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        let r = HttpError::message(StatusCode::NOT_FOUND, "no \"x\"").into_response();
        assert_eq!(r.status.0, 404);
        assert_eq!(r.body, br#"{"error":"no \"x\""}"#.to_vec());
        let r: Result<String, HttpError> = Err(HttpError::status(StatusCode::FORBIDDEN));
        assert_eq!(r.into_response().body, br#"{"error":"Forbidden"}"#.to_vec());
        let r = (StatusCode::CREATED, Json(crate::json!({"id": 1}))).into_response();
        assert_eq!(r.status.0, 201);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let r = Redirect::to("/x").into_response();
        assert_eq!((r.status.0, r.header("location")), (303, Some("/x")));
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
