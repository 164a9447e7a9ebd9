//! A one-line progress bar on stderr for long byte-counting steps (packing
//! and uploading a build context). Drawn only on a terminal and never with
//! `--json`; elsewhere the caller prints one summary line when it is done.

use std::{
    io::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use switchyard_core::config::human_bytes;

/// Redraws at most this often: a bar is for people, not a benchmark.
const REDRAW: Duration = Duration::from_millis(100);
const WIDTH: u64 = 30;

pub struct Progress {
    label: &'static str,
    total: u64,
    done: AtomicU64,
    draw: bool,
    last_draw: Mutex<Option<Instant>>,
}

impl Progress {
    /// `draw` is false off a terminal (or with `--json`): counting still
    /// works, nothing is printed.
    pub fn new(label: &'static str, total: u64, draw: bool) -> Self {
        Self {
            label,
            total,
            done: AtomicU64::new(0),
            draw,
            last_draw: Mutex::new(None),
        }
    }

    /// Whether a bar should be drawn for this run.
    pub fn on_terminal(json: bool) -> bool {
        use std::io::IsTerminal;
        !json && std::io::stderr().is_terminal()
    }

    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if !self.draw {
            return;
        }
        let mut last = self.last_draw.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        *last = Some(Instant::now());
        self.render(done);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Draws the final state and ends the line.
    pub fn finish(&self) {
        if self.draw {
            self.render(self.done());
            eprintln!();
        }
    }

    fn render(&self, done: u64) {
        let done = done.min(self.total);
        let filled = (done * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        let mut bar = String::with_capacity(WIDTH as usize);
        for i in 0..WIDTH {
            bar.push(match i.cmp(&filled) {
                std::cmp::Ordering::Less => '=',
                std::cmp::Ordering::Equal => '>',
                std::cmp::Ordering::Greater => ' ',
            });
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{:<10} [{bar}] {percent:>3}%  {} / {}\x1b[K",
            self.label,
            human_bytes(done),
            human_bytes(self.total)
        );
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_without_a_terminal() {
        let p = Progress::new("packing", 100, false);
        p.advance(40);
        p.advance(60);
        p.finish();
        assert_eq!(p.done(), 100);
    }
}
