//! Threads with their own single-threaded tokio runtime. Neutral: imports nothing of the crate.

use std::io;
use std::thread::JoinHandle;

use tracing::error;

/// Runs `make()`'s future on a new OS thread with its own single-threaded tokio runtime (the
/// health runner, the admin server and each DNS worker live like this).
pub fn on_own_thread<F, Fut>(name: &str, make: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let label = name.to_string();
    std::thread::Builder::new()
        .name(label.clone())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(make()),
                Err(e) => error!(thread = %label, error = %e, "cannot start a runtime"),
            }
        })
}

/// Seconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
#[allow(
    clippy::disallowed_methods,
    reason = "this is the one wall-clock reading the layers above share"
)]
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
