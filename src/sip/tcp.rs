//! SIP over TCP for the relay: one reader and one writer task per connection, messages framed by
//! their Content-Length (RFC 3261 §18.3), outgoing connections opened on demand. The relay's
//! loop gets every message, opening and closing as a [`TcpEvent`], and keeps the table of open
//! connections by peer address.
//!
//! May depend on: tokio.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What happened on a TCP connection.
pub enum TcpEvent {
    /// A whole message from this peer.
    Message(SocketAddr, Vec<u8>),
    /// An outgoing connection to this peer is open; send on it with this.
    Opened(SocketAddr, mpsc::UnboundedSender<Vec<u8>>),
    /// The connection with this peer is gone.
    Closed(SocketAddr),
}

/// The largest message (headers and body) taken from a connection; a larger one closes it.
pub const MAX_MESSAGE: usize = 65_536;

/// Starts the reader and the writer of a connection; returns where to send its messages.
pub fn start(
    stream: TcpStream,
    peer: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 16_384];
        'read: loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            loop {
                match frame(&mut buf) {
                    Ok(Some(message)) => {
                        if events.send(TcpEvent::Message(peer, message)).await.is_err() {
                            break 'read;
                        }
                    }
                    Ok(None) => break,
                    Err(why) => {
                        tracing::debug!(%peer, why, "SIP TCP connection closed");
                        break 'read;
                    }
                }
            }
        }
        let _ = events.send(TcpEvent::Closed(peer)).await;
    });
    tx
}

/// Opens a connection to `peer` in the background, sends `first` on it, and reports it opened.
pub fn connect(peer: SocketAddr, first: Vec<u8>, events: mpsc::Sender<TcpEvent>) {
    tokio::spawn(async move {
        match TcpStream::connect(peer).await {
            Ok(stream) => {
                let tx = start(stream, peer, events.clone());
                let _ = tx.send(first);
                let _ = events.send(TcpEvent::Opened(peer, tx)).await;
            }
            Err(e) => tracing::debug!(%peer, error = %e, "SIP TCP connect failed"),
        }
    });
}

/// Takes the first whole message off the front of `buf`: leading CRLFs (keep-alives) are
/// skipped; a message is its headers up to the blank line plus Content-Length bytes (0 when
/// the header is missing). `Ok(None)`: not all there yet. `Err`: the stream is unusable.
pub fn frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, &'static str> {
    let start = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(buf.len());
    buf.drain(..start);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return match buf.len() > MAX_MESSAGE {
            true => Err("headers longer than 64 KiB"),
            false => Ok(None),
        };
    };
    let head = &buf[..end];
    let mut length = 0usize;
    for line in head.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            length = value
                .trim()
                .parse()
                .map_err(|_| "unreadable Content-Length")?;
        }
    }
    let total = end + 4 + length;
    if total > MAX_MESSAGE {
        return Err("message longer than 64 KiB");
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(buf.drain(..total).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_their_content_length_whatever_the_chunks() {
        let one = b"INVITE sip:b@h SIP/2.0\r\nContent-Length: 4\r\n\r\nv=0\n";
        let two = b"BYE sip:b@h SIP/2.0\r\nl: 0\r\n\r\n";
        let stream: Vec<u8> = [&b"\r\n\r\n"[..], one, b"\r\n", two].concat();
        // Fed byte by byte, or all at once: the same two messages.
        for step in [1, stream.len()] {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                buf.extend_from_slice(chunk);
                while let Some(m) = frame(&mut buf).unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![one.to_vec(), two.to_vec()], "step {step}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_stream_that_cannot_be_framed_is_refused() {
        let mut huge = vec![b'a'; MAX_MESSAGE + 1];
        assert!(frame(&mut huge).is_err());
        let mut bad = b"INVITE x SIP/2.0\r\nContent-Length: many\r\n\r\n".to_vec();
        assert!(frame(&mut bad).is_err());
        let mut long_body = b"INVITE x SIP/2.0\r\nContent-Length: 999999\r\n\r\n".to_vec();
        assert!(frame(&mut long_body).is_err());
    }
}
