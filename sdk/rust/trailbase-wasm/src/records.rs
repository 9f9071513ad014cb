//! Record hooks: code that runs on a Record API's writes (docs/records.md), the TypeScript SDK's
//! `trailbase-wasm/records` in Rust.
//!
//! ```ignore
//! use trailbase_wasm::http::{HttpError, StatusCode};
//! use trailbase_wasm::records::{HookContext, RecordHook};
//!
//! fn record_hooks() -> Vec<RecordHook> {
//!     vec![RecordHook::before_create("todos", |ctx: HookContext| async move {
//!         let text = ctx.record.get("text").and_then(|t| t.as_str()).unwrap_or("");
//!         if text.contains("spam") {
//!             return Err(HttpError::message(StatusCode::UNPROCESSABLE_ENTITY, "no spam"));
//!         }
//!         let mut record = ctx.record.clone();
//!         record.insert("text", text.trim().into());
//!         Ok(Some(record)) // the record to write; Ok(None) keeps it
//!     })]
//! }
//! ```
//!
//! `before_*` hooks run inside the write's transaction: what they write with `db::execute`
//! commits or rolls back with it; they may change the record (create, update) or reject the write
//! with an `HttpError` (its status, 400-599, and message are the answer). `after_*` hooks run once
//! the write has committed and cannot undo it. A hook runs synchronously with the write: its
//! statements complete at once, but a future that waits for anything else (a timer, `fetch`, a
//! file, `Transaction::begin`) fails the write, and so does a panic (a trap) or running past
//! `runtime.cpu_budget_ms`. Nothing of a failed write is kept, the hook's own statements
//! included.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::http::HttpError;
use crate::json::{self, Value};

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordEvent {
    BeforeCreate,
    AfterCreate,
    BeforeUpdate,
    AfterUpdate,
    BeforeDelete,
    AfterDelete,
}

impl RecordEvent {
    /// The event's name as trail and the TypeScript SDK spell it (`"beforeCreate"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordEvent::BeforeCreate => "beforeCreate",
            RecordEvent::AfterCreate => "afterCreate",
            RecordEvent::BeforeUpdate => "beforeUpdate",
            RecordEvent::AfterUpdate => "afterUpdate",
            RecordEvent::BeforeDelete => "beforeDelete",
            RecordEvent::AfterDelete => "afterDelete",
        }
    }

    fn from_str(s: &str) -> Option<RecordEvent> {
        [
            RecordEvent::BeforeCreate,
            RecordEvent::AfterCreate,
            RecordEvent::BeforeUpdate,
            RecordEvent::AfterUpdate,
            RecordEvent::BeforeDelete,
            RecordEvent::AfterDelete,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

impl fmt::Display for RecordEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of the write.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The user's id: the URL-safe base64 of `_user.id`.
    pub id: String,
    pub email: String,
    pub admin: bool,
}

/// What a hook gets.
#[derive(Clone, Debug, PartialEq)]
pub struct HookContext {
    /// The Record API's name (`record_apis { name: ... }`).
    pub api: String,
    pub event: RecordEvent,
    /// Create and update: the fields the request sent, a JSON object (BLOBs as URL-safe
    /// base64); after a write: as written (with the new record's `id` after a create); delete:
    /// `{}`.
    pub record: Value,
    /// The record's id as text (update, delete, and after a create); `None` before a create.
    pub id: Option<String>,
    /// The caller; `None` when anonymous.
    pub user: Option<User>,
}

impl HookContext {
    /// The context from trail's JSON text.
    pub fn parse(text: &[u8]) -> Result<HookContext, String> {
        let v = json::parse(text).map_err(|e| format!("the hook's context is not JSON: {}", e))?;
        let api = v
            .get("api")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let event = v
            .get("event")
            .and_then(Value::as_str)
            .and_then(RecordEvent::from_str)
            .ok_or_else(|| "the hook's context has no known event".to_string())?;
        let record = match v.get("record") {
            Some(r @ Value::Object(_)) => r.clone(),
            _ => Value::Object(Vec::new()),
        };
        let id = v.get("id").and_then(Value::as_str).map(str::to_string);
        let user = match v.get("user") {
            Some(u @ Value::Object(_)) => Some(User {
                id: u
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                email: u
                    .get("email")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                admin: u.get("admin").and_then(Value::as_bool).unwrap_or(false),
            }),
            _ => None,
        };
        Ok(HookContext {
            api,
            event,
            record,
            id,
            user,
        })
    }
}

/// What a hook may return: nothing (`()`, `None`: keep the record), the record to write (a
/// JSON object: create and update), or a `Result` of these whose error (an `HttpError`, or
/// anything that converts into one, such as a `db::Error`: a 500) rejects the write.
pub trait HookResult {
    fn into_hook_result(self) -> Result<Option<Value>, HttpError>;
}

impl HookResult for () {
    fn into_hook_result(self) -> Result<Option<Value>, HttpError> {
        Ok(None)
    }
}

impl HookResult for Value {
    fn into_hook_result(self) -> Result<Option<Value>, HttpError> {
        Ok(Some(self))
    }
}

impl HookResult for Option<Value> {
    fn into_hook_result(self) -> Result<Option<Value>, HttpError> {
        Ok(self)
    }
}

impl<T: HookResult, E: Into<HttpError>> HookResult for Result<T, E> {
    fn into_hook_result(self) -> Result<Option<Value>, HttpError> {
        match self {
            Ok(v) => v.into_hook_result(),
            Err(e) => Err(e.into()),
        }
    }
}

type HookFuture = Pin<Box<dyn Future<Output = Result<Option<Value>, HttpError>>>>;
pub(crate) type HookFn = Box<dyn Fn(HookContext) -> HookFuture>;

/// `RecordHook::before_create(api, f)` and the other events: `RecordHook::new` with the event.
macro_rules! events {
    ($($(#[$doc:meta])* $name:ident => $event:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name<F, Fut, R>(api: impl ToString, f: F) -> RecordHook
        where
            F: Fn(HookContext) -> Fut + 'static,
            Fut: Future<Output = R> + 'static,
            R: HookResult,
        {
            RecordHook::new(api, RecordEvent::$event, f)
        }
    )*};
}

/// A hook on one event of one Record API.
pub struct RecordHook {
    pub api: String,
    pub event: RecordEvent,
    pub(crate) handler: HookFn,
}

impl RecordHook {
    pub fn new<F, Fut, R>(api: impl ToString, event: RecordEvent, f: F) -> RecordHook
    where
        F: Fn(HookContext) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: HookResult,
    {
        RecordHook {
            api: api.to_string(),
            event,
            handler: Box::new(move |ctx| {
                let fut = f(ctx);
                Box::pin(async move { fut.await.into_hook_result() })
            }),
        }
    }

    events! {
        /// Before a record is created, inside the write's transaction.
        before_create => BeforeCreate;
        /// Once a create has committed.
        after_create => AfterCreate;
        /// Before a record is updated, inside the write's transaction.
        before_update => BeforeUpdate;
        /// Once an update has committed.
        after_update => AfterUpdate;
        /// Before a record is deleted, inside the write's transaction.
        before_delete => BeforeDelete;
        /// Once a delete has committed.
        after_delete => AfterDelete;
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls `fut` for as long as it wakes itself during a poll (`yield_now`, a `join` of finished
/// futures); `None` when it waits for something else: it is dropped, which releases its calls.
fn run_now<T>(fut: Pin<Box<dyn Future<Output = T>>>) -> Option<T> {
    let mut fut = fut;
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        flag.0.store(false, Ordering::Relaxed);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        if !flag.0.load(Ordering::Relaxed) {
            return None;
        }
    }
}

/// The answer for trail (`trail.hook_result`): status 0 and the record's JSON (empty: keep the
/// record), or the rejection's status and message. `None`: the hook did not finish.
pub(crate) fn run(hook: &RecordHook, ctx: &[u8]) -> Option<(u16, Vec<u8>)> {
    let ctx = match HookContext::parse(ctx) {
        Ok(ctx) => ctx,
        Err(e) => return Some((500, e.into_bytes())),
    };
    match run_now((hook.handler)(ctx))? {
        Ok(None) => Some((0, Vec::new())),
        Ok(Some(v)) => Some((0, json::to_string(&v).into_bytes())),
        Err(e) => Some((e.status.0, e.to_string().into_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StatusCode;

    const CTX: &str = r#"{"api":"todos","event":"beforeCreate","record":{"text":" a "},"id":null,"user":{"id":"AAA","email":"a@b.c","admin":false}}"#;

    #[test]
    fn context_parses() {
        let c = HookContext::parse(CTX.as_bytes()).unwrap();
        assert_eq!(c.api, "todos");
        assert_eq!(c.event, RecordEvent::BeforeCreate);
        assert_eq!(c.id, None);
        assert_eq!(c.user.unwrap().email, "a@b.c");
        assert_eq!(c.record.get("text").and_then(Value::as_str), Some(" a "));
        assert!(HookContext::parse(b"{\"event\":\"never\"}").is_err());
    }

    #[test]
    fn answers() {
        let change = RecordHook::before_create("todos", |ctx: HookContext| async move {
            let mut r = ctx.record.clone();
            r.insert("text", Value::from("A"));
            Ok::<_, HttpError>(r)
        });
        assert_eq!(
            run(&change, CTX.as_bytes()),
            Some((0, br#"{"text":"A"}"#.to_vec()))
        );
        let keep = RecordHook::after_create("todos", |_ctx| async {});
        assert_eq!(run(&keep, CTX.as_bytes()), Some((0, Vec::new())));
        let reject = RecordHook::before_create("todos", |_ctx| async {
            Err::<(), _>(HttpError::message(StatusCode(422), "no"))
        });
        assert_eq!(run(&reject, CTX.as_bytes()), Some((422, b"no".to_vec())));
        let yields = RecordHook::before_delete("todos", |_ctx| async {
            crate::yield_now().await;
        });
        assert_eq!(run(&yields, CTX.as_bytes()), Some((0, Vec::new())));
        let waits = RecordHook::before_delete("todos", |_ctx| async {
            // a host call trail never completes during the hook
            crate::rt::HostOp { op: 999 }.await;
        });
        assert_eq!(run(&waits, CTX.as_bytes()), None);
    }
}
