//! The reference firmware app, the same code on the PIC32MZW1 (`src/main.rs`) and on the
//! simulated board (`mzw1-sim`).
//!
//! For now it brings the Ethernet MAC up and consumes what arrives; the network stack and
//! the WebSocket service build on it.
#![no_std]

use mzw1_wss::mac::{DmaMemory, DmaWindow, IrqShared, Mac, MacConfig, MacEvents, Peripherals};
use mzw1_wss::time::Instant;

/// RX descriptors.
pub const RXD: usize = 8;
/// RX buffers (descriptors plus spares the stack may keep).
pub const RXB: usize = 12;
/// TX buffers and descriptors.
pub const TXB: usize = 8;

/// The DMA region the app needs.
pub type Dma = DmaMemory<RXD, RXB, TXB>;

/// The app's configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// The MAC driver's configuration.
    pub mac: MacConfig,
}

/// The reference app.
pub struct App {
    mac: Mac<'static>,
    link_events: MacEvents,
    frames_seen: u32,
}

impl App {
    /// Brings the hardware up.
    pub fn new(
        p: Peripherals<'static>,
        dma: &'static mut Dma,
        window: DmaWindow,
        shared: &'static IrqShared,
        config: Config,
        now: Instant,
    ) -> App {
        let mac = Mac::new(p, dma, window, shared, config.mac, now);
        App {
            mac,
            link_events: MacEvents::empty(),
            frames_seen: 0,
        }
    }

    /// Vector 165: acknowledge, then handle what arrived right away.
    pub fn on_interrupt(&mut self, now: Instant) {
        self.mac.on_interrupt();
        self.process(now);
    }

    /// One pass of the superloop: link, timers, and anything the interrupt left.
    pub fn poll(&mut self, now: Instant) {
        self.link_events |= self.mac.poll(now);
        self.process(now);
    }

    fn process(&mut self, _now: Instant) {
        while let Some(frame) = self.mac.rx.receive() {
            self.frames_seen = self.frames_seen.wrapping_add(1);
            drop(frame);
        }
        self.mac.tx.reap();
    }

    /// The MAC driver (for status displays and tests).
    pub fn mac(&self) -> &Mac<'static> {
        &self.mac
    }

    /// Frames received so far.
    pub fn frames_seen(&self) -> u32 {
        self.frames_seen
    }
}
