//! The WebSocket wire shared by the gateway (both sides), the mock upstream, the tests and the
//! bench: yawc's framing (RFC 6455) with permessage-deflate (RFC 7692) on a hyper-upgraded
//! connection, after a handshake cao does itself ([`crate::net::ws::server`] as server,
//! [`crate::net::ws::client`] as client) and negotiated by [`crate::policy::ws_deflate`].
//!
//! Each hop negotiates on its own. What a side asks beyond its peer's requests is
//! [`DOWNSTREAM`] (the gateway as Codex's server: no context takeover either way, so a socket
//! holds no deflate state between messages; the state is borrowed from one [`pool`] per
//! message) and, as the backend's client, [`UPSTREAM`] (context kept: a delta compresses
//! against the turns before it) for the first [`CONTEXT_SOCKETS`] sockets open at once and
//! [`UPSTREAM_POOLED`] beyond them ([`upstream_wants`]), so that the deflate state of a
//! thousand sessions stays within a few megabytes.
//!
//! Every socket counts the bytes it read off the wire ([`Socket::wire_bytes_in`]): the
//! compressed size, frame headers included.

use std::io;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use yawc::close::CloseCode;
use yawc::{DeflatePool, Frame, OpCode, Options, Role};

use crate::policy::ws_deflate::{self, Params, Wants};

/// Largest message accepted from either side (Codex's first frame of a long session can be
/// several MB; the backend advertises its own limit in `x-codex-websocket-max-message-bytes`).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Read buffer of each socket (many sockets are held at once; a big frame grows it while it
/// is read, and it shrinks back after).
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Write buffer of each socket (each frame is flushed at once).
const WRITE_BUFFER_BYTES: usize = 1024;

/// Messages shorter than this go uncompressed (RFC 7692 lets each message choose): a
/// keepalive or a short event would only grow.
const COMPRESSION_THRESHOLD: usize = 64;

/// The gateway as Codex's server: the loopback hop, where compression saves nothing and a
/// socket's own deflate state (about 370 KiB for both directions) would be most of its memory.
pub const DOWNSTREAM: Wants = Wants {
    server_no_context_takeover: true,
    client_no_context_takeover: true,
};

/// The gateway as the backend's client: what it sends keeps its context (a delta compresses
/// against the turns before it on the same socket, as Codex's own socket does).
pub const UPSTREAM: Wants = Wants {
    server_no_context_takeover: false,
    client_no_context_takeover: false,
};

/// The gateway as the backend's client once [`CONTEXT_SOCKETS`] sockets keep context: each
/// message compressed alone both ways (nothing kept per socket).
pub const UPSTREAM_POOLED: Wants = Wants {
    server_no_context_takeover: true,
    client_no_context_takeover: true,
};

/// Upstream sockets that may keep their deflate context at once: each holds a compressor and
/// an inflater for its life (about 280 KiB measured; 8 of them about 2.2 MB).
pub const CONTEXT_SOCKETS: usize = 8;

/// Upstream sockets holding a [`ContextSlot`] now.
static WITH_CONTEXT: AtomicUsize = AtomicUsize::new(0);

/// One of the [`CONTEXT_SOCKETS`], given back when dropped (with its socket).
#[derive(Debug)]
pub struct ContextSlot(());

impl Drop for ContextSlot {
    fn drop(&mut self) {
        WITH_CONTEXT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the next upstream socket offers: [`UPSTREAM`] with a slot while fewer than
/// [`CONTEXT_SOCKETS`] keep context, else [`UPSTREAM_POOLED`].
pub fn upstream_wants() -> (Wants, Option<ContextSlot>) {
    let taken = WITH_CONTEXT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        ws_deflate::keeps_context(n, CONTEXT_SOCKETS).then_some(n + 1)
    });
    match taken {
        Ok(_) => (UPSTREAM, Some(ContextSlot(()))),
        Err(_) => (UPSTREAM_POOLED, None),
    }
}

/// Deflate state of the directions without context takeover, between their messages (a few
/// per worker thread are enough: only messages being compressed at the same moment take one).
pub fn pool() -> DeflatePool {
    static POOL: LazyLock<DeflatePool> = LazyLock::new(|| DeflatePool::new(4));
    POOL.clone()
}

/// A text frame's payload, known to be UTF-8 (cheap to clone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(Bytes);

impl Text {
    /// `None` when `b` is not UTF-8.
    pub fn new(b: Bytes) -> Option<Self> {
        std::str::from_utf8(&b).is_ok().then_some(Self(b))
    }

    pub fn as_str(&self) -> &str {
        // Checked in `new` (and every other constructor starts from a `str`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

/// What one read brought.
#[derive(Debug)]
pub enum Msg {
    Text(Text),
    Binary(Bytes),
    /// A ping (already answered) or a pong.
    Control,
}

/// A byte stream that counts what was read from it.
pub struct Counted<S> {
    inner: S,
    read: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One open WebSocket (either role).
pub struct Socket {
    ws: yawc::WebSocket<Counted<TokioIo<Upgraded>>>,
    read: Arc<AtomicU64>,
    deflate: Option<Params>,
    _slot: Option<ContextSlot>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("deflate", &self.deflate)
            .finish_non_exhaustive()
    }
}

fn options(deflate: bool) -> Options {
    let o = Options::default()
        .with_max_payload_read(MAX_MESSAGE_BYTES)
        .with_max_read_buffer(MAX_MESSAGE_BYTES)
        .with_read_buffer_capacity(READ_BUFFER_BYTES)
        .with_write_buffer_capacity(WRITE_BUFFER_BYTES)
        .with_no_delay();
    if !deflate {
        return o.without_compression();
    }
    o.with_compression_level(yawc::CompressionLevel::default())
        .with_compression_threshold(COMPRESSION_THRESHOLD)
        .with_deflate_pool(pool())
}

impl Socket {
    /// Frame an upgraded connection as `role`, with the permessage-deflate both sides agreed
    /// on (`None`: uncompressed).
    pub fn new(upgraded: Upgraded, role: Role, deflate: Option<Params>) -> io::Result<Self> {
        let read = Arc::new(AtomicU64::new(0));
        let io = Counted {
            inner: TokioIo::new(upgraded),
            read: read.clone(),
        };
        let agreed = deflate.as_ref().map(ws_deflate::render);
        let ws = yawc::WebSocket::from_stream_with_extensions(
            io,
            role,
            agreed.as_deref(),
            options(deflate.is_some()),
        )
        .map_err(io::Error::other)?;
        Ok(Self {
            ws,
            read,
            deflate,
            _slot: None,
        })
    }

    /// Hold `slot` for as long as this socket lives, if it keeps a deflate context for what it
    /// sends or receives (a socket that ended up without one gives it back at once).
    pub fn keep(&mut self, slot: Option<ContextSlot>) {
        if self
            .deflate
            .is_some_and(|p| !p.client_no_context_takeover || !p.server_no_context_takeover)
        {
            self._slot = slot;
        }
    }

    /// The permessage-deflate parameters in force (`None`: not negotiated).
    pub fn deflate(&self) -> Option<&Params> {
        self.deflate.as_ref()
    }

    /// Bytes read off the wire so far (compressed, frame headers included).
    pub fn wire_bytes_in(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The next message. `None`: the socket closed (a close frame, an error, a text frame
    /// that is not UTF-8, the end). Pings are answered by the framing. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Msg> {
        let frame = self.ws.next().await?;
        match frame.opcode() {
            OpCode::Text => Text::new(frame.into_payload()).map(Msg::Text),
            OpCode::Binary => Some(Msg::Binary(frame.into_payload())),
            OpCode::Close => None,
            _ => Some(Msg::Control),
        }
    }

    /// Send a text frame. `false`: the socket is gone.
    pub async fn send_text(&mut self, t: impl Into<Text>) -> bool {
        self.ws
            .send(Frame::text(t.into().into_bytes()))
            .await
            .is_ok()
    }

    /// Send a binary frame. `false`: the socket is gone.
    pub async fn send_binary(&mut self, b: Bytes) -> bool {
        self.ws.send(Frame::binary(b)).await.is_ok()
    }

    /// Send a close frame and shut the connection down.
    pub async fn close(&mut self) {
        let _ = self.ws.send(Frame::close(CloseCode::Normal, b"")).await;
        let _ = self.ws.close().await;
    }
}
