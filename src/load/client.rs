//! A lean HTTP/1.1 keep-alive client: one connection, one request at a time, parsed with
//! httparse in the caller's task. No connection task, no channel hop per request, so the
//! generator costs little next to the server it measures. It serves plain http:// targets;
//! https:// and HTTP/2 go through reqwest (`super::https`), behind the same [`Link`].

use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where requests go: `http://HOST:PORT[/base]` or `https://...`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL as given (without a trailing '/'), for messages and reqwest.
    pub url: String,
    /// https:// (TLS) rather than http://.
    pub https: bool,
    pub addr: SocketAddr,
    host_header: String,
    base_path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{url}: only http:// and https:// URLs are supported{hint}")]
    Scheme { url: String, hint: String },
    /// Not a URL of a host and a port: bad usage, unlike a host that does not resolve.
    #[error("{url} is not a usable target URL: {reason}")]
    Malformed { url: String, reason: String },
    #[error("{url}: cannot resolve host: {reason}")]
    Resolve { url: String, reason: String },
}

/// Splits `authority` (`host`, `host:port`, `[v6]`, `[v6]:port`) into the host to resolve and
/// the port; the error says what is wrong with it.
fn host_and_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    if authority.is_empty() {
        return Err("it names no host, e.g. http://127.0.0.1:8080".into());
    }
    if authority.contains('@') {
        return Err("a user name or password in the URL (user info) is not supported".into());
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address opened with '[' is not closed with ']'")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("host [{v6}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{after:?} after ']' is not a :port"))?,
            ),
        };
        (format!("[{v6}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("an IPv6 address goes in brackets, e.g. http://[::1]:8080".into())
            }
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let valid_host = |h: &str| {
        h.starts_with('[')
            || (!h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)))
    };
    if host.is_empty() {
        return Err("it names no host, e.g. http://127.0.0.1:8080".into());
    }
    if !valid_host(&host) {
        return Err(format!("host {host:?} is not a host name or IP address"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("port {p:?} is not a port number (1 to 65535)")),
        },
    };
    Ok((host, port))
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let (https, rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest, 80)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest, 443)
        } else {
            return Err(EndpointError::Scheme {
                url: url.to_string(),
                // "localhost:8080" lacks only the scheme.
                hint: if url.contains("://") {
                    String::new()
                } else {
                    format!("; did you mean http://{url}?")
                },
            });
        };
        let malformed = |reason: String| EndpointError::Malformed {
            url: url.to_string(),
            reason,
        };
        if rest.contains(['?', '#']) {
            return Err(malformed(
                "a query or fragment has no place in the base URL of a target".into(),
            ));
        }
        if rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(malformed(
                "it contains spaces or control characters, which no host name has".into(),
            ));
        }
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = host_and_port(authority, default_port).map_err(malformed)?;
        let with_port = format!("{host}:{port}");
        let resolve_err = |reason: String| EndpointError::Resolve {
            url: url.to_string(),
            reason,
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .map_err(|e| resolve_err(e.to_string()))?
            .next()
            .ok_or_else(|| resolve_err("no address found".into()))?;
        Ok(Endpoint {
            url: url.trim_end_matches('/').to_string(),
            https,
            addr,
            host_header: authority.to_string(),
            base_path: base.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        addr: SocketAddr,
        reason: std::io::Error,
    },
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad response: {0}")]
    Protocol(String),
    /// reqwest could not connect (TCP or the TLS handshake): its whole chain of causes.
    #[error("cannot connect: {0}")]
    Unreachable(String),
    /// Any other reqwest failure, with its causes.
    #[error("{0}")]
    Http(String),
}

impl ClientError {
    /// Whether the server could not be reached at all (as opposed to a slow or bad answer).
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::ConnectTimeout(_)
                | ClientError::Unreachable(_)
        )
    }
}

/// A status and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Limits applied to every request of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
        }
    }
}

/// Largest response the client accepts, bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How the generator reaches an HTTP target: the lean HTTP/1.1 client on plain http://
/// (the hot path), reqwest on https:// and HTTP/2.
#[derive(Debug, Clone)]
pub enum Wire {
    Lean,
    Reqwest(std::sync::Arc<super::https::Wire>),
}

/// One transport's connection to the target, either way.
pub enum Link {
    Lean(Conn),
    Pooled(super::https::PooledConn),
}

impl Link {
    pub fn new(wire: &Wire, endpoint: &std::sync::Arc<Endpoint>, timeouts: Timeouts) -> Link {
        match wire {
            Wire::Lean => Link::Lean(Conn::new(std::sync::Arc::clone(endpoint), timeouts)),
            Wire::Reqwest(w) => Link::Pooled(super::https::PooledConn::new(w, endpoint, timeouts)),
        }
    }

    /// Opens the connection now rather than with the first request.
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        match self {
            Link::Lean(c) => c.connect().await,
            Link::Pooled(c) => c.connect().await,
        }
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        match self {
            Link::Lean(c) => c.send(method, path, headers, body).await,
            Link::Pooled(c) => c.send(method, path, headers, body).await,
        }
    }
}

/// One keep-alive connection; reconnects on demand.
pub struct Conn {
    endpoint: std::sync::Arc<Endpoint>,
    timeouts: Timeouts,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: BytesMut,
}

impl Conn {
    pub fn new(endpoint: std::sync::Arc<Endpoint>, timeouts: Timeouts) -> Conn {
        Conn {
            endpoint,
            timeouts,
            stream: None,
            // Allocated with the first request, not here: a burst makes one Conn per
            // request in flight, and a worker pool one per worker, before any is used.
            out: Vec::new(),
            buf: BytesMut::new(),
        }
    }

    /// Opens the TCP connection now rather than on the first request.
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        if self.stream.is_none() {
            let addr = self.endpoint.addr;
            let stream = tokio::time::timeout(self.timeouts.connect, TcpStream::connect(addr))
                .await
                .map_err(|_| ClientError::ConnectTimeout(addr))?
                .map_err(|reason| ClientError::Connect { addr, reason })?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        self.out.clear();
        let ep = &self.endpoint;
        let out = &mut self.out;
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(ep.base_path.as_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(ep.host_header.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(body) = body {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                out.extend_from_slice(b"Content-Type: application/json\r\n");
            }
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
        let request_timeout = self.timeouts.request;
        let reused = self.stream.is_some();
        let idempotent = matches!(method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS");
        let first = self.timed_round_trip(request_timeout).await;
        match first {
            // A kept-alive connection the server closed while idle: the request could not be
            // written, so it never reached the server and is sent once more on a new
            // connection. An answer that never came after a complete write is ambiguous (the
            // server may have acted on it), so only idempotent requests are retried then.
            Err(RoundTripError::WriteFailed) if reused => self
                .timed_round_trip(request_timeout)
                .await
                .map_err(RoundTripError::into_client),
            Err(RoundTripError::ClosedBeforeResponse) if reused && idempotent => self
                .timed_round_trip(request_timeout)
                .await
                .map_err(RoundTripError::into_client),
            r => r.map_err(RoundTripError::into_client),
        }
    }

    /// One attempt within the request timeout; any failure leaves no connection behind, so
    /// a late answer can never be read as the next request's.
    async fn timed_round_trip(&mut self, limit: Duration) -> Result<Response, RoundTripError> {
        let result = match tokio::time::timeout(limit, self.round_trip()).await {
            Err(_) => Err(RoundTripError::Client(ClientError::Timeout(limit))),
            Ok(r) => r,
        };
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn round_trip(&mut self) -> Result<Response, RoundTripError> {
        self.connect().await.map_err(RoundTripError::Client)?;
        self.write_and_read().await
    }

    async fn write_and_read(&mut self) -> Result<Response, RoundTripError> {
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(&self.out).await.map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) {
                RoundTripError::WriteFailed
            } else {
                RoundTripError::Client(e.into())
            }
        })?;
        // Head.
        let (status, body_len, close, head_len) = loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf) {
                    Ok(httparse::Status::Complete(head_len)) => {
                        let status = resp.code.unwrap_or(0);
                        let mut body_len = BodyLen::UntilClose;
                        let mut close = resp.version == Some(0);
                        for h in resp.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                let n = std::str::from_utf8(h.value)
                                    .ok()
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                    .ok_or_else(|| protocol("invalid Content-Length"))?;
                                body_len = BodyLen::Exact(n);
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                                && h.value.eq_ignore_ascii_case(b"chunked")
                            {
                                body_len = BodyLen::Chunked;
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                close = h.value.eq_ignore_ascii_case(b"close");
                            }
                        }
                        // Informational answers (100 Continue) precede the real one.
                        if (100..200).contains(&status) {
                            self.buf.advance(head_len);
                            continue;
                        }
                        if status == 204 || status == 304 {
                            body_len = BodyLen::Exact(0);
                        }
                        break (status, body_len, close, head_len);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(protocol(&format!("cannot parse response head: {e}"))),
                }
            }
            if self.fill().await? == 0 {
                return Err(if self.buf.is_empty() {
                    RoundTripError::ClosedBeforeResponse
                } else {
                    protocol("connection closed inside the response head")
                });
            }
        };
        self.buf.advance(head_len);
        let body = match body_len {
            BodyLen::Exact(n) => {
                if n > MAX_RESPONSE_BYTES {
                    return Err(protocol("response body too large"));
                }
                while self.buf.len() < n {
                    if self.fill().await? == 0 {
                        return Err(protocol("connection closed inside the response body"));
                    }
                }
                self.buf.split_to(n).freeze()
            }
            BodyLen::Chunked => self.read_chunked().await?,
            BodyLen::UntilClose => {
                while self.fill().await? > 0 {
                    if self.buf.len() > MAX_RESPONSE_BYTES {
                        return Err(protocol("response body too large"));
                    }
                }
                self.stream = None;
                self.buf.split().freeze()
            }
        };
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }

    async fn fill(&mut self) -> Result<usize, RoundTripError> {
        let stream = self.stream.as_mut().expect("connected");
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| RoundTripError::Client(e.into()))
    }

    async fn read_chunked(&mut self) -> Result<bytes::Bytes, RoundTripError> {
        let mut body = BytesMut::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if self.fill().await? == 0 {
                    return Err(protocol("connection closed inside a chunk header"));
                }
            };
            let size_text = std::str::from_utf8(&self.buf[..line_end])
                .map_err(|_| protocol("invalid chunk size"))?;
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size_text, 16).map_err(|_| protocol("invalid chunk size"))?;
            self.buf.advance(line_end + 2);
            if body.len() + size > MAX_RESPONSE_BYTES {
                return Err(protocol("response body too large"));
            }
            // The chunk, then its CRLF; the last (empty) chunk is followed by trailers + CRLF.
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err(protocol("connection closed inside a chunk"));
                }
            }
            if size == 0 {
                while !self.buf.starts_with(b"\r\n") {
                    match self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(i) => {
                            self.buf.advance(i + 2);
                            break;
                        }
                        None => {
                            if self.fill().await? == 0 {
                                return Err(protocol("connection closed inside trailers"));
                            }
                        }
                    }
                }
                self.buf.advance(2);
                return Ok(body.freeze());
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
        }
    }
}

/// One GET from outside any async runtime (start-up checks, stats), with short timeouts.
pub fn blocking_get(url: &str, path: &str) -> anyhow::Result<Response> {
    let endpoint = std::sync::Arc::new(Endpoint::parse(url)?);
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(10),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(Conn::new(endpoint, timeouts).send("GET", path, &[], None))?)
}

enum BodyLen {
    Exact(usize),
    Chunked,
    UntilClose,
}

enum RoundTripError {
    /// The connection was closed before the request could be written.
    WriteFailed,
    /// The request was written but the connection closed before any byte of an answer.
    ClosedBeforeResponse,
    Client(ClientError),
}

impl RoundTripError {
    fn into_client(self) -> ClientError {
        match self {
            RoundTripError::WriteFailed => ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "server closed the connection before the request was sent",
            )),
            RoundTripError::ClosedBeforeResponse => ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "server closed the connection before answering",
            )),
            RoundTripError::Client(e) => e,
        }
    }
}

fn protocol(msg: &str) -> RoundTripError {
    RoundTripError::Client(ClientError::Protocol(msg.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_parses_host_port_and_base_path() {
        let ep = Endpoint::parse("http://127.0.0.1:8080/prefix/").unwrap();
        assert_eq!(ep.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(ep.base_path, "/prefix");
        assert_eq!(ep.host_header, "127.0.0.1:8080");
        assert_eq!(ep.url, "http://127.0.0.1:8080/prefix");
        let ep = Endpoint::parse("http://localhost").unwrap();
        assert_eq!(ep.addr.port(), 80);
        let ep = Endpoint::parse("https://127.0.0.1/").unwrap();
        assert!(ep.https);
        assert_eq!(ep.addr.port(), 443);
        assert_eq!(ep.url, "https://127.0.0.1");
        assert!(matches!(
            Endpoint::parse("ftp://127.0.0.1:1"),
            Err(EndpointError::Scheme { .. })
        ));
        let e = Endpoint::parse("127.0.0.1:80").unwrap_err().to_string();
        assert!(e.ends_with("did you mean http://127.0.0.1:80?"), "{e}");
        let ep = Endpoint::parse("http://[::1]:8080/").unwrap();
        assert_eq!(ep.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(Endpoint::parse("http://[::1]").unwrap().addr.port(), 80);
        for bad in [
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://127.0.0.1:",
            "http://[::1",
            "http://[::1]x",
            "http://::1",
            "http://u:p@host",
            "http://",
            "http://:80",
            "http://a b",
            "http://host/?q=1",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(EndpointError::Malformed { .. })),
                "{bad}: {:?}",
                Endpoint::parse(bad).map(|e| e.addr)
            );
        }
    }

    /// A raw server that answers with chunked encoding, then closes after the second request.
    #[tokio::test]
    async fn reads_chunked_and_content_length_bodies_and_reconnects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n")
                    .await
                    .unwrap();
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                )
                .await
                .unwrap();
            }
        });
        let ep = std::sync::Arc::new(Endpoint::parse(&format!("http://{addr}")).unwrap());
        let mut conn = Conn::new(ep, Timeouts::default());
        for _ in 0..2 {
            let r = conn.send("GET", "/a", &[], None).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (200, &b"Wikipedia"[..]));
            let r = conn.send("POST", "/b", &[], Some(b"{}")).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (404, &b"{}"[..]));
        }
    }

    #[tokio::test]
    async fn refused_connection_is_a_connection_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let ep = std::sync::Arc::new(Endpoint::parse(&format!("http://{addr}")).unwrap());
        let err = Conn::new(ep, Timeouts::default())
            .send("GET", "/", &[], None)
            .await
            .unwrap_err();
        assert!(err.is_connection_failure(), "{err}");
    }
}
