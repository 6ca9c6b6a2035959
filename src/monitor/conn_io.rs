//! The socket of one accepted connection as hyper sees it: a write timeout, and hyper's own
//! answers to requests it cannot parse rewritten as JSON errors.
//!
//! **Write timeout.** A client that sends requests and never reads the answers filled its
//! receive window, then the server's send buffer, and hyper waited to write for ever: nothing
//! read from the connection any more, so no read timeout started either, and the connection,
//! its task and its buffered answer were held until the client went away. Here a write that
//! makes no progress for the write timeout fails with `TimedOut`, and hyper closes the
//! connection.
//!
//! **hyper's parse errors.** A request line or header that does not parse, a head of more than
//! 100 headers or ~400 KiB, a request target over 64 KiB: hyper answers these itself, before
//! any application code runs (`Server::on_error` in hyper's `proto/h1/role.rs`), with a bare
//! `400`/`431`/`414` head, `content-length: 0` and no `Content-Type`, then closes the
//! connection; it has no hook to change that answer. What it writes is recognised here on its
//! way to the socket (its exact head, which no answer of the application has: those always
//! carry a JSON body and a `content-type`) and replaced by the same status with a
//! `{"error": ...}` body.

use memchr::memmem;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A connection's socket with a write timeout, rewriting hyper's automatic error answers.
pub struct ConnIo<S> {
    inner: S,
    write_timeout: Duration,
    /// Running while a write waits for the client to take bytes.
    stalled: Option<Pin<Box<Sleep>>>,
    /// The rewritten answer, the last bytes of the connection, and how much of it is sent.
    replacement: Vec<u8>,
    sent: usize,
    /// Off once the connection is upgraded (its bytes are no longer HTTP/1.1) or rewritten.
    scanning: bool,
}

impl<S> ConnIo<S> {
    pub fn new(inner: S, write_timeout: Duration) -> ConnIo<S> {
        ConnIo {
            inner,
            write_timeout,
            stalled: None,
            replacement: Vec::new(),
            sent: 0,
            scanning: true,
        }
    }
}

impl<S: AsyncWrite + Unpin> ConnIo<S> {
    /// Polls one write-side operation, failing it once it has waited `write_timeout`.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.write_timeout;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing of its answer for {timeout:?}"),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// Sends what is left of the rewritten answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.replacement.len() {
            let replacement = std::mem::take(&mut self.replacement);
            let sent = self.sent;
            let polled = self.timed(cx, |inner, cx| inner.poll_write(cx, &replacement[sent..]));
            self.replacement = replacement;
            match ready!(polled)? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => self.sent += n,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if this.scanning {
            if memmem::find(buf, SWITCHING_PROTOCOLS).is_some() {
                this.scanning = false;
            } else if let Some(rewritten) = rewrite_automatic_error(buf) {
                // hyper writes nothing after this answer; it is sent by flush and shutdown.
                this.scanning = false;
                this.replacement = rewritten;
                this.sent = 0;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        this.timed(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        this.timed(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        this.timed(cx, |inner, cx| inner.poll_shutdown(cx))
    }

    // Not vectored, so that hyper flattens what it writes and each answer head it writes
    // arrives here whole, in one buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

const SWITCHING_PROTOCOLS: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n";

/// What follows the status line of hyper's automatic answer, up to its date.
const AUTOMATIC_TAIL: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\ndate: ";

/// The status lines hyper answers parse errors with, and what the JSON answer says instead.
const AUTOMATIC: [(&[u8], &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request",
        "malformed request: the request line or a header is not valid HTTP/1.1",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large",
        "request head too large: more than 100 headers or more than 400 KiB",
    ),
    (
        b"HTTP/1.1 414 URI Too Long",
        "request target too long: more than 65,534 bytes",
    ),
];

/// `buf` with hyper's automatic error answer, if it holds one, replaced by a JSON answer of
/// the same status (the date kept); what came before it in `buf` is kept as it was.
fn rewrite_automatic_error(buf: &[u8]) -> Option<Vec<u8>> {
    static TAIL: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    let tail_at = TAIL
        .get_or_init(|| memmem::Finder::new(AUTOMATIC_TAIL))
        .find(buf)?;
    let (status_line, message) = AUTOMATIC
        .iter()
        .find(|(line, _)| buf[..tail_at].ends_with(line))?;
    let start = tail_at - status_line.len();
    let date_at = tail_at + AUTOMATIC_TAIL.len();
    let date_len = memmem::find(&buf[date_at..], b"\r\n\r\n")?;
    let end = date_at + date_len + 4;
    let body = serde_json::json!({ "error": message }).to_string();
    let mut out = Vec::with_capacity(buf.len() + body.len() + 64);
    out.extend_from_slice(&buf[..start]);
    out.extend_from_slice(status_line);
    out.extend_from_slice(b"\r\nconnection: close\r\ncontent-type: application/json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\ndate: ", body.len()).as_bytes());
    out.extend_from_slice(&buf[date_at..date_at + date_len]);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(&buf[end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Tue, 01 Dec 2026 12:26:36 GMT";

    fn automatic(status_line: &str) -> Vec<u8> {
        format!("{status_line}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn automatic_answers_become_json() {
        for (line, message) in AUTOMATIC {
            let line = std::str::from_utf8(line).unwrap();
            let out = rewrite_automatic_error(&automatic(line)).expect("rewritten");
            let text = String::from_utf8(out).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(line), "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            assert!(head.contains(&format!("date: {DATE}")), "{head}");
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{head}"
            );
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["error"], message);
        }
    }

    #[test]
    fn what_came_before_is_kept() {
        let earlier =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let mut buf = earlier.to_vec();
        buf.extend(automatic("HTTP/1.1 400 Bad Request"));
        let out = rewrite_automatic_error(&buf).unwrap();
        assert!(out.starts_with(earlier));
        assert!(out.ends_with(b"not valid HTTP/1.1\"}"));
    }

    #[test]
    fn application_answers_are_left_alone() {
        for buf in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            b"{\"error\":\"HTTP/1.1 400 Bad Request\\r\\nconnection: close\"}",
            b"",
        ] {
            assert_eq!(rewrite_automatic_error(buf), None, "{buf:?}");
        }
    }
}
