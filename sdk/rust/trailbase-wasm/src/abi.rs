//! trail's ABI for compiled components (docs/guest-abi.md, "Compiled components"): the imports
//! of module `trail`, the byte encodings, and the futures of host calls that complete later.
//!
//! Built for another target than wasm32 (`cargo test` on the host), the imports are replaced by
//! a stand-in that records responses and job results and answers every host call with an
//! error, so that the SDK's own logic can be tested without trail.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::rt;

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "trail")]
    extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: usize);
        pub fn manifest(ptr: *const u8, len: usize) -> i32;
        pub fn respond(
            req: i32,
            status: i32,
            head_ptr: *const u8,
            head_len: usize,
            body_ptr: *const u8,
            body_len: usize,
        ) -> i32;
        pub fn job_done(run: i32, ok: i32, msg_ptr: *const u8, msg_len: usize) -> i32;
        pub fn sql(
            tx: i32,
            kind: i32,
            sql_ptr: *const u8,
            sql_len: usize,
            params_ptr: *const u8,
            params_len: usize,
        ) -> i32;
        pub fn tx_begin() -> i32;
        pub fn tx_end(tx: i32, commit: i32) -> i32;
        pub fn timer(ms: i32) -> i32;
        pub fn fetch(ptr: *const u8, len: usize) -> i32;
        pub fn read_file(path_ptr: *const u8, path_len: usize) -> i32;
        pub fn result_len(handle: i32) -> i32;
        pub fn result_take(handle: i32, ptr: *mut u8, len: usize) -> i32;
        pub fn release(handle: i32);
        pub fn hook_result(status: i32, ptr: *const u8, len: usize) -> i32;
    }
}

/// The stand-in for `cargo test`: what trail would have received.
#[cfg(not(target_arch = "wasm32"))]
pub mod imports {
    use std::cell::RefCell;

    thread_local! {
        pub static RESPONSES: RefCell<Vec<(i32, i32, Vec<u8>, Vec<u8>)>> = RefCell::new(Vec::new());
        pub static JOBS_DONE: RefCell<Vec<(i32, i32, String)>> = RefCell::new(Vec::new());
        pub static MANIFEST: RefCell<Vec<u8>> = RefCell::new(Vec::new());
        pub static HOOK_RESULTS: RefCell<Vec<(i32, Vec<u8>)>> = RefCell::new(Vec::new());
    }

    unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ptr, len)
        }
    }

    pub unsafe fn log(level: i32, ptr: *const u8, len: usize) {
        eprintln!(
            "[WASM {}] {}",
            level,
            String::from_utf8_lossy(bytes(ptr, len))
        );
    }
    pub unsafe fn manifest(ptr: *const u8, len: usize) -> i32 {
        MANIFEST.with(|m| *m.borrow_mut() = bytes(ptr, len).to_vec());
        0
    }
    pub unsafe fn respond(
        req: i32,
        status: i32,
        head_ptr: *const u8,
        head_len: usize,
        body_ptr: *const u8,
        body_len: usize,
    ) -> i32 {
        let (h, b) = (
            bytes(head_ptr, head_len).to_vec(),
            bytes(body_ptr, body_len).to_vec(),
        );
        RESPONSES.with(|r| r.borrow_mut().push((req, status, h, b)));
        0
    }
    pub unsafe fn job_done(run: i32, ok: i32, msg_ptr: *const u8, msg_len: usize) -> i32 {
        let msg = String::from_utf8_lossy(bytes(msg_ptr, msg_len)).into_owned();
        JOBS_DONE.with(|j| j.borrow_mut().push((run, ok, msg)));
        0
    }
    pub unsafe fn sql(_: i32, _: i32, _: *const u8, _: usize, _: *const u8, _: usize) -> i32 {
        -1
    }
    pub unsafe fn tx_begin() -> i32 {
        -1
    }
    pub unsafe fn tx_end(_: i32, _: i32) -> i32 {
        -1
    }
    pub unsafe fn timer(_: i32) -> i32 {
        -1
    }
    pub unsafe fn fetch(_: *const u8, _: usize) -> i32 {
        -1
    }
    pub unsafe fn read_file(_: *const u8, _: usize) -> i32 {
        -1
    }
    pub unsafe fn result_len(_: i32) -> i32 {
        -2
    }
    pub unsafe fn result_take(_: i32, _: *mut u8, _: usize) -> i32 {
        -2
    }
    pub unsafe fn release(_: i32) {}
    pub unsafe fn hook_result(status: i32, ptr: *const u8, len: usize) -> i32 {
        HOOK_RESULTS.with(|h| h.borrow_mut().push((status, bytes(ptr, len).to_vec())));
        0
    }
}

pub(crate) fn log(level: i32, msg: &str) {
    unsafe { imports::log(level, msg.as_ptr(), msg.len()) }
}

pub(crate) fn manifest(encoded: &[u8]) -> i32 {
    unsafe { imports::manifest(encoded.as_ptr(), encoded.len()) }
}

pub(crate) fn respond(req: i32, status: u16, head: &[u8], body: &[u8]) -> i32 {
    unsafe {
        imports::respond(
            req,
            status as i32,
            head.as_ptr(),
            head.len(),
            body.as_ptr(),
            body.len(),
        )
    }
}

/// A record hook's answer (docs/guest-abi.md): status 0 and the record's JSON (or nothing), or
/// a rejection's status and message.
pub(crate) fn hook_result(status: u16, bytes: &[u8]) -> i32 {
    unsafe { imports::hook_result(status as i32, bytes.as_ptr(), bytes.len()) }
}

pub(crate) fn job_done(run: i32, ok: bool, msg: &str) -> i32 {
    unsafe { imports::job_done(run, ok as i32, msg.as_ptr(), msg.len()) }
}

pub(crate) fn sql(tx: u32, kind: i32, sql: &str, params: &[u8]) -> Call {
    Call::new(unsafe {
        imports::sql(
            tx as i32,
            kind,
            sql.as_ptr(),
            sql.len(),
            params.as_ptr(),
            params.len(),
        )
    })
}

pub(crate) fn tx_begin() -> Call {
    Call::new(unsafe { imports::tx_begin() })
}

/// Ends transaction `tx`; the returned call's result says how.
pub(crate) fn tx_end(tx: u32, commit: bool) -> Call {
    Call::new(unsafe { imports::tx_end(tx as i32, commit as i32) })
}

pub(crate) fn timer(ms: u64) -> Call {
    Call::new(unsafe { imports::timer(ms.min(i32::MAX as u64) as i32) })
}

pub(crate) fn fetch(encoded: &[u8]) -> Call {
    Call::new(unsafe { imports::fetch(encoded.as_ptr(), encoded.len()) })
}

pub(crate) fn read_file(path: &str) -> Call {
    Call::new(unsafe { imports::read_file(path.as_ptr(), path.len()) })
}

/// The result of a host call that finished: its bytes (`Ok`), or the host's error message.
fn try_take(handle: i32) -> Option<Result<Vec<u8>, String>> {
    let len = unsafe { imports::result_len(handle) };
    if len < 0 {
        return None; // pending (-1), or taken/unknown (-2)
    }
    let mut buf = vec![0u8; len as usize];
    let rc = unsafe { imports::result_take(handle, buf.as_mut_ptr(), buf.len()) };
    match rc {
        0 => Some(Ok(buf)),
        1 => Some(Err(String::from_utf8_lossy(&buf).into_owned())),
        _ => Some(Err(format!(
            "trail could not hand over a result (code {})",
            rc
        ))),
    }
}

/// Called for `trail_complete(handle)`: moves a ready result to the task waiting for it.
pub(crate) fn on_complete(handle: i32) {
    if handle <= 0 {
        return;
    }
    if let Some(r) = try_take(handle) {
        match r {
            Ok(bytes) => rt::complete(handle as u32, 0, bytes),
            Err(msg) => rt::complete(handle as u32, 1, msg.into_bytes()),
        }
    }
}

/// A host call in flight: ready with its result once trail completed it. Dropped before that,
/// it releases the handle.
pub(crate) struct Call {
    handle: i32,
    wait: Option<rt::HostOp>,
    finished: bool,
}

impl Call {
    fn new(handle: i32) -> Call {
        Call {
            handle,
            wait: None,
            finished: false,
        }
    }
}

impl Future for Call {
    type Output = Result<Vec<u8>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.handle < 0 {
            self.finished = true;
            let why = match self.handle {
                -1 => "a bad pointer or length".to_string(),
                -2 => "too many host calls in flight in this instance".to_string(),
                rc => format!("error {}", rc),
            };
            return Poll::Ready(Err(format!("trail refused the call: {}", why)));
        }
        if self.wait.is_none() {
            // A call that finished at once is taken right away.
            if let Some(r) = try_take(self.handle) {
                self.finished = true;
                return Poll::Ready(r);
            }
            self.wait = Some(rt::HostOp {
                op: self.handle as u32,
            });
        }
        let op = self.wait.as_mut().map(Pin::new);
        match op.map(|op| op.poll(cx)) {
            Some(Poll::Ready(c)) => {
                self.finished = true;
                if c.status == 0 {
                    Poll::Ready(Ok(c.bytes))
                } else {
                    Poll::Ready(Err(String::from_utf8_lossy(&c.bytes).into_owned()))
                }
            }
            _ => Poll::Pending,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished && self.handle > 0 {
            unsafe { imports::release(self.handle) }
        }
    }
}

thread_local! {
    // Buffers handed to the host by trail_alloc, by address: their capacity, to take them back.
    static ALLOCS: RefCell<BTreeMap<usize, usize>> = RefCell::new(BTreeMap::new());
}

/// `trail_alloc(size)`: a buffer of `size` bytes the host fills; 0 when out of memory.
pub fn alloc(size: i32) -> *mut u8 {
    let cap = (size.max(0) as usize).max(1);
    let mut v: Vec<u8> = Vec::new();
    if v.try_reserve_exact(cap).is_err() {
        return std::ptr::null_mut();
    }
    let cap = v.capacity();
    let ptr = v.as_mut_ptr();
    std::mem::forget(v);
    ALLOCS.with(|a| a.borrow_mut().insert(ptr as usize, cap));
    ptr
}

/// Takes back a buffer of `alloc` that holds `len` bytes now; `None` for a pointer `alloc`
/// did not return or a length beyond its size.
pub fn take_alloc(ptr: *mut u8, len: i32) -> Option<Vec<u8>> {
    let cap = ALLOCS.with(|a| a.borrow_mut().remove(&(ptr as usize)))?;
    let v = unsafe { Vec::from_raw_parts(ptr, 0, cap) };
    if len < 0 || len as usize > cap {
        return None;
    }
    let mut v = v;
    unsafe { v.set_len(len as usize) };
    Some(v)
}

/// Little-endian writer of the ABI's encodings.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn pairs(&mut self, pairs: &[(String, String)]) {
        self.u32(pairs.len() as u32);
        for (k, v) in pairs {
            self.str(k);
            self.str(v);
        }
    }
}

/// Reader of the ABI's encodings: every read checks the length first.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, i: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.b.len() - self.i {
            return Err(format!("truncated at byte {}", self.i));
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A `str`; bytes that are not UTF-8 become U+FFFD.
    pub fn string(&mut self) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    /// A count of items that each take at least `min_size` bytes: never more than the bytes
    /// left allow, so a count can not make the guest allocate beyond the input.
    pub fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n > (self.b.len() - self.i) / min_size.max(1) {
            return Err(format!("a count of {} exceeds the bytes left", n));
        }
        Ok(n)
    }

    pub fn pairs(&mut self) -> Result<Vec<(String, String)>, String> {
        let n = self.count(8)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let val = self.string()?;
            v.push((k, val));
        }
        Ok(v)
    }

    pub fn at_end(&self) -> bool {
        self.i == self.b.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_checks_every_length() {
        let mut w = Writer::default();
        w.str("GET");
        w.pairs(&[("a".into(), "b".into())]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.string().unwrap(), "GET");
        assert_eq!(r.pairs().unwrap(), vec![("a".to_string(), "b".to_string())]);
        assert!(r.at_end());
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(r.bytes().is_err());
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0x0f]);
        assert!(r.count(8).is_err());
    }

    #[test]
    fn alloc_buffers_come_back_once() {
        let p = alloc(16);
        unsafe { p.write_bytes(7, 16) };
        assert_eq!(take_alloc(p, 3), Some(vec![7, 7, 7]));
        assert_eq!(take_alloc(p, 3), None);
        let p = alloc(4);
        assert_eq!(take_alloc(p, 5), None); // freed all the same
    }
}
