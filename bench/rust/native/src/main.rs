//! bench/rust/native: GET /cpu and GET /hello of bench/rust/app compiled for the host, in a
//! std-only HTTP/1.1 server (keep-alive, a thread per connection, one request at a time on it). It is the limit for trail's Rust /cpu: the sandbox's cost is the
//! ratio of the two. Listens on 127.0.0.1:$PORT. Not a general server: GET only, no bodies.

#[path = "../../app/src/spin.rs"]
mod spin;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn respond(path: &str) -> (u16, &'static str, String) {
    let (p, q) = match path.find('?') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, ""),
    };
    match p {
        "/hello" => (
            200,
            "text/plain; charset=utf-8",
            "Hello from WASM!".to_string(),
        ),
        "/cpu" => (
            200,
            "application/json",
            format!("{{\"result\":{}}}", spin::spin(spin::iterations(q))),
        ),
        _ => (404, "text/plain; charset=utf-8", "not found".to_string()),
    }
}

fn serve(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // A whole request head (no bodies: GET only).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 65536 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split(' ').nth(1).unwrap_or("/");
        let (status, ctype, body) = respond(path);
        let out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n{}",
            status,
            if status == 200 { "OK" } else { "Not Found" },
            ctype,
            body.len(),
            body
        );
        if s.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_string());
    let l = TcpListener::bind(format!("127.0.0.1:{}", port)).expect("bind");
    println!("listening on http://127.0.0.1:{}", port);
    for s in l.incoming().flatten() {
        std::thread::spawn(move || serve(s));
    }
}
