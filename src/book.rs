//! The book thread (`bets.book_thread`, off by default): one actix arbiter that owns the
//! market and event actors and the wallet shards, and that runs the bet path itself
//! (`app::bets`) once a bet's key is claimed.
//!
//! Why (issue 16): when the HTTP worker drives a bet, each step is a round trip to another
//! thread — the wallet shard (main thread), the market actor (its arbiter), the ledger
//! writer, then the confirmation of both — about ten crossings. On the book thread the
//! shard and actor steps are local wake-ups of one scheduler; a bet crosses into the book
//! with its request, to the ledger writers and back (they stay on the main thread: on the
//! book thread their commits waited behind its other work), and out with its answer.
//! Measured on 2 cores (BENCHMARKS.md, "The book thread"): a third of the context switches
//! per bet, but no less CPU per bet and fewer bets/s, so the engine runs without it unless
//! configured.
//!
//! A bet handed to the book runs to its end even if its client goes away.
use std::future::Future;
use std::thread::ThreadId;

use actix::ArbiterHandle;
use tokio::sync::oneshot;

/// Handle to the book thread; cheap to clone.
#[derive(Clone)]
pub struct Book {
    arbiter: ArbiterHandle,
    thread: ThreadId,
}

/// The book thread has stopped (the engine is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookStopped;

impl Book {
    /// Starts the book thread (an actix arbiter). Blocks until it runs, so that its thread
    /// id is known before the first bet.
    pub fn start() -> Book {
        let arbiter = actix::Arbiter::new().handle();
        let (tx, rx) = std::sync::mpsc::channel();
        let started = arbiter.spawn_fn(move || {
            let _ = tx.send(std::thread::current().id());
        });
        let thread = match (started, rx.recv()) {
            (true, Ok(id)) => id,
            // An arbiter that cannot start leaves nothing to run on; the caller's thread is
            // the safe answer (the book's work then runs inline, as it would on one thread).
            _ => std::thread::current().id(),
        };
        Book { arbiter, thread }
    }

    /// The arbiter actors and tasks of the book are started on.
    pub fn arbiter(&self) -> &ArbiterHandle {
        &self.arbiter
    }

    /// Whether the caller runs on the book thread.
    pub fn is_current(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    /// Runs the future `make` builds on the book thread and hands back its output. On the
    /// book thread itself it runs inline. The future runs to its end whether or not the
    /// caller still waits.
    pub async fn run<F, Fut, T>(&self, make: F) -> Result<T, BookStopped>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if self.is_current() {
            return Ok(make().await);
        }
        let (tx, rx) = oneshot::channel();
        let sent = self.arbiter.spawn_fn(move || {
            actix::spawn(async move {
                let _ = tx.send(make().await);
            });
        });
        if !sent {
            return Err(BookStopped);
        }
        rx.await.map_err(|_| BookStopped)
    }
}
