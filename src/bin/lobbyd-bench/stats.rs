//! Latency histograms. A full 3-significant-digit HdrHistogram over
//! 1 µs..60 s is ~150 KB, too much to keep one per connection for 100k
//! connections, so each task buffers samples locally and flushes them into
//! one of a few mutex-protected shard histograms (a lock every 256 samples);
//! the shards are merged at the end.

use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::Serialize;

const SHARDS: usize = 16;
const LOCAL: usize = 256;

pub fn new_hist() -> Histogram<u64> {
    // Nanoseconds, 1 µs resolution floor, up to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("histogram bounds")
}

pub struct Sharded {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Sharded {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(new_hist())).collect(),
        }
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut h = new_hist();
        for s in &self.shards {
            let s = s.lock().expect("histogram shard");
            h.add(&*s).expect("same bounds");
        }
        h
    }
}

/// A task-local buffer in front of a shard.
pub struct Recorder<'a> {
    target: &'a Sharded,
    shard: usize,
    buf: Vec<u64>,
}

impl<'a> Recorder<'a> {
    pub fn new(target: &'a Sharded, task: usize) -> Self {
        Self {
            target,
            shard: task % SHARDS,
            buf: Vec::new(),
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(LOCAL);
        }
        self.buf.push(ns);
        if self.buf.len() >= LOCAL {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut h = self.target.shards[self.shard]
            .lock()
            .expect("histogram shard");
        for &v in &self.buf {
            h.saturating_record(v.clamp(1_000, 60_000_000_000));
        }
        self.buf.clear();
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

pub fn summarize(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let ms = |ns: u64| (ns as f64) / 1e6;
    Latency {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1e6,
    }
}

pub fn fmt_lat(l: &Latency) -> String {
    format!(
        "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms  (n={})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
    )
}
