//! Password hashing with Argon2id at OWASP's parameters (19 MiB, 2 iterations, 1 lane).
//!
//! The PHC string (which embeds the salt) goes in `users.password_hash`; the salt is also
//! stored on its own in `users.salt`, the column the schema provides for it.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

/// Memory cost in KiB (OWASP: at least 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Time cost (OWASP: at least 2 iterations at 19 MiB).
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hashed password: the PHC string and the salt it was made with.
pub struct HashedPassword {
    pub phc: String,
    pub salt: String,
}

/// Hashes a password with a fresh random salt from the OS CSPRNG.
pub fn hash(password: &str) -> anyhow::Result<HashedPassword> {
    let salt = SaltString::generate(&mut OsRng);
    let phc = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?
        .to_string();
    Ok(HashedPassword {
        phc,
        salt: salt.as_str().to_string(),
    })
}

/// Checks a password against a stored PHC string in constant time.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_accepts_the_right_password_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.phc.contains(&h.salt));
        assert!(verify("correct horse battery", &h.phc));
        assert!(!verify("wrong horse battery", &h.phc));
        assert!(!verify("x", "not a phc string"));
    }
}

/// Password work runs on a small fixed set of threads: each Argon2 call takes 19 MiB and
/// a core for tens of milliseconds, so its concurrency is bounded (and the allocator keeps
/// its buffers in a few threads' arenas instead of growing one per blocking thread). A
/// full queue answers busy instead of piling requests up.
pub mod pool {
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    /// Why a password job did not run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum PoolError {
        /// Every thread is busy and the queue is full.
        #[error("password checking is busy; retry shortly")]
        Busy,
        /// The threads are gone (the engine is stopping).
        #[error("password threads stopped")]
        Stopped,
    }

    type Job = Box<dyn FnOnce() + Send>;

    /// The password threads' queue: one per engine (the CLI starts a small one of its own).
    /// Cheap to clone; the threads end when the last handle is dropped.
    #[derive(Clone)]
    pub struct PasswordPool {
        jobs: SyncSender<Job>,
    }

    impl PasswordPool {
        /// Starts `threads` threads taking jobs from a queue of `queue_jobs_max`.
        pub fn new(threads: usize, queue_jobs_max: usize) -> PasswordPool {
            let (tx, rx) = sync_channel::<Job>(queue_jobs_max.max(1));
            let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
            for i in 0..threads.max(1) {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("winzo-passwords-{i}"))
                    .spawn(move || loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "starting a password thread");
                }
            }
            PasswordPool { jobs: tx }
        }

        /// Runs `f` on the pool and waits for its result; 503 `busy` when the queue is full.
        pub async fn run<T: Send + 'static>(
            &self,
            f: impl FnOnce() -> T + Send + 'static,
        ) -> Result<T, PoolError> {
            let (tx, rx) = oneshot::channel();
            let job: Job = Box::new(move || {
                let _ = tx.send(f());
            });
            self.jobs.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) => PoolError::Busy,
                TrySendError::Disconnected(_) => PoolError::Stopped,
            })?;
            rx.await.map_err(|_| PoolError::Stopped)
        }
    }
}
