//! bench/rust/app: the Rust component of `make bench`: GET /hello and GET /cpu with the bodies of
//! bench/app/index.ts, byte for byte.

mod spin;

use trailbase_wasm::http::{routing, HttpRoute, Request, Response};
use trailbase_wasm::{export, Guest};

struct Endpoints;

impl Guest for Endpoints {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![
            routing::get("/hello", |_req: Request| async { "Hello from WASM!" }),
            routing::get("/cpu", |req: Request| async move {
                let result = spin::spin(spin::iterations(req.query()));
                Response::new(format!("{{\"result\":{}}}", result).into_bytes())
                    .with_header("content-type", "application/json")
            }),
        ]
    }
}

export!(Endpoints);
