//! My Todos in Rust: the signed-in caller (`req.user()`), each user's own rows only, and routes
//! for admins (docs/auth.md); examples/c-my-todos is the same in C. Sign in with `POST /api/auth/v1/login`, then send the access
//! token as `Authorization: Bearer ...` (or the `auth_token` cookie, plus the `CSRF-Token`
//! header on a POST). The table: examples/rust/my-todos/migrations/.

use trailbase_wasm::auth::{require_admin, require_user};
use trailbase_wasm::db::{execute, query, Value};
use trailbase_wasm::http::{routing, HttpError, HttpRoute, Json, Request, StatusCode};
use trailbase_wasm::{export, json, Guest};

struct Endpoints;

impl Guest for Endpoints {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![
            routing::get("/me", me),
            routing::post("/me", me),
            routing::get("/todos", my_todos),
            routing::post("/todos", add_todo),
            routing::get("/admin", admin),
            // The reference's builder: the handler runs for admins only.
            routing::get("/admin/users", count_users).require_admin(),
        ]
    }
}

type Result<T> = std::result::Result<T, HttpError>;

/// The caller, or `null`; why its credentials did not count, if they did not.
async fn me(req: Request) -> Json<json::Value> {
    let user = req.user().map(|u| {
        json!({"id": u.id.as_str(), "email": u.email.clone(), "csrf_token": u.csrf_token.as_str()})
    });
    let why = req.auth_error().map(|(_, msg)| msg.to_string());
    Json(json!({"user": user, "auth_error": why}))
}

async fn my_todos(req: Request) -> Result<Json<json::Value>> {
    let user = require_user(&req)?;
    let rows = query(
        "SELECT text FROM todos WHERE owner = ? ORDER BY id",
        vec![Value::Blob(user.id_bytes())],
    )
    .await?;
    let texts: Vec<json::Value> = rows
        .iter()
        .map(|r| json::Value::from(r[0].as_str().unwrap_or_default()))
        .collect();
    Ok(Json(json::Value::Array(texts)))
}

/// `POST /todos` with the text as the body.
async fn add_todo(req: Request) -> Result<(StatusCode, &'static str)> {
    let user = require_user(&req)?;
    let text = req.text()?;
    if text.is_empty() {
        return Err(HttpError::message(StatusCode::BAD_REQUEST, "text missing"));
    }
    execute(
        "INSERT INTO todos (owner, text) VALUES (?, ?)",
        vec![Value::Blob(user.id_bytes()), Value::Text(text.to_string())],
    )
    .await?;
    Ok((StatusCode::CREATED, "created"))
}

async fn admin(req: Request) -> Result<String> {
    let user = require_admin(&req).await?;
    Ok(format!(
        "hello admin {}",
        user.email.as_deref().unwrap_or_default()
    ))
}

async fn count_users(_req: Request) -> Result<String> {
    let rows = query("SELECT count(*) FROM _user", []).await?;
    Ok(format!("{} users", rows[0][0].as_i64().unwrap_or(0)))
}

export!(Endpoints);
