//! A lean WebSocket client for fan-out benchmarks: the handshake and RFC 6455 framing by
//! hand over a tokio `TcpStream`, with one reusable read buffer per connection.
//!
//! Why not tokio-tungstenite here: with 10,000 subscribers on the same 2 cores as the engine,
//! the generator's own cost per received message (a `Message` allocated per frame, UTF-8
//! validation, a timer per read) competes with the engine it measures. This client reads
//! whatever frames are in the socket in one `read`, hands out borrowed payloads and answers
//! pings; the engine sees exactly the same protocol as from any other client (masked client
//! frames, a `Sec-WebSocket-Key`, pongs).
use std::io;
use std::ops::Range;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest frame accepted (a snapshot of a big event fits easily).
const FRAME_BYTES_MAX: usize = 4 << 20;

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl RawWs {
    /// Connects to `ws://host:port/path` (the `url` may also start with `http://`) and
    /// completes the upgrade; `buffer_bytes` is the initial read buffer.
    pub async fn connect(url: &str, buffer_bytes: usize) -> io::Result<RawWs> {
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| bad(format!("not a ws:// url: {url}")))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let mut ws = RawWs {
            stream,
            buf: vec![0; buffer_bytes.max(1024)],
            start: 0,
            end: 0,
        };
        // 16 random bytes in base64, as the protocol asks.
        let key = base64_16(&uuid::Uuid::new_v4().into_bytes());
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        ws.stream.write_all(req.as_bytes()).await?;
        // The answer's head; frames that follow it stay in the buffer.
        loop {
            if let Some(i) = find(&ws.buf[..ws.end], b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&ws.buf[..i]).to_string();
                if !head.starts_with("HTTP/1.1 101") {
                    return Err(bad(format!(
                        "upgrade refused: {}",
                        head.lines().next().unwrap_or("")
                    )));
                }
                ws.start = i + 4;
                return Ok(ws);
            }
            if ws.end == ws.buf.len() {
                return Err(bad("upgrade answer too long"));
            }
            let n = ws.stream.read(&mut ws.buf[ws.end..]).await?;
            if n == 0 {
                return Err(bad("closed during the upgrade"));
            }
            ws.end += n;
        }
    }

    /// Sends a text frame (masked, as a client must).
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(OP_TEXT, text.as_bytes()).await
    }

    /// Sends a normal close frame (1000); the caller then drops the connection.
    pub async fn close(&mut self) -> io::Result<()> {
        self.send(OP_CLOSE, &1000u16.to_be_bytes()).await
    }

    async fn send(&mut self, op: u8, payload: &[u8]) -> io::Result<()> {
        let mask: [u8; 4] = rand::random();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | op);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= u16::MAX as usize => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await
    }

    /// The next data frame: its opcode and the payload's range (read it with
    /// [`RawWs::payload`] before the next call). Pings are answered here; `None` once the
    /// server closed the connection.
    pub async fn next(&mut self) -> io::Result<Option<(u8, Range<usize>)>> {
        loop {
            if let Some((op, range)) = self.parse()? {
                match op {
                    OP_PING => {
                        let payload = self.buf[range].to_vec();
                        self.send(OP_PONG, &payload).await?;
                    }
                    OP_PONG => {}
                    OP_CLOSE => return Ok(None),
                    _ => return Ok(Some((op, range))),
                }
                continue;
            }
            // Need more bytes (the last payload handed out is no longer looked at): make
            // room, then read whatever is there.
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.start > 0 && self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                if self.buf.len() >= FRAME_BYTES_MAX {
                    return Err(bad("frame larger than the client accepts"));
                }
                let len = (self.buf.len() * 2).min(FRAME_BYTES_MAX);
                self.buf.resize(len, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.end += n;
        }
    }

    pub fn payload(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// One whole frame from the buffer, if there is one (consumed).
    fn parse(&mut self) -> io::Result<Option<(u8, Range<usize>)>> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, op) = (b[0] & 0x80 != 0, b[0] & 0x0f);
        if b[1] & 0x80 != 0 {
            return Err(bad("a server frame must not be masked"));
        }
        if !fin || op == 0 {
            return Err(bad("fragmented frames are not expected from this server"));
        }
        let (head, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (10, u64::from_be_bytes(n) as usize)
            }
            126 | 127 => return Ok(None),
            n => (2, n as usize),
        };
        if len > FRAME_BYTES_MAX {
            return Err(bad("frame larger than the client accepts"));
        }
        if b.len() < head + len {
            return Ok(None);
        }
        let range = self.start + head..self.start + head + len;
        self.start += head + len;
        Ok(Some((op, range)))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Standard base64 of 16 bytes (24 characters with padding).
fn base64_16(bytes: &[u8; 16]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8 | chunk[2] as u32,
            2 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8,
            _ => (chunk[0] as u32) << 16,
        };
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64_16;

    #[test]
    fn base64_of_16_bytes() {
        // RFC 6455's example key is the base64 of "the sample nonce".
        assert_eq!(base64_16(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }
}
