//! Signals: stopping cleanly on SIGINT and SIGTERM, shared by the long-running commands (`serve`,
//! `listen`), and surviving SIGXFSZ in `serve`.

use tokio_util::sync::CancellationToken;

/// SIGINT and SIGTERM handlers. Install them before announcing an address, so that a signal
/// arriving right after the announcement is never met by the default action (which would kill
/// the process uncleanly).
pub(super) struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(super) fn install() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Cancels `shutdown` on SIGINT or SIGTERM.
    pub(super) async fn cancel_on_signal(mut self, shutdown: CancellationToken) {
        #[cfg(unix)]
        let signalled = async {
            tokio::select! {
                _ = self.interrupt.recv() => {},
                _ = self.terminate.recv() => {},
            }
        };
        #[cfg(not(unix))]
        let signalled = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            () = signalled => {
                tracing::info!("shutting down");
                shutdown.cancel();
            }
            () = shutdown.cancelled() => {}
        }
    }
}

/// Keeps `serve` alive when a write would pass the file size limit (`ulimit -f`): the default
/// action of SIGXFSZ ends the process, while with this handler the write fails with `EFBIG`, the
/// store answers 503 like for a full disk, and service resumes once the limit is raised. Logs each
/// time it happens.
pub(super) fn survive_file_size_limit() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut xfsz = signal(SignalKind::from_raw(libc::SIGXFSZ))?;
        tokio::spawn(async move {
            while xfsz.recv().await.is_some() {
                tracing::error!(
                    "file size limit reached (SIGXFSZ): writes fail until it is raised"
                );
            }
        });
    }
    Ok(())
}
