//! Database Access in Rust: counting, searching and joining the seeded todos (the reference's
//! "Database Access", "Complex Queries" and "Best Practices" samples; the table comes from
//! examples/database-access/migrations/0001_todos.sql, shared with the TypeScript example).

use trailbase_wasm::db::{query, Value};
use trailbase_wasm::http::{routing, HttpError, HttpRoute, Json, Request, StatusCode};
use trailbase_wasm::{export, json, Guest};

struct Endpoints;

impl Guest for Endpoints {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![
            routing::get("/stats/todos", stats),
            routing::get("/todos/search", search),
            routing::get("/reports/user-activity", user_activity),
            routing::get("/todos/user/:email", todos_of_user),
        ]
    }
}

type Result<T> = std::result::Result<T, HttpError>;

async fn stats(_req: Request) -> Result<Json<json::Value>> {
    // Execute SQL query
    let rows = query(
        "SELECT COUNT(*) as total, SUM(completed) as done FROM todos",
        [],
    )
    .await?;
    let total = rows[0][0].as_i64().unwrap_or(0);
    let done = rows[0][1].as_i64().unwrap_or(0);
    Ok(Json(json!({
        "total": total,
        "done": done,
        "pending": total - done,
    })))
}

async fn search(req: Request) -> Result<Json<json::Value>> {
    let q = req.query_param("q").unwrap_or_default();
    // Parameterized queries prevent SQL injection
    let rows = query(
        "SELECT * FROM todos WHERE text LIKE ? LIMIT 10",
        [Value::Text(format!("%{}%", q))],
    )
    .await?;
    Ok(Json(json!({ "results": to_json(rows) })))
}

async fn user_activity(_req: Request) -> Result<Json<json::Value>> {
    let rows = query(
        "SELECT
           u.email,
           COUNT(t.id) as todo_count,
           SUM(t.completed) as completed_count
         FROM _user u
         LEFT JOIN todos t ON t.user = u.id
         GROUP BY u.id
         ORDER BY todo_count DESC
         LIMIT 10",
        [],
    )
    .await?;
    Ok(Json(json!({ "topUsers": to_json(rows) })))
}

// Best Practices: a parameterized query with LIMIT, served by the migration's index, for the
// user named in the path; the _user id (a 16-byte BLOB) is the next query's parameter.
async fn todos_of_user(req: Request) -> Result<(StatusCode, Json<json::Value>)> {
    let email = req.path_param("email").unwrap_or_default();
    let users = query("SELECT id FROM _user WHERE email = ?", [Value::from(email)]).await?;
    let user_id = match users.into_iter().next() {
        Some(mut row) => row.remove(0),
        None => {
            return Ok((
                StatusCode::NOT_FOUND,
                Json(json!({ "error": "No such user" })),
            ))
        }
    };
    let rows = query(
        "SELECT * FROM todos WHERE user = ? ORDER BY created_at DESC LIMIT 100",
        [user_id],
    )
    .await?;
    let texts: Vec<json::Value> = rows.into_iter().map(|row| row[2].clone().into()).collect();
    Ok((StatusCode::OK, Json(json!({ "todos": texts }))))
}

fn to_json(rows: Vec<Vec<Value>>) -> json::Value {
    json::Value::Array(
        rows.into_iter()
            .map(|row| json::Value::Array(row.into_iter().map(Into::into).collect()))
            .collect(),
    )
}

export!(Endpoints);
