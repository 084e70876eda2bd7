//! A small Prometheus registry: request counts by method/status, a latency histogram, and sign-in
//! outcomes. Rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use identity::db::WalStats;

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    sign_in_success: AtomicU64,
    sign_in_failure: AtomicU64,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, status: u16, elapsed: Duration) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((method.to_owned(), status)).or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn sign_in(&self, success: bool) {
        let counter = if success {
            &self.sign_in_success
        } else {
            &self.sign_in_failure
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `wal`: the SQLite checkpointer's figures (none on PostgreSQL).
    pub fn render(&self, wal: Option<WalStats>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP portcullis_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE portcullis_http_requests_total counter");
        if let Ok(map) = self.requests.lock() {
            for ((method, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "portcullis_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_http_request_duration_seconds Time to answer HTTP requests."
        );
        let _ = writeln!(
            out,
            "# TYPE portcullis_http_request_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "portcullis_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "portcullis_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "portcullis_http_request_duration_seconds_count {count}"
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_staff_sign_ins_total Staff sign-in attempts by outcome."
        );
        let _ = writeln!(out, "# TYPE portcullis_staff_sign_ins_total counter");
        let ok = self.sign_in_success.load(Ordering::Relaxed);
        let failed = self.sign_in_failure.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "portcullis_staff_sign_ins_total{{outcome=\"success\"}} {ok}"
        );
        let _ = writeln!(
            out,
            "portcullis_staff_sign_ins_total{{outcome=\"failure\"}} {failed}"
        );
        if let Some(wal) = wal {
            for (name, kind, help, value) in [
                (
                    "portcullis_sqlite_wal_pages",
                    "gauge",
                    "SQLite WAL size in pages at the last background checkpoint.",
                    wal.pages,
                ),
                (
                    "portcullis_sqlite_wal_max_pages",
                    "gauge",
                    "Largest SQLite WAL size seen by the background checkpointer, in pages.",
                    wal.max_pages,
                ),
                (
                    "portcullis_sqlite_checkpoints_total",
                    "counter",
                    "Background SQLite WAL checkpoints.",
                    wal.checkpoints,
                ),
                (
                    "portcullis_sqlite_wal_restarts_total",
                    "counter",
                    "Times the SQLite WAL was made to start over.",
                    wal.restarts,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                let _ = writeln!(out, "{name} {value}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_request("GET", 200, Duration::from_millis(20));
        m.observe_request("GET", 200, Duration::from_millis(200));
        m.sign_in(false);
        let text = m.render(None);
        assert!(!text.contains("portcullis_sqlite_wal_pages"));
        assert!(text.contains("portcullis_http_requests_total{method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("portcullis_http_request_duration_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("portcullis_http_request_duration_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("portcullis_staff_sign_ins_total{outcome=\"failure\"} 1"));
    }

    #[test]
    fn renders_the_sqlite_checkpointer_figures() {
        let wal = WalStats {
            checkpoints: 40,
            restarts: 3,
            pages: 120,
            max_pages: 2_400,
        };
        let text = Metrics::default().render(Some(wal));
        assert!(text.contains(
            "# TYPE portcullis_sqlite_wal_pages gauge\nportcullis_sqlite_wal_pages 120\n"
        ));
        assert!(text.contains("\nportcullis_sqlite_wal_max_pages 2400\n"));
        assert!(text.contains("# TYPE portcullis_sqlite_checkpoints_total counter\nportcullis_sqlite_checkpoints_total 40\n"));
        assert!(text.contains("\nportcullis_sqlite_wal_restarts_total 3\n"));
    }
}
