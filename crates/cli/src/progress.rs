//! Progress bars for long work (hidden when standard error is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use tracehound_ingest::Event;

/// Shows ingest events as a progress bar and warnings on standard error.
pub struct IngestProgress {
    bar: Mutex<Option<ProgressBar>>,
    from: Mutex<u64>,
}

impl IngestProgress {
    pub fn new() -> IngestProgress {
        IngestProgress { bar: Mutex::new(None), from: Mutex::new(0) }
    }

    pub fn handle(&self, e: Event) {
        let mut bar = self.bar.lock().expect("progress lock");
        match e {
            Event::Phase(p) => match bar.as_ref() {
                Some(b) => b.set_message(p),
                None => {
                    let b = ProgressBar::new_spinner();
                    b.set_message(p);
                    b.enable_steady_tick(std::time::Duration::from_millis(200));
                    *bar = Some(b);
                }
            },
            Event::Planned { from, to } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let b = ProgressBar::new(to + 1 - from);
                b.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} height {msg} ({per_sec}, eta {eta})").expect("template"));
                *self.from.lock().expect("lock") = from;
                *bar = Some(b);
            }
            Event::Block { height, .. } => {
                if let Some(b) = bar.as_ref() {
                    let from = *self.from.lock().expect("lock");
                    b.set_position(height + 1 - from);
                    if height % 64 == 0 {
                        b.set_message(height.to_string());
                    }
                }
            }
            Event::Warning(w) => match bar.as_ref() {
                Some(b) => b.suspend(|| eprintln!("warning: {w}")),
                None => eprintln!("warning: {w}"),
            },
        }
    }

    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("lock").take() {
            b.finish_and_clear();
        }
    }
}
