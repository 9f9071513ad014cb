//! `trailbase-wasm`: HTTP handlers and jobs for trail, written in Rust and compiled to
//! WebAssembly (`wasm32-wasi`/`wasm32-wasip1`). trail compiles the module to native code and
//! runs it in its sandbox (docs/guest-abi.md, "Compiled components").
//!
//! ```ignore
//! use trailbase_wasm::http::{routing, HttpRoute, Request};
//! use trailbase_wasm::{export, Guest};
//!
//! struct Endpoints;
//!
//! impl Guest for Endpoints {
//!     fn http_handlers() -> Vec<HttpRoute> {
//!         vec![routing::get("/hello", |_req: Request| async { "Hello from WASM!" })]
//!     }
//! }
//!
//! export!(Endpoints);
//! ```
//!
//! Handlers are async: they may wait for SQL (`db::query`), `fetch`, files or a timer, and the
//! worker serves other requests meanwhile. Everything runs on one thread per instance; each of
//! trail's workers has its own instance, so module state (a `thread_local!`) is per worker.
//! A panic is a trap: the request gets a 500, the message is logged, and the instance is
//! replaced by a fresh one.

pub mod auth;
pub mod db;
pub mod fetch;
pub mod fs;
pub mod http;
pub mod job;
pub mod json;
pub mod records;
pub mod time;

#[doc(hidden)]
pub mod abi;
mod rt;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use crate::abi::{Reader, Writer};
use crate::http::{HttpRoute, IntoResponse, Request, Response};
use crate::job::Job;
use crate::records::RecordHook;

pub use crate::rt::{join, join_all, yield_now};

/// What a component implements: its routes and jobs. `export!(Type)` makes it the component.
pub trait Guest {
    /// Called once per instance, before the routes and jobs are asked for.
    fn init(_args: Args) {}

    fn http_handlers() -> Vec<HttpRoute> {
        Vec::new()
    }

    fn job_handlers() -> Vec<Job> {
        Vec::new()
    }

    /// Hooks on the Record APIs' writes (`records`).
    fn record_hooks() -> Vec<RecordHook> {
        Vec::new()
    }
}

/// What `Guest::init` gets (the reference SDK's shape; trail passes no version).
#[derive(Debug, Default)]
pub struct Args {
    pub version: Option<String>,
}

/// Exports `$impl` (a type implementing `Guest`) as the component: defines the functions trail
/// calls (`_initialize`, `trail_init`, `trail_alloc`, `trail_http`, `trail_job`,
/// `trail_complete`, `trail_record_hook`).
///
/// `_initialize` makes the module a WASI reactor: the linker then runs the constructors once,
/// there, instead of wrapping every export in a run of the constructors and destructors.
#[macro_export]
macro_rules! export {
    ($impl:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn _initialize() {
            extern "C" {
                fn __wasm_call_ctors();
            }
            unsafe { __wasm_call_ctors() }
        }
        #[no_mangle]
        pub extern "C" fn trail_init() {
            $crate::__private::init::<$impl>()
        }
        #[no_mangle]
        pub extern "C" fn trail_alloc(size: i32) -> *mut u8 {
            $crate::abi::alloc(size)
        }
        #[no_mangle]
        pub extern "C" fn trail_http(req: i32, route: i32, ptr: *mut u8, len: i32) {
            $crate::__private::http(req, route, ptr, len)
        }
        #[no_mangle]
        pub extern "C" fn trail_job(run: i32, job: i32) {
            $crate::__private::job(run, job)
        }
        #[no_mangle]
        pub extern "C" fn trail_complete(handle: i32) {
            $crate::__private::complete(handle)
        }
        #[no_mangle]
        pub extern "C" fn trail_record_hook(hook: i32, ptr: *mut u8, len: i32) {
            $crate::__private::record_hook(hook, ptr, len)
        }
    };
}

/// Runs `fut` in the background: it goes on after the handler that started it has answered
/// (until the instance is replaced). `addPeriodicCallback` is a loop of `time::sleep` in one.
pub fn spawn(fut: impl Future<Output = ()> + 'static) {
    rt::spawn(fut)
}

/// Writes `msg` to trail's log as a `[WASM]` line at debug level (0).
pub fn log_debug(msg: &str) {
    abi::log(0, msg)
}

/// Info level (1), as `console.log` in JS.
pub fn log_info(msg: &str) {
    abi::log(1, msg)
}

pub fn log_warn(msg: &str) {
    abi::log(2, msg)
}

pub fn log_error(msg: &str) {
    abi::log(3, msg)
}

/// `info!("x = {}", x)`: a `[WASM]` line in trail's log (`println!` works too).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log_info(&::std::format!($($arg)*)) };
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log_debug(&::std::format!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log_warn(&::std::format!($($arg)*)) };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log_error(&::std::format!($($arg)*)) };
}

#[derive(Default)]
struct Component {
    routes: Vec<Rc<HttpRoute>>,
    jobs: Vec<Rc<Job>>,
    hooks: Vec<Rc<RecordHook>>,
}

thread_local! {
    static COMPONENT: RefCell<Component> = RefCell::new(Component::default());
}

/// The manifest trail reads at load: `u32 n` + n × (method, path), then `u32 n` + n × (name,
/// schedule), then, when there are record hooks, `u32 n` + n × (api, event) (without hooks the
/// component loads in a trail older than them too).
fn manifest_bytes(routes: &[Rc<HttpRoute>], jobs: &[Rc<Job>], hooks: &[Rc<RecordHook>]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(routes.len() as u32);
    for r in routes {
        w.str(r.method.as_str());
        w.str(&r.path);
    }
    w.u32(jobs.len() as u32);
    for j in jobs {
        w.str(&j.name);
        w.str(&j.spec);
    }
    if !hooks.is_empty() {
        w.u32(hooks.len() as u32);
        for h in hooks {
            w.str(&h.api);
            w.str(h.event.as_str());
        }
    }
    w.buf
}

fn decode_request(b: &[u8]) -> Result<Request, String> {
    let mut r = Reader::new(b);
    let method = r.string()?;
    let url = r.string()?;
    let _path = r.bytes()?; // derived from url when asked for
    let _query = r.bytes()?;
    let path_params = r.pairs()?;
    let headers = r.pairs()?;
    let body = r.bytes()?.to_vec();
    let caller = auth::decode_caller(&mut r)?;
    Ok(Request {
        method,
        url,
        path_params,
        headers,
        body,
        caller,
    })
}

fn send_response(req: i32, resp: Response) {
    let mut head = Writer::default();
    head.pairs(&resp.headers);
    let rc = abi::respond(req, resp.status.0, &head.buf, &resp.body);
    if rc == -2 {
        // trail answered 500 itself and logged why; say which response it was.
        log_error(&format!(
            "trail refused the response (status {}, {} headers): a status outside 100-599 or \
             a header name or value it does not accept",
            resp.status.0,
            resp.headers.len()
        ));
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn init<T: Guest>() {
        std::panic::set_hook(Box::new(|info| log_error(&format!("panic: {}", info))));
        T::init(Args::default());
        let routes: Vec<Rc<HttpRoute>> = T::http_handlers().into_iter().map(Rc::new).collect();
        let jobs: Vec<Rc<Job>> = T::job_handlers().into_iter().map(Rc::new).collect();
        let hooks: Vec<Rc<RecordHook>> = T::record_hooks().into_iter().map(Rc::new).collect();
        let m = manifest_bytes(&routes, &jobs, &hooks);
        COMPONENT.with(|c| {
            *c.borrow_mut() = Component {
                routes,
                jobs,
                hooks,
            }
        });
        // trail checks the manifest itself and fails the load with a message when it is bad.
        abi::manifest(&m);
    }

    pub fn http(req: i32, route: i32, ptr: *mut u8, len: i32) {
        let request = abi::take_alloc(ptr, len)
            .ok_or_else(|| "a request buffer that trail_alloc did not return".to_string())
            .and_then(|b| decode_request(&b));
        let handler = COMPONENT.with(|c| c.borrow().routes.get(route as usize).cloned());
        match (request, handler) {
            (Ok(request), Some(route)) => rt::spawn(async move {
                let resp = route.call(request).await;
                send_response(req, resp);
            }),
            (Err(e), _) => send_response(
                req,
                http::HttpError::internal(format!("malformed request from trail: {}", e))
                    .into_response(),
            ),
            (_, None) => send_response(
                req,
                http::HttpError::internal(format!("no route number {}", route)).into_response(),
            ),
        }
    }

    pub fn job(run: i32, job: i32) {
        match COMPONENT.with(|c| c.borrow().jobs.get(job as usize).cloned()) {
            Some(job) => rt::spawn(async move {
                let r = job.run().await;
                match r {
                    Ok(()) => abi::job_done(run, true, ""),
                    Err(msg) => abi::job_done(run, false, &msg),
                };
            }),
            None => {
                abi::job_done(run, false, &format!("no job number {}", job));
            }
        }
    }

    pub fn complete(handle: i32) {
        abi::on_complete(handle);
        rt::run_ready();
    }

    /// Runs record hook `hook` on its context (JSON) synchronously and gives trail its answer;
    /// a hook that did not finish gives none (trail fails the write).
    pub fn record_hook(hook: i32, ptr: *mut u8, len: i32) {
        let ctx = abi::take_alloc(ptr, len);
        let h = COMPONENT.with(|c| c.borrow().hooks.get(hook as usize).cloned());
        let answer = match (ctx, h) {
            (Some(ctx), Some(h)) => {
                let a = records::run(&h, &ctx);
                if a.is_none() {
                    log_error(&format!(
                        "record hook {} {}: it waits for a host call (a timer, fetch, a file, a \
                         transaction); a hook must finish without waiting",
                        h.event, h.api
                    ));
                }
                a
            }
            (None, _) => Some((
                500,
                b"a context buffer that trail_alloc did not return".to_vec(),
            )),
            (_, None) => Some((500, format!("no record hook number {}", hook).into_bytes())),
        };
        if let Some((status, bytes)) = answer {
            abi::hook_result(status, &bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routing;

    struct Quick;

    impl Guest for Quick {
        fn http_handlers() -> Vec<HttpRoute> {
            vec![
                routing::get("/hello", |_req| async { "Hello from WASM!" }),
                routing::get("/greet/:name", |req: Request| async move {
                    format!("Hello, {}!", req.path_param("name").unwrap_or("?"))
                }),
                routing::post("/json", |req: Request| async move {
                    let data = req.json()?;
                    Ok::<_, http::HttpError>(http::Json(json!({"received": data, "timestamp": 1})))
                }),
            ]
        }

        fn job_handlers() -> Vec<Job> {
            vec![
                Job::hourly("ok", || async {}),
                Job::daily("fails", || async { Err::<(), _>("broken") }),
            ]
        }
    }

    struct WithHooks;

    impl Guest for WithHooks {
        fn record_hooks() -> Vec<RecordHook> {
            vec![RecordHook::before_update("todos", |_ctx| async {
                Err::<(), _>(http::HttpError::message(http::StatusCode(409), "taken"))
            })]
        }
    }

    #[test]
    fn record_hooks_are_in_the_manifest_and_answer() {
        __private::init::<WithHooks>();
        let m = abi::imports::MANIFEST.with(|m| m.borrow().clone());
        let mut r = Reader::new(&m);
        assert!(r.pairs().unwrap().is_empty());
        assert!(r.pairs().unwrap().is_empty());
        assert_eq!(
            r.pairs().unwrap(),
            vec![("todos".to_string(), "beforeUpdate".to_string())]
        );
        assert!(r.at_end());
        let ctx = br#"{"api":"todos","event":"beforeUpdate","record":{},"id":"1","user":null}"#;
        let p = abi::alloc(ctx.len() as i32);
        unsafe { std::ptr::copy_nonoverlapping(ctx.as_ptr(), p, ctx.len()) };
        __private::record_hook(0, p, ctx.len() as i32);
        let got = abi::imports::HOOK_RESULTS.with(|h| h.borrow_mut().pop());
        assert_eq!(got, Some((409, b"taken".to_vec())));
    }

    fn encode_request(method: &str, url: &str, params: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(method);
        w.str(url);
        w.str(url.split('?').next().unwrap());
        w.str("");
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        w.pairs(&params);
        w.pairs(&[]);
        w.bytes(body);
        w.buf
    }

    fn call(req: i32, route: i32, bytes: &[u8]) -> (i32, i32, Vec<u8>, Vec<u8>) {
        let p = abi::alloc(bytes.len() as i32);
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        __private::http(req, route, p, bytes.len() as i32);
        abi::imports::RESPONSES.with(|r| r.borrow_mut().pop().unwrap())
    }

    #[test]
    fn serves_the_quick_start() {
        __private::init::<Quick>();
        let m = abi::imports::MANIFEST.with(|m| m.borrow().clone());
        let mut r = Reader::new(&m);
        assert_eq!(r.pairs().unwrap().len(), 3);
        let jobs = r.pairs().unwrap();
        assert!(r.at_end());
        assert_eq!(
            jobs,
            vec![
                ("ok".to_string(), "0 * * * *".to_string()),
                ("fails".to_string(), "0 0 * * *".to_string())
            ]
        );
        let (id, status, _, body) = call(5, 0, &encode_request("GET", "/hello", &[], b""));
        assert_eq!(
            (id, status, body.as_slice()),
            (5, 200, &b"Hello from WASM!"[..])
        );
        let r = call(
            6,
            1,
            &encode_request("GET", "/greet/Alice", &[("name", "Alice")], b""),
        );
        assert_eq!(r.3, b"Hello, Alice!");
        let r = call(
            7,
            2,
            &encode_request("POST", "/json", &[], br#"{"message":"test"}"#),
        );
        assert_eq!(r.3, br#"{"received":{"message":"test"},"timestamp":1}"#);
        let mut head = Reader::new(&r.2);
        assert_eq!(
            head.pairs().unwrap(),
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        let r = call(8, 2, &encode_request("POST", "/json", &[], b"{"));
        assert_eq!(r.1, 400);
        let r = call(9, 7, &encode_request("GET", "/", &[], b""));
        assert_eq!(r.1, 500);
        let r = call(10, 0, &[1, 2]);
        assert_eq!(r.1, 500);

        __private::job(3, 0);
        __private::job(4, 1);
        let done = abi::imports::JOBS_DONE.with(|j| j.borrow().clone());
        assert_eq!(
            done,
            vec![(3, 1, String::new()), (4, 0, "broken".to_string())]
        );
    }
}
