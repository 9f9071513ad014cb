//! Error Handling in Rust: a failing query caught and answered 500, a timed query, a request
//! body that is not JSON answered 400 by the handler itself (the reference's "Debugging / Error
//! Handling" and "Best Practices / Handle Errors Gracefully" samples; large_table comes from
//! examples/error-handling/migrations/0001_large_table.sql, and nonexistent_table does not
//! exist on purpose), plus what the reference's TypeScript cannot show: an error returned with
//! `?`, and a panic.

use trailbase_wasm::db::query;
use trailbase_wasm::http::{routing, HttpError, HttpRoute, Json, Request, StatusCode};
use trailbase_wasm::time::now_ms;
use trailbase_wasm::{error, export, info, json, Guest};

struct Endpoints;

impl Guest for Endpoints {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![
            routing::get("/api/risky", risky),
            routing::get("/api/slow", slow),
            routing::post("/api/resource", resource),
            routing::get("/api/question-mark", question_mark),
            routing::get("/api/panic", |_req: Request| async {
                let v: Vec<u32> = Vec::new();
                // Out of bounds: a panic, which is a trap: 500, and a fresh instance.
                format!("{}", v[1])
            }),
        ]
    }
}

async fn risky(_req: Request) -> (StatusCode, Json<json::Value>) {
    match query("SELECT * FROM nonexistent_table", []).await {
        Ok(rows) => (StatusCode::OK, Json(json!({ "rows": (rows.len()) }))),
        Err(e) => {
            error!("Query failed: {}", e);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "Internal server error" })),
            )
        }
    }
}

async fn slow(_req: Request) -> Result<Json<json::Value>, HttpError> {
    let start = now_ms();
    let result = query("SELECT * FROM large_table", []).await?;
    let duration = now_ms() - start;
    info!("Query took {}ms", duration);
    Ok(Json(
        json!({ "duration": duration, "rows": (result.len()) }),
    ))
}

async fn resource(req: Request) -> (StatusCode, Json<json::Value>) {
    match req.json() {
        // Process...
        Ok(_data) => (StatusCode::OK, Json(json!({ "success": true }))),
        Err(e) => {
            error!("Error: {}", e);
            (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": (e.to_string()) })),
            )
        }
    }
}

// An error passed up with `?`: the SQL error becomes a 500 with {"error": message}.
async fn question_mark(_req: Request) -> Result<String, HttpError> {
    let rows = query("SELECT nope FROM large_table", []).await?;
    Ok(format!("{} rows", rows.len()))
}

export!(Endpoints);
