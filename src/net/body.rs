//! Response bodies on their way back: one that ends with an error when upstream goes silent for
//! too long, so a stalled stream never hangs the client forever (frames pass through untouched
//! and unbuffered), and one that hands on first the bytes already read to judge an event
//! stream's start ([`HeldThen`]).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// Wraps an upstream body; errors if no frame arrives within `idle`.
///
/// The timer is not moved on every frame (that is a timer-wheel update per frame, on the hot
/// path): each frame only notes the time, and when the timer fires early it is moved to the
/// last frame's time plus `idle` and waits again. It is made the first time the body has to
/// wait at all: a short answer that is all there when read needs none.
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    last_frame: Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> IdleTimeoutBody<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            last_frame: Instant::now(),
            timer: None,
        }
    }
}

/// The error a silent stream ends with.
#[derive(Debug, thiserror::Error)]
#[error("upstream sent nothing for {0:?}; stream ended by cao gateway (--idle-timeout-ms)")]
pub struct IdleTimeout(Duration);

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.last_frame = Instant::now();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let (last, idle) = (this.last_frame, this.idle);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + idle)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = this.last_frame + this.idle;
            if deadline <= Instant::now() {
                return Poll::Ready(Some(Err(Box::new(IdleTimeout(this.idle)))));
            }
            // A frame came since the timer was set: wait until `idle` after it.
            timer.as_mut().reset(deadline);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The bytes held back (if any), then the rest of the body's data. Trailers are not passed
/// on, nor empty data frames.
pub struct HeldThen<B> {
    held: Option<Bytes>,
    rest: B,
}

impl<B> HeldThen<B> {
    pub fn new(held: Bytes, rest: B) -> Self {
        Self {
            held: (!held.is_empty()).then_some(held),
            rest,
        }
    }
}

impl<B> Body for HeldThen<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(held) = this.held.take() {
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        loop {
            match std::task::ready!(Pin::new(&mut this.rest).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    _ => {}
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.held.as_ref().map_or(0, |h| h.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + held);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn held_bytes_come_first_then_the_rest_without_empty_frames_or_trailers() {
        let frames = vec![
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"b"))),
            Ok(Frame::data(Bytes::new())),
            Ok(Frame::data(Bytes::from_static(b"c"))),
            Ok(Frame::trailers(http::HeaderMap::new())),
        ];
        let rest = StreamBody::new(futures_util::stream::iter(frames));
        let body = HeldThen::new(Bytes::from_static(b"a"), rest);
        let mut seen = Vec::new();
        let mut body = std::pin::pin!(body);
        while let Some(f) = body.frame().await {
            let f = f.unwrap_or_else(|_| Frame::data(Bytes::from_static(b"!")));
            assert!(f.is_data(), "only data frames");
            seen.push(f.into_data().unwrap_or_default());
        }
        assert_eq!(seen, ["a", "b", "c"]);
        // Nothing held: the rest alone; an error is handed on as it came.
        let broken = StreamBody::new(futures_util::stream::iter(vec![Err::<Frame<Bytes>, _>(
            std::io::Error::other("reset"),
        )]));
        let r = HeldThen::new(Bytes::new(), broken).collect().await;
        assert!(r.is_err());
        let done = HeldThen::new(Bytes::new(), http_body_util::Empty::<Bytes>::new());
        assert!(done.is_end_stream());
    }

    #[tokio::test]
    async fn silent_stream_ends_with_error_and_live_one_passes() {
        let silent = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::io::Error>,
        >());
        let r = IdleTimeoutBody::new(silent, Duration::from_millis(20))
            .collect()
            .await;
        assert!(r.is_err());
        let live = http_body_util::Full::new(Bytes::from_static(b"data"));
        let r = IdleTimeoutBody::new(live, Duration::from_millis(20))
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        assert_eq!(&r[..], b"data");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_with_gaps_shorter_than_idle_lives_and_a_long_gap_ends_it() {
        // A frame every 15 ms against a 20 ms idle limit: more than 20 ms in all, never idle.
        let frames = futures_util::stream::unfold(0u8, |n| async move {
            if n == 4 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"x"))),
                n + 1,
            ))
        });
        let r = IdleTimeoutBody::new(StreamBody::new(Box::pin(frames)), Duration::from_millis(20))
            .collect()
            .await
            .map(|c| c.to_bytes());
        assert_eq!(r.ok().as_deref(), Some(&b"xxxx"[..]));
        // One gap of 30 ms after a frame: ended.
        let frames = futures_util::stream::unfold(0u8, |n| async move {
            tokio::time::sleep(Duration::from_millis(if n == 0 { 5 } else { 30 })).await;
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"x"))),
                n + 1,
            ))
        });
        let r = IdleTimeoutBody::new(StreamBody::new(Box::pin(frames)), Duration::from_millis(20))
            .collect()
            .await;
        assert!(r.is_err());
    }
}
