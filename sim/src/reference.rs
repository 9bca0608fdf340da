//! The reference firmware (`mzw1-reference`) on the simulated board.

use crate::board::{Board, Firmware};
use mzw1_reference::{App, Config};
use mzw1_wss::mac::IrqShared;
use mzw1_wss::time::Instant;

/// The reference app as board firmware.
pub struct Reference(pub App);

impl Reference {
    /// Boots the app on `board` with `config`.
    pub fn boot(board: &mut Board, config: Config) -> Reference {
        let (dma, window) = board.alloc_dma();
        let shared: &'static IrqShared = Box::leak(Box::new(IrqShared::new()));
        Reference(App::new(
            board.peripherals(),
            dma,
            window,
            shared,
            config,
            board.now(),
        ))
    }
}

impl Firmware for Reference {
    fn on_interrupt(&mut self, now: Instant) {
        self.0.on_interrupt(now);
    }

    fn poll(&mut self, now: Instant) {
        self.0.poll(now);
    }
}
