//! Scheduled jobs: `Job::minutely("cleanup", || async { ... })`, `hourly`, `daily`, `weekly`,
//! or `Job::new(name, cron, f)` with a cron expression. trail evaluates schedules in
//! `jobs.time_zone`, runs each due job on one worker, and records every run in `_job_runs`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// What a job's function may return: nothing (the run succeeded), or a `Result` whose error
/// marks the run failed with its message.
pub trait JobResult {
    fn into_result(self) -> Result<(), String>;
}

impl JobResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<T, E: fmt::Display> JobResult for Result<T, E> {
    fn into_result(self) -> Result<(), String> {
        self.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// `Job::minutely(name, f)` and the other fixed schedules: `Job::cron` with the schedule.
macro_rules! shorthand {
    ($($(#[$doc:meta])* $name:ident => $spec:literal;)*) => {$(
        $(#[$doc])*
        pub fn $name<F, Fut, R>(name: impl ToString, f: F) -> Job
        where
            F: Fn() -> Fut + 'static,
            Fut: Future<Output = R> + 'static,
            R: JobResult,
        {
            Job::cron(name, $spec, f)
        }
    )*};
}

pub(crate) type JobFn = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>>>>>;

/// A job: its name, its schedule (a cron expression) and its function.
pub struct Job {
    pub name: String,
    pub spec: String,
    pub(crate) handler: JobFn,
}

/// A schedule that is not a cron expression trail accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub spec: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid job schedule {:?}: expected 5 cron fields, 6 with seconds first, 7 with a \
             year last, or @hourly, @daily, @weekly, @monthly, @yearly",
            self.spec
        )
    }
}

impl std::error::Error for Error {}

impl Job {
    /// A job on the cron schedule `spec` (`"*/5 * * * *"`; 6 fields with seconds first, 7
    /// with a year last; or `@hourly`-style shorthands). trail checks each field at load.
    pub fn new<F, Fut, R>(name: impl ToString, spec: impl ToString, f: F) -> Result<Job, Error>
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: JobResult,
    {
        let spec = spec.to_string();
        validate_spec(&spec)?;
        Ok(Job {
            name: name.to_string(),
            spec,
            handler: Box::new(move || {
                let fut = f();
                Box::pin(async move { fut.await.into_result() })
            }),
        })
    }

    /// Like `new`, for a schedule known to be valid: panics on an invalid one.
    pub fn cron<F, Fut, R>(name: impl ToString, spec: impl ToString, f: F) -> Job
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: JobResult,
    {
        match Job::new(name, spec, f) {
            Ok(job) => job,
            Err(e) => panic!("{}", e),
        }
    }

    shorthand! {
        /// Every minute (`* * * * *`).
        minutely => "* * * * *";
        /// Every hour, on the hour (`0 * * * *`).
        hourly => "0 * * * *";
        /// Every day at midnight (`0 0 * * *`).
        daily => "0 0 * * *";
        /// Every Sunday at midnight (`0 0 * * 0`).
        weekly => "0 0 * * 0";
    }

    /// Runs the job's function now (what trail does when it is due).
    pub async fn run(&self) -> Result<(), String> {
        (self.handler)().await
    }
}

fn validate_spec(spec: &str) -> Result<(), Error> {
    let s = spec.trim();
    let ok = match s {
        "@hourly" | "@daily" | "@midnight" | "@weekly" | "@monthly" | "@yearly" | "@annually" => {
            true
        }
        _ => {
            let fields: Vec<&str> = s.split_whitespace().collect();
            (5..=7).contains(&fields.len())
                && fields.iter().all(|f| {
                    f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ",-*/?LW#".contains(c))
                })
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error {
            spec: spec.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(Job::minutely("a", || async {}).spec, "* * * * *");
        assert_eq!(Job::hourly("a", || async {}).spec, "0 * * * *");
        assert_eq!(Job::daily("a", || async {}).spec, "0 0 * * *");
        assert_eq!(Job::weekly("a", || async {}).spec, "0 0 * * 0");
        assert!(Job::new("a", "0 30 9 * * Mon-Fri", || async {}).is_ok());
        assert!(Job::new("a", "0 0 0 1 1 * 2030", || async {}).is_ok());
        assert!(Job::new("a", "@weekly", || async {}).is_ok());
        for bad in ["", "* * * *", "@often", "* * * * * * * *", "* * * * ;"] {
            assert!(Job::new("a", bad, || async {}).is_err(), "{}", bad);
        }
    }
}
