//! The perimeter: how connections are accepted and bounded, so that idle, slow or numerous
//! sockets can never jam the revoke brake.
//!
//! - a cap on concurrent connections (an accept loop that takes a permit first);
//! - a header-read timeout that also closes idle keep-alive connections (hyper restarts it
//!   whenever a connection waits for the next request's head, the first one included);
//! - a body-read timeout (between frames of a request body);
//! - the soft `RLIMIT_NOFILE` raised to the hard limit at start.
//!
//! HTTP/1.1 only: the registry sits behind a TLS-terminating proxy, and cleartext HTTP/2 would
//! need its own idle and stream limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

/// Connection limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Most connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// A request's head must arrive within this; an idle keep-alive connection is closed after it.
    pub header_read_timeout: Duration,
    /// The longest wait for the next piece of a request body.
    pub body_read_timeout: Duration,
    /// How long a graceful stop waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl ConnectionLimits {
    /// Keeps the connection cap under the process's file limit, leaving room for the database,
    /// the log and outgoing webhooks.
    pub fn fitted_to_file_limit(mut self, soft_limit: u64) -> ConnectionLimits {
        let room = soft_limit.saturating_sub(64).max(16);
        self.max_connections = self.max_connections.min(room as usize).max(1);
        self
    }
}

/// The file-descriptor limits before and after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    pub soft_before: u64,
    pub soft_after: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a default soft limit of 256 or 1024
/// would otherwise bound the connections long before the cap does).
#[cfg(unix)]
// `rlim_t` is u64 on Linux but not on every unix: the casts are needed elsewhere.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files_limit() -> std::io::Result<FileLimits> {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let soft_before = limit.rlim_cur as u64;
        let hard = limit.rlim_max as u64;
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(FileLimits {
            soft_before,
            soft_after: now.rlim_cur as u64,
            hard,
        })
    }
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> std::io::Result<FileLimits> {
    Err(std::io::Error::other("not supported on this platform"))
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets in-flight
/// requests finish (at most `shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut at_cap_logged = false;
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !at_cap_logged {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached; new connections wait in the backlog"
                    );
                    at_cap_logged = true;
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                    _ = &mut shutdown => break,
                }
            }
        };
        if permits.available_permits() > limits.max_connections / 2 {
            at_cap_logged = false;
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = ServiceBuilder::new()
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                limits.body_read_timeout,
            ))
            .map_request(move |mut request: axum::http::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .service(app.clone());
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still running after the shutdown grace period");
    }
    Ok(())
}

/// The peer of a request, when it came through [`serve`].
pub fn peer_of(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_file_limit() {
        let limits = ConnectionLimits::default().fitted_to_file_limit(256);
        assert_eq!(limits.max_connections, 192);
        let limits = ConnectionLimits::default().fitted_to_file_limit(1_000_000);
        assert_eq!(limits.max_connections, 4096);
    }
}
