//! The peak memory of processes of one name, sampled while work runs (for
//! benchmarks and load tests, which report it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Watches `/proc` for processes named `name` until stopped.
pub struct PeakRss {
    running: Arc<AtomicBool>,
    watcher: JoinHandle<u64>,
}

impl PeakRss {
    pub fn watch(name: &str) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let header = format!("Name:\t{name}\n");
        let flag = running.clone();
        let watcher = std::thread::spawn(move || {
            let mut peak = 0;
            while flag.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(text) = std::fs::read_to_string(entry.path().join("status")) else { continue };
                    if text.starts_with(&header) {
                        peak = peak.max(high_water_mark_kib(&text).unwrap_or(0));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        Self { running, watcher }
    }

    /// The highest VmHWM (peak RSS, KiB) of one such process seen.
    pub fn stop(self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        self.watcher.join().unwrap_or(0)
    }
}

fn high_water_mark_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches(" kB").trim().parse().ok()
}
