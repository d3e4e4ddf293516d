//! The book thread: one actix arbiter that owns everything a bet passes through on its way
//! to the answer — the market and event actors, the wallet shards, the ledger's writer tasks
//! and their Postgres connections — and that runs the bet path itself (`app::bets`).
//!
//! Why (issue 16): when the HTTP worker drove a bet, each step was a round trip to another
//! thread — the wallet shard (main thread), the market actor (its arbiter), the ledger
//! writer, then the confirmation of both — about ten crossings, each a wake-up through
//! the kernel. On the book thread those steps are local wake-ups of one tokio scheduler;
//! a bet crosses threads twice: into the book with its request, back out with its answer.
//! The HTTP workers keep what is theirs: sockets, parsing, authentication, JSON.
//!
//! A bet handed to the book runs there to its end even if the client goes away: its holds
//! are always confirmed or released, never left behind by a dropped future.
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
