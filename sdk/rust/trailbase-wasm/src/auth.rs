//! Who is calling: the signed-in user of a request (`req.user()`), and one-line guards for
//! handlers that need a user or an admin (docs/auth.md, "In guests").
//!
//! trail resolves the caller before the handler runs: from `Authorization: Bearer` or the
//! `auth_token` cookie, the token's Ed25519 signature and expiry checked by the host. A request
//! authenticated by cookie that changes state (any method but GET, HEAD, OPTIONS) counts only
//! with a `CSRF-Token` header equal to the user's `csrf_token`; trail checks that too, so
//! `req.user()` is `None` for a request a foreign site made a browser send.
//!
//! ```ignore
//! use trailbase_wasm::auth::{require_admin, require_user};
//! use trailbase_wasm::db::{query, Value};
//!
//! routing::get("/my/todos", |req: Request| async move {
//!     let user = require_user(&req)?; // 401/403 {"error": ...} otherwise
//!     let rows = query("SELECT text FROM todos WHERE owner = ?", vec![Value::Blob(user.id_bytes())])
//!         .await?;
//!     Ok::<_, HttpError>(Json(..))
//! }),
//! routing::get("/admin/stats", |req: Request| async move {
//!     require_admin(&req).await?; // also 403 {"error": "admins only"}
//!     ..
//! }),
//! ```

use std::rc::Rc;

use crate::abi::Reader;
use crate::db::{self, Value};
use crate::http::{HttpError, HttpRoute, IntoResponse, Request, StatusCode};

/// The signed-in user of a request (the reference's `User`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user's id: the URL-safe base64 of the 16 bytes of `_user.id`, padded (24 characters).
    pub id: String,
    /// The address the token was issued for.
    pub email: Option<String>,
    /// Always `None`: trail's users have no user names (the reference's field, kept for code
    /// written against it).
    pub username: Option<String>,
    /// The CSRF token of the user's access token (its `csrf_token` claim).
    pub csrf_token: String,
}

impl User {
    /// The 16 bytes of the user's id (`_user.id` is a BLOB), to bind as a query parameter:
    /// `vec![Value::Blob(user.id_bytes())]`. Empty for an id that is not URL-safe base64, which
    /// matches no row.
    pub fn id_bytes(&self) -> Vec<u8> {
        base64url_decode(&self.id).unwrap_or_default()
    }
}

/// The caller as trail resolved it (the end of the request's encoding, docs/guest-abi.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Caller {
    #[default]
    Anonymous,
    User(User),
    /// Credentials were sent that do not count: the status a guard answers, and why.
    Refused(u16, String),
}

/// Reads the caller that ends a request. A request that ends before it (a trail of ABI 1) is
/// anonymous, and so is an unknown tag: nothing unknown ever grants a user.
pub(crate) fn decode_caller(r: &mut Reader) -> Result<Caller, String> {
    if r.at_end() {
        return Ok(Caller::Anonymous);
    }
    match r.u8()? {
        1 => {
            let id = r.string()?;
            let email = r.string()?;
            let csrf_token = r.string()?;
            Ok(Caller::User(User {
                id,
                email: if email.is_empty() { None } else { Some(email) },
                username: None,
                csrf_token,
            }))
        }
        2 => {
            let status = r.u32()?;
            let message = r.string()?;
            let status = if status == 403 { 403 } else { 401 };
            Ok(Caller::Refused(status, message))
        }
        _ => Ok(Caller::Anonymous),
    }
}

impl Request {
    /// The signed-in user, or `None` for an anonymous request and for credentials that do not
    /// count (see `auth_error`).
    pub fn user(&self) -> Option<&User> {
        match &self.caller {
            Caller::User(u) => Some(u),
            _ => None,
        }
    }

    /// Why the credentials the request carried do not count (an invalid or expired token: 401;
    /// a cookie on a POST without its CSRF token: 403); `None` when it carried none, or when
    /// they count.
    pub fn auth_error(&self) -> Option<(StatusCode, &str)> {
        match &self.caller {
            Caller::Refused(status, msg) => Some((StatusCode(*status), msg.as_str())),
            _ => None,
        }
    }

    /// The request as if `user` had signed in (for tests of handlers).
    pub fn with_user(mut self, user: User) -> Request {
        self.caller = Caller::User(user);
        self
    }
}

/// The signed-in user of `req`, or the error to answer with: 401 `{"error": ...}` for an
/// anonymous request or an invalid or expired token, 403 for a cookie without its CSRF token.
pub fn require_user(req: &Request) -> Result<&User, HttpError> {
    match &req.caller {
        Caller::User(u) => Ok(u),
        Caller::Refused(status, msg) => Err(HttpError::message(StatusCode(*status), msg)),
        Caller::Anonymous => Err(HttpError::message(
            StatusCode::UNAUTHORIZED,
            "sign in first (no auth token was sent)",
        )),
    }
}

/// Whether `user` is an admin now: `_user.admin`, read at the call (the token's `admin` claim
/// may be stale). A user whose row is gone is not.
pub async fn is_admin(user: &User) -> Result<bool, HttpError> {
    let rows = db::query(
        r#"SELECT admin FROM "_user" WHERE id = ?"#,
        vec![Value::Blob(user.id_bytes())],
    )
    .await
    .map_err(|e| HttpError::internal(format!("cannot read _user.admin: {}", e)))?;
    Ok(matches!(
        rows.first().and_then(|row| row.first()),
        Some(Value::Integer(v)) if *v > 0
    ))
}

/// The signed-in user of `req` when it is an admin; otherwise the error to answer with: 401 as
/// `require_user`, 403 `{"error": "admins only"}` for a user who is not one.
pub async fn require_admin(req: &Request) -> Result<&User, HttpError> {
    let user = require_user(req)?;
    if is_admin(user).await? {
        Ok(user)
    } else {
        Err(HttpError::message(StatusCode::FORBIDDEN, "admins only"))
    }
}

impl HttpRoute {
    /// The route, answered only for admins (`require_admin` before its handler runs):
    /// `routing::get("/admin/stats", stats).require_admin()`.
    pub fn require_admin(self) -> HttpRoute {
        let inner = Rc::new(self.handler);
        HttpRoute {
            method: self.method,
            path: self.path,
            handler: Box::new(move |req| {
                let inner = inner.clone();
                Box::pin(async move {
                    if let Err(e) = require_admin(&req).await {
                        return e.into_response();
                    }
                    inner(req).await
                })
            }),
        }
    }
}

/// URL-safe base64, padded or not (the host pads; `id` of a hand-made `User` may not be).
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None; // a lone character: no whole byte
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Writer;
    use crate::http::{routing, Response};
    use std::cell::RefCell;

    /// Runs a route on req to its answer (outside trail every host call fails at once).
    fn answer(route: &Rc<HttpRoute>, req: Request) -> Response {
        let out = Rc::new(RefCell::new(None));
        let (o, r) = (out.clone(), route.clone());
        crate::rt::spawn(async move { *o.borrow_mut() = Some(r.call(req).await) });
        let resp = out.borrow_mut().take();
        resp.expect("the route answers without waiting")
    }

    fn alice() -> User {
        User {
            id: "AZK3eL7XdJSmy4l_Vk_lSg==".to_string(),
            email: Some("alice@example.org".to_string()),
            username: None,
            csrf_token: "c".to_string(),
        }
    }

    #[test]
    fn decodes_ids() {
        assert_eq!(
            alice().id_bytes(),
            vec![1, 146, 183, 120, 190, 215, 116, 148, 166, 203, 137, 127, 86, 79, 229, 74]
        );
        assert_eq!(
            base64url_decode("AZK3eL7XdJSmy4l_Vk_lSg"),
            Some(alice().id_bytes())
        );
        assert_eq!(base64url_decode("a+b/"), None);
        assert_eq!(base64url_decode("abcde"), None);
        assert_eq!(base64url_decode(""), Some(vec![]));
    }

    #[test]
    fn decodes_the_caller() {
        let mut w = Writer::default();
        w.buf.push(1);
        w.str(&alice().id);
        w.str("alice@example.org");
        w.str("c");
        assert_eq!(
            decode_caller(&mut Reader::new(&w.buf)),
            Ok(Caller::User(alice()))
        );
        let mut w = Writer::default();
        w.buf.push(2);
        w.u32(403);
        w.str("CSRF-Token missing");
        assert_eq!(
            decode_caller(&mut Reader::new(&w.buf)),
            Ok(Caller::Refused(403, "CSRF-Token missing".to_string()))
        );
        assert_eq!(decode_caller(&mut Reader::new(&[])), Ok(Caller::Anonymous));
        assert_eq!(decode_caller(&mut Reader::new(&[0])), Ok(Caller::Anonymous));
        assert_eq!(
            decode_caller(&mut Reader::new(&[9, 1])),
            Ok(Caller::Anonymous)
        );
        assert!(decode_caller(&mut Reader::new(&[1, 5, 0, 0, 0, b'x'])).is_err());
    }

    #[test]
    fn guards_answer_401_and_403() {
        let anon = Request::new("GET", "/", vec![], vec![], vec![]);
        assert_eq!(anon.user(), None);
        let e = require_user(&anon).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let mut refused = Request::new("POST", "/", vec![], vec![], vec![]);
        refused.caller = Caller::Refused(403, "no CSRF token".to_string());
        assert_eq!(
            refused.auth_error(),
            Some((StatusCode::FORBIDDEN, "no CSRF token"))
        );
        let e = require_user(&refused).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_deref()),
            (StatusCode::FORBIDDEN, Some("no CSRF token"))
        );
        let signed = Request::new("GET", "/", vec![], vec![], vec![]).with_user(alice());
        assert_eq!(require_user(&signed), Ok(&alice()));
        // Outside trail the stand-in refuses SQL: an admin check is a 500, never a pass.
        let route = Rc::new(routing::get("/admin", |_req| async { "secret" }).require_admin());
        assert_eq!(answer(&route, signed).status.0, 500);
        let resp = answer(&route, anon);
        assert_eq!(resp.status.0, 401);
        assert_eq!(
            resp.body,
            br#"{"error":"sign in first (no auth token was sent)"}"#.to_vec()
        );
    }
}
