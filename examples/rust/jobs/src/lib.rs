//! Background Jobs in Rust: the reference's four jobs (minutely, hourly, daily, weekly) over a
//! todos table (migrations/0001_todos.sql here), plus a cron-scheduled one and a job that fails.
//! `trail jobs run NAME` runs one now; every run is a row in `_job_runs`.

use trailbase_wasm::db::{execute, query, Value};
use trailbase_wasm::http::{routing, HttpError, HttpRoute, Request};
use trailbase_wasm::job::Job;
use trailbase_wasm::time::now_ms;
use trailbase_wasm::{export, info, Guest};

struct Endpoints;

impl Guest for Endpoints {
    // added: a route to look at what the jobs did
    fn http_handlers() -> Vec<HttpRoute> {
        vec![routing::get("/todos/count", |_req: Request| async {
            let rows = query("SELECT COUNT(*) FROM todos", []).await?;
            Ok::<_, HttpError>(format!("{}", rows[0][0].as_i64().unwrap_or(-1)))
        })]
    }

    fn job_handlers() -> Vec<Job> {
        vec![
            // Run every minute
            Job::minutely("cleanup-old-todos", || async {
                let week_ago = now_ms() / 1000 - 7 * 24 * 60 * 60;
                let n = execute(
                    "DELETE FROM todos WHERE completed = 1 AND updated_at < ?",
                    [Value::Integer(week_ago)],
                )
                .await?;
                info!("Cleaned up {} old completed todos", n);
                Ok::<_, trailbase_wasm::db::Error>(())
            }),
            // Run every hour
            Job::hourly("send-reminders", || async {
                let rows = query(
                    "SELECT t.*, u.email
                     FROM todos t
                     JOIN _user u ON t.user = u.id
                     WHERE t.completed = 0 AND t.due_date < ?",
                    [Value::Integer(now_ms() / 1000)],
                )
                .await?;
                for row in rows {
                    info!(
                        "Reminder: {} is overdue for {}",
                        row[2].as_str().unwrap_or(""),
                        row[7].as_str().unwrap_or("")
                    );
                    // Send email notification
                }
                Ok::<_, trailbase_wasm::db::Error>(())
            }),
            // Run daily at midnight
            Job::daily("daily-report", || async {
                let rows = query(
                    "SELECT COUNT(*) FROM todos WHERE created_at > ?",
                    [Value::Integer(now_ms() / 1000 - 24 * 60 * 60)],
                )
                .await?;
                info!(
                    "Daily report: {} todos created today",
                    rows[0][0].as_i64().unwrap_or(0)
                );
                Ok::<_, trailbase_wasm::db::Error>(())
            }),
            // Run weekly (Sunday at midnight)
            Job::weekly("weekly-cleanup", || async {
                info!("Weekly cleanup started");
                // Perform weekly maintenance tasks
            }),
            // added: a cron schedule (seconds first), and a job whose run fails
            Job::cron("every-ten-minutes", "0 */10 * * * *", || async {}),
            Job::hourly("always-fails", || async {
                Err::<(), _>("the mail server is down")
            }),
        ]
    }
}

export!(Endpoints);
