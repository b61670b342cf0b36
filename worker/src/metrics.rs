//! Counters for `/metrics` (Prometheus text format): jobs finished by name
//! and outcome, their total run time, and jobs pushed by the dispatcher.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use entity::jobs::JobOutcome;

/// (job name, outcome) → (count, seconds)
type Finished = BTreeMap<(String, &'static str), (u64, f64)>;

#[derive(Debug, Default)]
pub struct Metrics {
    finished: Mutex<Finished>,
    /// job name → pushed to a queue
    pushed: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn job_finished(&self, job: &str, outcome: &JobOutcome, took: Duration) {
        let label = match outcome {
            JobOutcome::Done => "succeeded",
            JobOutcome::Retry(_) => "retried",
            JobOutcome::Fail(_) => "failed",
            JobOutcome::Later { .. } => "postponed",
        };
        if let Ok(mut finished) = self.finished.lock() {
            let entry = finished.entry((job.to_owned(), label)).or_default();
            entry.0 += 1;
            entry.1 += took.as_secs_f64();
        }
    }

    pub fn pushed(&self, job: &str) {
        if let Ok(mut pushed) = self.pushed.lock() {
            *pushed.entry(job.to_owned()).or_default() += 1;
        }
    }

    /// Jobs finished with `outcome` ("succeeded", "retried", "failed") across names.
    #[must_use]
    pub fn finished_count(&self, outcome: &str) -> u64 {
        self.finished.lock().map_or(0, |f| {
            f.iter()
                .filter(|((_, o), _)| *o == outcome)
                .map(|(_, (n, _))| n)
                .sum()
        })
    }

    /// The Prometheus exposition, with the given gauges appended.
    #[must_use]
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# TYPE storefront_jobs_finished_total counter\n");
        out.push_str("# TYPE storefront_job_seconds_total counter\n");
        if let Ok(finished) = self.finished.lock() {
            for ((job, outcome), (count, seconds)) in finished.iter() {
                let _ = writeln!(
                    out,
                    "storefront_jobs_finished_total{{job=\"{job}\",outcome=\"{outcome}\"}} {count}"
                );
                let _ = writeln!(
                    out,
                    "storefront_job_seconds_total{{job=\"{job}\",outcome=\"{outcome}\"}} {seconds:.6}"
                );
            }
        }
        out.push_str("# TYPE storefront_jobs_enqueued_total counter\n");
        if let Ok(pushed) = self.pushed.lock() {
            for (job, count) in pushed.iter() {
                let _ = writeln!(out, "storefront_jobs_enqueued_total{{job=\"{job}\"}} {count}");
            }
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}
