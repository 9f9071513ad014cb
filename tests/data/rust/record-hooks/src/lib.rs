//! Record hooks in Rust for tests/e2e/test_records_hooks_native.c, the same behaviour as the C
//! component (tests/data/components/records_hooks_c): before hooks that change or reject a
//! write and write to the database inside its transaction, after hooks that see the committed
//! record, and hooks that fail after writing (a panic, the CPU budget, a timer they wait for, an
//! error, an answer that is not a record, a COMMIT of their own).

use trailbase_wasm::db::{execute, query, Value};
use trailbase_wasm::http::{routing, HttpError, HttpRoute, Request, StatusCode};
use trailbase_wasm::records::{HookContext, RecordHook};
use trailbase_wasm::{export, json, Guest};

struct Hooks;

type Result<T> = std::result::Result<T, HttpError>;

async fn audit(what: String) -> Result<()> {
    execute("INSERT INTO audit (what) VALUES (?)", [Value::Text(what)]).await?;
    Ok(())
}

fn text_of(ctx: &HookContext, key: &str) -> String {
    ctx.record
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

fn is_one(ctx: &HookContext, key: &str) -> bool {
    ctx.record.get(key).and_then(|v| v.as_i64()) == Some(1)
}

async fn before_create(ctx: HookContext) -> Result<Option<json::Value>> {
    let text = text_of(&ctx, "text");
    if text.contains("forbidden") {
        return Err(HttpError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no forbidden words",
        ));
    }
    let who = ctx.user.as_ref().map_or("anonymous", |u| u.email.as_str());
    audit(format!("before create {} by {}", text, who)).await?;
    let keep = is_one(&ctx, "keep") as i64;
    Ok(Some(json!({
        "text": text.trim().to_uppercase(),
        "stamped": 1,
        "keep": keep,
    })))
}

async fn before_update(ctx: HookContext) -> Result<json::Value> {
    if is_one(&ctx, "keep") {
        return Err(HttpError::message(
            StatusCode::FORBIDDEN,
            "notes cannot be kept by an update",
        ));
    }
    let mut record = ctx.record.clone();
    record.insert("stamped", 2.into());
    Ok(record)
}

async fn before_delete(ctx: HookContext) -> Result<()> {
    let id: i64 = ctx.id.as_deref().unwrap_or("0").parse().unwrap_or(0);
    let rows = query("SELECT keep FROM notes WHERE id = ?", [Value::Integer(id)]).await?;
    if rows.first().and_then(|r| r[0].as_i64()) == Some(1) {
        return Err(HttpError::message(
            StatusCode::CONFLICT,
            "this note is kept",
        ));
    }
    Ok(())
}

async fn crashy(ctx: HookContext) -> Result<Option<json::Value>> {
    let mode = text_of(&ctx, "mode");
    audit(format!("crashy {} was here", mode)).await?;
    match mode.as_str() {
        "trap" => panic!("a hook that panics"),
        "loop" => {
            let mut i: u64 = 0;
            loop {
                // volatile: the loop is not optimised away
                unsafe { std::ptr::write_volatile(&mut i, i.wrapping_add(1)) };
            }
        }
        "wait" => {
            trailbase_wasm::time::sleep(std::time::Duration::from_millis(10)).await;
            audit("crashy: a timer's callback ran after the hook".to_string()).await?;
        }
        "boom" => return Err(HttpError::internal("boom")),
        "commit" => {
            execute("COMMIT", []).await?;
        }
        "garbage" => return Ok(Some(json::Value::from("not a record"))),
        _ => {}
    }
    Ok(None)
}

impl Guest for Hooks {
    fn http_handlers() -> Vec<HttpRoute> {
        vec![routing::get("/ok", |_req: Request| async { "ok" })]
    }

    fn record_hooks() -> Vec<RecordHook> {
        vec![
            RecordHook::before_create("notes", before_create),
            RecordHook::after_create("notes", |ctx: HookContext| async move {
                let id = ctx.id.clone().unwrap_or_default();
                audit(format!("after create {} {}", id, text_of(&ctx, "text"))).await
            }),
            RecordHook::before_update("notes", before_update),
            RecordHook::after_update("notes", |ctx: HookContext| async move {
                audit(format!("after update {}", ctx.id.unwrap_or_default())).await
            }),
            RecordHook::before_delete("notes", before_delete),
            RecordHook::after_delete("notes", |ctx: HookContext| async move {
                audit(format!("after delete {}", ctx.id.unwrap_or_default())).await
            }),
            RecordHook::before_create("crashy", crashy),
        ]
    }
}

export!(Hooks);
