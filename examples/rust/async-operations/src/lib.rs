//! Async Operations in Rust: sleeping, a periodic task that stops itself, and queries run at once
//! (the reference's "Timers" and "Parallel Queries" samples, over
//! examples/async-operations/migrations/0001_dashboard.sql), plus the rest of what a handler may
//! wait for: a transaction, an outgoing request, a file.

use trailbase_wasm::db::{query, Transaction, Value};
use trailbase_wasm::http::{routing, HttpError, HttpRoute, Json, Request, StatusCode};
use trailbase_wasm::time::{sleep, Duration};
use trailbase_wasm::{export, fetch, fs, info, join_all, json, spawn, Guest};

struct Endpoints;

impl Guest for Endpoints {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![
            routing::get("/delayed-response", |_req: Request| async {
                // Sleep
                sleep(Duration::from_millis(1000)).await;
                "Delayed by 1 second"
            }),
            routing::get("/periodic", |_req: Request| async {
                // A periodic task: it runs on after the response, and stops after 10 rounds.
                spawn(async {
                    for count in 0..10 {
                        sleep(Duration::from_millis(250)).await;
                        info!("Callback #{}", count);
                    }
                });
                "Started periodic task"
            }),
            routing::get("/dashboard", dashboard),
            // added: a transaction that commits, one that rolls back, one dropped half-way
            routing::post("/articles/:mode", add_article),
            // added: an outgoing request, and a file under --runtime-root-fs
            routing::get("/fetch", |req: Request| async move {
                let url = req.query_param("url").unwrap_or_default();
                let resp = fetch::fetch(fetch::Request::get(url)).await?;
                Ok::<_, HttpError>(format!("{} {}", resp.status, resp.text()))
            }),
            routing::get("/file", |req: Request| async move {
                let path = req.query_param("path").unwrap_or_default();
                Ok::<_, HttpError>(fs::read_file(path).await?)
            }),
        ]
    }
}

async fn dashboard(_req: Request) -> Result<Json<json::Value>, HttpError> {
    // Execute queries in parallel
    let counts = join_all(vec![
        query("SELECT COUNT(*) FROM _user", []),
        query("SELECT COUNT(*) FROM todos", []),
        query("SELECT COUNT(*) FROM articles", []),
    ])
    .await;
    let mut n = Vec::new();
    for rows in counts {
        n.push(rows?[0][0].as_i64().unwrap_or(0));
    }
    Ok(Json(json!({
        "users": (n[0]),
        "todos": (n[1]),
        "articles": (n[2]),
    })))
}

async fn add_article(req: Request) -> Result<String, HttpError> {
    let mode = req.path_param("mode").unwrap_or_default().to_string();
    let mut tx = Transaction::begin().await?;
    tx.execute(
        "INSERT INTO articles (title) VALUES (?)",
        &[Value::from(req.text()?)],
    )
    .await?;
    let inside = tx.query("SELECT COUNT(*) FROM articles", &[]).await?[0][0]
        .as_i64()
        .unwrap_or(0);
    match mode.as_str() {
        "commit" => tx.commit().await?,
        "rollback" => tx.rollback().await?,
        "drop" => drop(tx),
        _ => {
            return Err(HttpError::message(
                StatusCode::BAD_REQUEST,
                "mode: commit, rollback or drop",
            ))
        }
    }
    let after = query("SELECT COUNT(*) FROM articles", []).await?[0][0]
        .as_i64()
        .unwrap_or(0);
    Ok(format!("{} inside, {} after", inside, after))
}

export!(Endpoints);
