//! The request body as the endpoint sees it: counted against the path's limit while it is
//! read, and drained (a little) after a refusal.
//!
//! * A chunked upload's body is not buffered at the edge; it streams to its operation and is cut
//!   off with `ErrorKind::FileTooLarge` (which the extractors answer with 413) once it passes the
//!   path's limit. A body with a `Content-Length` was checked against the limit before.
//! * A request refused before its body was read (401, 403, 404, a 422 on a parameter) would
//!   otherwise be answered while the client may still be sending: the connection then closes
//!   with the body half-sent, and the client sees a broken pipe instead of the answer.
//!   [`BodyGuard::drain`] reads and discards what is left — at most [`DRAIN_BYTES`], for at most
//!   [`DRAIN_WITHIN`] — before the answer goes out. A larger remainder is not read: that client
//!   sees the connection close (one sending `Expect: 100-continue` never sends it at all).

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use poem::Request;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The most of a refused request's body the edge reads to deliver the answer.
pub const DRAIN_BYTES: u64 = 1024 * 1024;
/// The longest the edge waits for it.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(5);

type Inner = Pin<Box<dyn AsyncRead + Send>>;

struct State {
    /// The body still to read; `None` once it ended, failed or passed the limit.
    inner: Option<Inner>,
    read: u64,
    limit: u64,
}

/// A request body shared by the endpoint (which reads it, or not) and the edge (which drains
/// what is left).
#[derive(Clone)]
pub struct BodyGuard(Arc<Mutex<State>>);

impl BodyGuard {
    /// Puts a guarded body of at most `limit` bytes in place of `req`'s body.
    pub fn wrap(req: &mut Request, limit: usize) -> Self {
        let guard = BodyGuard(Arc::new(Mutex::new(State {
            inner: Some(Box::pin(req.take_body().into_async_read())),
            read: 0,
            limit: limit as u64,
        })));
        req.set_body(poem::Body::from_async_read(guard.clone()));
        guard
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.state().read
    }

    /// Reads and discards what the endpoint left of the body: at most [`DRAIN_BYTES`], for at
    /// most [`DRAIN_WITHIN`].
    pub async fn drain(&self) {
        if self.state().inner.is_none() {
            return;
        }
        let mut rest = self.clone().take(DRAIN_BYTES);
        let drained = tokio::time::timeout(
            DRAIN_WITHIN,
            tokio::io::copy(&mut rest, &mut tokio::io::sink()),
        )
        .await;
        if drained.is_err() {
            tracing::debug!("gave up draining a slow request body");
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AsyncRead for BodyGuard {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.state();
        let Some(inner) = state.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match inner.as_mut().poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                state.inner = None;
                Poll::Ready(Err(e))
            }
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if n == 0 {
                    state.inner = None;
                    return Poll::Ready(Ok(()));
                }
                state.read += n;
                if state.read > state.limit {
                    state.inner = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        "the body is larger than this operation accepts",
                    )));
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &[u8]) -> Request {
        Request::builder().body(poem::Body::from_vec(body.to_vec()))
    }

    #[tokio::test]
    async fn the_endpoint_reads_the_body_within_the_limit() {
        let mut req = request(b"hello");
        let guard = BodyGuard::wrap(&mut req, 5);
        let mut out = Vec::new();
        req.take_body()
            .into_async_read()
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(guard.read(), 5);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_off_as_too_large() {
        let mut req = request(b"hello world");
        let _guard = BodyGuard::wrap(&mut req, 5);
        let mut out = Vec::new();
        let err = req
            .take_body()
            .into_async_read()
            .read_to_end(&mut out)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[tokio::test]
    async fn what_the_endpoint_left_is_drained_up_to_the_cap() {
        let mut req = request(b"0123456789");
        let guard = BodyGuard::wrap(&mut req, 100);
        drop(req);
        guard.drain().await;
        assert_eq!(guard.read(), 10);

        let big = vec![b'x'; DRAIN_BYTES as usize * 2];
        let mut req = request(&big);
        let guard = BodyGuard::wrap(&mut req, big.len());
        drop(req);
        guard.drain().await;
        assert_eq!(guard.read(), DRAIN_BYTES);
    }
}
