//! The connection loop: HTTP/1.1 connections served by hyper, each bounded
//! in time, at most `max_connections` of them at once.
//!
//! hyper's own header timeout starts as soon as a connection waits for a
//! request, so on its own it would close idle keep-alive connections after
//! the header timeout too. Each connection here follows its phase instead:
//! waiting for headers (since it opened, or since the first byte after an
//! idle spell) it is bounded by the header timeout, idle between requests
//! by the idle timeout, and a request in flight by the router's request
//! timeout.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::HttpSettings;

/// Serves `router` on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub fn launch_with(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = io::Result<()>> + Send + 'static {
    let max = settings
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let timeouts = Timeouts {
        header: settings.header_timeout,
        idle: settings.idle_timeout,
    };
    serve(listener, router, max, timeouts, shutdown)
}

async fn serve(
    listener: TcpListener,
    router: Router,
    max: usize,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot first: at the cap, connections wait in the kernel's
        // backlog rather than cost a task and a file descriptor here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: serving the others goes on; a short
                    // pause lets descriptors come back rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = stream;
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            timeouts,
            stopping.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds its slot until it ends: all of them back means
    // every connection has finished.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let phase = Arc::new(Phase::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        phase: phase.clone(),
    });
    let service = {
        let phase = phase.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let router = router.clone();
            // Who is asking: the limit on wrong admin tokens counts by it.
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::begin(phase.clone());
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                drop(busy);
                response
            }
        })
    };
    let mut conn = pin!(http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service));
    loop {
        let deadline = phase.deadline(timeouts);
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    debug!(error = %e, "connection ended");
                }
                return;
            }
            () = phase.changed.notified() => {}
            () = sleep_until(deadline) => match phase.current() {
                // A client that sends part of a request and stops is cut
                // off: there is nothing to finish.
                State::Head(_) => return,
                State::Idle(_) => break,
                State::Busy => {}
            },
            _ = stopping.changed() => break,
        }
    }
    // Idle, or shutting down: finish what is in flight, take nothing new.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[derive(Clone, Copy)]
enum State {
    /// Waiting for a request's headers since then.
    Head(Instant),
    /// A request is in flight.
    Busy,
    /// Between requests since then.
    Idle(Instant),
}

/// Where a connection is, told by its reads and its requests.
struct Phase {
    state: Mutex<State>,
    changed: Notify,
}

impl Phase {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn current(&self) -> State {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, change: impl FnOnce(State) -> State) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = change(*state);
        // notify_one keeps the wake-up for a loop not yet waiting.
        self.changed.notify_one();
    }

    fn deadline(&self, t: Timeouts) -> Option<Instant> {
        match self.current() {
            State::Head(since) => Some(since + t.header),
            State::Idle(since) => Some(since + t.idle),
            State::Busy => None,
        }
    }
}

/// A request in flight on a connection, until dropped.
struct Busy(Arc<Phase>);

impl Busy {
    fn begin(phase: Arc<Phase>) -> Self {
        phase.set(|_| State::Busy);
        Self(phase)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(|_| State::Idle(Instant::now()));
    }
}

/// The socket, telling its connection's [`Phase`] when a byte arrives
/// after an idle spell.
struct Watched {
    inner: TcpStream,
    phase: Arc<Phase>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && matches!(self.phase.current(), State::Idle(_)) {
            self.phase.set(|s| match s {
                State::Idle(_) => State::Head(Instant::now()),
                other => other,
            });
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
