//! Stopping a run: a [`Cancel`] token the run owns and hands to training,
//! and Ctrl-C as one source of it. The first press asks the run to stop
//! cleanly (no new proposals, the running trial ends at its next batch as
//! interrupted, the summary is still written); the second ends the process
//! at once, which leaves the store consistent because every write is its
//! own transaction.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

static PRESSES: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_interrupt(_: libc::c_int) {
    if PRESSES.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe; nothing else runs here.
        unsafe { libc::_exit(130) };
    }
}

/// Routes SIGINT to the two-step handling above.
fn install() {
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

/// Asks a run, and the trial it trains, to stop at the next batch: when
/// cancelled, on Ctrl-C (for a token made by [`Cancel::on_ctrl_c`]), or
/// once its deadline passes (a run's `max_time_s`). Clones share one state:
/// cancelling any cancels all.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    /// Also cancelled by a Ctrl-C press.
    ctrl_c: bool,
    deadline: Arc<OnceLock<Instant>>,
}

impl Cancel {
    /// A token that only [`Cancel::cancel`] cancels.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that Ctrl-C cancels too (this installs the SIGINT handler).
    pub fn on_ctrl_c() -> Self {
        install();
        Cancel {
            ctrl_c: true,
            ..Self::default()
        }
    }

    /// Asks everything holding this token to stop.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Asks everything holding this token to stop at `at`; a token takes
    /// one deadline, later calls are ignored.
    pub fn stop_at(&self, at: Instant) {
        let _ = self.deadline.set(at);
    }

    /// Whether a stop was asked for, or the deadline passed.
    pub fn is_cancelled(&self) -> bool {
        self.interrupted() || self.past_deadline()
    }

    /// Whether a stop was asked for (by [`Cancel::cancel`] or Ctrl-C).
    pub fn interrupted(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || (self.ctrl_c && PRESSES.load(Ordering::SeqCst) > 0)
    }

    /// Whether the deadline passed.
    pub fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|at| Instant::now() >= *at)
    }
}

/// The stop reason recorded for an interrupted run.
pub const STOP_REASON: &str = "interrupted by Ctrl-C";

/// Asks a yes/no question on the terminal (default no); false without a terminal.
pub fn confirm(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("\n{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
