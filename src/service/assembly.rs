//! An optional per-client assembly buffer: whole messages up to `A` bytes for handlers
//! that would rather not deal with chunks. A longer message fails the client's
//! connection with 1009 (message too big, RFC 6455 §7.4.1) and the rest of it is
//! discarded.
//!
//! The buffers cost `C × A` bytes of RAM, set at compile time; applications that stream
//! (the reference echo) do not need them.

use super::{ClientId, Ctx, DataInfo, Event, Handler, Page};
use crate::ws::frame::{MessageKind, code};

/// What [`Assembly::push`] made of a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled<'b> {
    /// The message goes on.
    Partial,
    /// The whole message.
    Whole(MessageKind, &'b [u8]),
    /// The message is longer than the buffer: the connection is being failed with 1009.
    TooBig,
}

/// One buffer of `A` bytes per client.
pub struct Assembly<const A: usize, const C: usize> {
    buffers: [heapless::Vec<u8, A>; C],
    /// A client's current message overflowed; its remaining chunks are discarded.
    overflowed: [bool; C],
    /// Messages refused with 1009.
    pub too_big: u32,
}

impl<const A: usize, const C: usize> Default for Assembly<A, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const A: usize, const C: usize> Assembly<A, C> {
    /// Empty buffers.
    pub const fn new() -> Self {
        Assembly {
            buffers: [const { heapless::Vec::new() }; C],
            overflowed: [false; C],
            too_big: 0,
        }
    }

    /// Adds a chunk of `client`'s message (the whole chunk is always taken). A message
    /// that outgrows the buffer is failed with 1009 through `ctx`.
    pub fn push(
        &mut self,
        ctx: &mut Ctx<'_, '_, '_>,
        client: ClientId,
        data: &[u8],
        info: DataInfo,
    ) -> Assembled<'_> {
        let i = client.index();
        let (Some(buf), Some(overflowed)) = (self.buffers.get_mut(i), self.overflowed.get_mut(i))
        else {
            return Assembled::TooBig;
        };
        if info.first {
            buf.clear();
            *overflowed = false;
        }
        if *overflowed {
            return Assembled::TooBig;
        }
        if buf.extend_from_slice(data).is_err() {
            *overflowed = true;
            buf.clear();
            self.too_big += 1;
            let _ = ctx.close_connection(client, code::TOO_BIG, b"");
            return Assembled::TooBig;
        }
        if info.last {
            return Assembled::Whole(info.kind, buf.as_slice());
        }
        Assembled::Partial
    }

    /// Forgets `client`'s partial message (when it goes away).
    pub fn reset(&mut self, client: ClientId) {
        if let Some(b) = self.buffers.get_mut(client.index()) {
            b.clear();
        }
    }
}

/// A handler of whole messages.
pub trait MessageHandler {
    /// A complete message of at most `A` bytes.
    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, '_, '_>,
        client: ClientId,
        kind: MessageKind,
        data: &[u8],
    );

    /// Any other event (as [`Handler::on_event`]).
    fn on_event(&mut self, ctx: &mut Ctx<'_, '_, '_>, client: ClientId, event: Event<'_>) {
        let _ = (ctx, client, event);
    }

    /// As [`Handler::accept`].
    fn accept(&mut self, path: &[u8]) -> bool {
        let _ = path;
        true
    }

    /// As [`Handler::page`].
    fn page(&mut self, path: &[u8]) -> Option<&'static Page> {
        let _ = path;
        None
    }
}

/// A [`Handler`] that assembles whole messages for a [`MessageHandler`].
pub struct Whole<M, const A: usize, const C: usize> {
    /// The application.
    pub inner: M,
    /// The buffers.
    pub assembly: Assembly<A, C>,
}

impl<M, const A: usize, const C: usize> Whole<M, A, C> {
    /// `inner` with empty buffers.
    pub const fn new(inner: M) -> Self {
        Whole {
            inner,
            assembly: Assembly::new(),
        }
    }
}

impl<M: MessageHandler, const A: usize, const C: usize> Handler for Whole<M, A, C> {
    fn on_data(
        &mut self,
        ctx: &mut Ctx<'_, '_, '_>,
        client: ClientId,
        data: &mut [u8],
        info: DataInfo,
    ) -> Option<usize> {
        if let Assembled::Whole(kind, message) = self.assembly.push(ctx, client, data, info) {
            self.inner.on_message(ctx, client, kind, message);
        }
        Some(data.len())
    }

    fn on_event(&mut self, ctx: &mut Ctx<'_, '_, '_>, client: ClientId, event: Event<'_>) {
        if event == Event::Closed {
            self.assembly.reset(client);
        }
        self.inner.on_event(ctx, client, event);
    }

    fn accept(&mut self, path: &[u8]) -> bool {
        self.inner.accept(path)
    }

    fn page(&mut self, path: &[u8]) -> Option<&'static Page> {
        self.inner.page(path)
    }
}
