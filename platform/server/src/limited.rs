//! A chunked upload's body, counted as it streams to its operation and cut off at the path's
//! limit with `ErrorKind::FileTooLarge` (which the extractors answer with 413). A body with a
//! `Content-Length` is checked against the limit before it is read; a chunked one cannot be,
//! and an upload's is not buffered at the edge either.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use poem::Request;
use tokio::io::{AsyncRead, ReadBuf};

/// A body that fails once more than `limit` bytes have been read from it.
pub struct LimitedBody {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    read: u64,
    limit: u64,
}

impl LimitedBody {
    /// Puts a body of at most `limit` bytes in place of `req`'s body.
    pub fn wrap(req: &mut Request, limit: usize) {
        let body = LimitedBody {
            inner: Box::pin(req.take_body().into_async_read()),
            read: 0,
            limit: limit as u64,
        };
        req.set_body(poem::Body::from_async_read(body));
    }
}

impl AsyncRead for LimitedBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.read += (buf.filled().len() - before) as u64;
            if self.read > self.limit {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    "the body is larger than this operation accepts",
                )));
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn read(body: &[u8], limit: usize) -> io::Result<Vec<u8>> {
        let mut req = Request::builder().body(poem::Body::from_vec(body.to_vec()));
        LimitedBody::wrap(&mut req, limit);
        let mut out = Vec::new();
        req.take_body()
            .into_async_read()
            .read_to_end(&mut out)
            .await
            .map(|_| out)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_reads_whole() {
        assert_eq!(read(b"hello", 5).await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_off_as_too_large() {
        let err = read(b"hello world", 5).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }
}
