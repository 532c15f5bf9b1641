//! The receiver's socket side: the accept loop, a minimal HTTP/1.1 reader (Content-Length and
//! chunked bodies, keep-alive) and the replies, including the ones that misbehave (hang, reset).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Command, Reply, Request, Shared};

/// The longest request head the receiver accepts.
const MAX_HEAD: usize = 64 * 1024;

pub(super) async fn serve(
    port: u16,
    mut listener: Option<TcpListener>,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                None => break,
                Some(Command::Close(ack)) => {
                    listener = None;
                    conns.abort_all();
                    while conns.join_next().await.is_some() {}
                    shared.log.lock().unwrap().open.clear();
                    shared.bump();
                    let _ = ack.send(());
                }
                Some(Command::Open(ack)) => {
                    let result = match listener {
                        Some(_) => Ok(()),
                        None => listen(port).map(|l| listener = Some(l)),
                    };
                    let _ = ack.send(result);
                }
            },
            accepted = accept(&listener) => {
                if let Ok((stream, _)) = accepted {
                    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
                    conns.spawn(connection(stream, id, shared.clone()));
                }
            },
            Some(_) = conns.join_next() => {},
        }
    }
    conns.abort_all();
}

fn listen(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(1024)
}

async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// A connection's bytes read so far and not yet consumed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if self.buf.len() > MAX_HEAD || self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The next request head, or `None` when the client closed the connection between requests.
    async fn head(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..i + 4).collect()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    async fn chunked_body(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size_line = self.line().await?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take(size).await?);
            self.take(2).await?;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn connection(stream: TcpStream, id: u64, shared: Arc<Shared>) {
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    while let Ok(Some(head)) = conn.head().await {
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let body = if get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            conn.chunked_body().await
        } else {
            let len = get("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            conn.take(len).await
        };
        let Ok(body) = body else { return };
        let close_after = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let path = target.split('?').next().unwrap_or("").to_string();
        let request = {
            let mut log = shared.log.lock().unwrap();
            let request = Request {
                seq: log.requests.len(),
                method,
                target,
                path: path.clone(),
                headers,
                body,
                at: Instant::now(),
                conn: id,
            };
            log.requests.push(request.clone());
            request
        };
        let reply = shared.reply_for(&request);
        shared.bump();
        let answer = match reply {
            Reply::Status {
                status,
                content_type,
                body,
            } => response(status, &[("content-type", content_type)], &body),
            Reply::Redirect { status, location } => {
                response(status, &[("location", location.as_str())], b"")
            }
            Reply::Reset => {
                let _ = conn.stream.set_zero_linger();
                return;
            }
            Reply::Hang => {
                hang(&mut conn, &path, &shared).await;
                return;
            }
        };
        if conn.stream.write_all(&answer).await.is_err() || close_after {
            return;
        }
    }
}

/// Holds the request open (counted as open on its path) until the client closes the connection.
async fn hang(conn: &mut Conn, path: &str, shared: &Shared) {
    {
        let mut log = shared.log.lock().unwrap();
        let open = log.open.entry(path.to_string()).or_default();
        *open += 1;
        let now = *open;
        let max = log.max_open.entry(path.to_string()).or_default();
        *max = (*max).max(now);
    }
    shared.bump();
    // Read (and ignore) until the client gives up; the receiver's shutdown also ends this.
    while matches!(conn.fill().await, Ok(n) if n > 0) {
        conn.buf.clear();
    }
    {
        let mut log = shared.log.lock().unwrap();
        if let Some(open) = log.open.get_mut(path) {
            *open -= 1;
        }
    }
    shared.bump();
}

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
