//! smoltcp's `Device` over the mzw1-wss MAC driver, shared by the peers.

use mzw1_wss::mac::{MAX_TX_FRAME, Mac, RxFrame, TxRing};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SmolInstant;

/// smoltcp's `Device` over the mzw1-wss MAC: received frames are read in place in the
/// RX DMA buffers, frames to send are written straight into TX DMA buffers.
pub struct MacDevice {
    /// The driver.
    pub mac: Mac<'static>,
    /// Where a frame goes when no TX buffer is free (then counted, and lost).
    scratch: [u8; MAX_TX_FRAME],
    /// Frames lost for want of a TX buffer.
    pub dropped: u32,
}

impl MacDevice {
    /// smoltcp's device over `mac`.
    pub fn new(mac: Mac<'static>) -> MacDevice {
        MacDevice {
            mac,
            scratch: [0; MAX_TX_FRAME],
            dropped: 0,
        }
    }
}

/// A received frame, lent in place.
pub struct Rx<'a> {
    frame: RxFrame<'a, 'static>,
}

/// Room for a frame to send, in a TX DMA buffer.
pub struct Tx<'a> {
    tx: &'a mut TxRing<'static>,
    scratch: &'a mut [u8; MAX_TX_FRAME],
    dropped: &'a mut u32,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        f(self.frame.data())
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let tx = self.tx;
        let buf = match tx.alloc() {
            Some(b) => Some(b),
            None => {
                tx.reap();
                tx.alloc()
            }
        };
        if let Some(b) = buf {
            if let Some(area) = tx.buffer(&b).and_then(|a| a.get_mut(..len)) {
                let r = f(area);
                if tx.send(b, len).is_err() {
                    *self.dropped += 1;
                }
                return r;
            }
            tx.release(b);
        }
        *self.dropped += 1;
        let mut empty = [];
        f(self.scratch.get_mut(..len).unwrap_or(&mut empty))
    }
}

impl phy::Device for MacDevice {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: SmolInstant) -> Option<(Rx<'_>, Tx<'_>)> {
        let MacDevice {
            mac,
            scratch,
            dropped,
        } = self;
        let Mac { rx, tx, .. } = mac;
        let frame = rx.receive()?;
        Some((
            Rx { frame },
            Tx {
                tx,
                scratch,
                dropped,
            },
        ))
    }

    fn transmit(&mut self, _: SmolInstant) -> Option<Tx<'_>> {
        let MacDevice {
            mac,
            scratch,
            dropped,
        } = self;
        Some(Tx {
            tx: &mut mac.tx,
            scratch,
            dropped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = MAX_TX_FRAME;
        c
    }
}
