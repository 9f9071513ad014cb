use trailbase_wasm::http::{routing, HttpError, HttpRoute, Json, Request};
use trailbase_wasm::time::now_ms;
use trailbase_wasm::{export, json, Guest};

struct Endpoints;

impl Guest for Endpoints {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![
            routing::get("/hello", |_req: Request| async { "Hello from WASM!" }),
            routing::get("/greet/:name", |req: Request| async move {
                let name = req.path_param("name").unwrap_or_default();
                format!("Hello, {}!", name)
            }),
            routing::post("/json", echo_json),
        ]
    }
}

async fn echo_json(req: Request) -> Result<Json<json::Value>, HttpError> {
    let data = req.json()?;
    Ok(Json(json!({
        "received": data,
        "timestamp": now_ms(),
    })))
}

export!(Endpoints);
