//! The peer as a PIC32MZW1 firmware image, for its footprint only (`cargo xtask size`
//! prints `peer_flash_bytes` and `peer_ram_bytes`; nothing runs it): the same WebSocket
//! echo as `mzw1-bench-peers-ws` ([`mzw1_bench_peers::ws_server`]: smoltcp 0.14 and
//! embedded-websocket 0.9.5 on the mzw1-wss MAC driver), brought up as the reference
//! firmware is (`examples/reference/src/main.rs`): the PIC32 memory map
//! (`linker/pic32mzw1.ld`) and start-up (`mzw1_wss::rt`), descriptors and packet buffers
//! in uncached `.dma`, the Ethernet interrupt doing the work and the superloop the timers.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::cell::RefCell;
    use core::mem::MaybeUninit;
    use critical_section::Mutex;
    use mzw1_bench_peers::ws_server::{Buffers, SOCKETS_EMPTY, Sockets, WsServer};
    use mzw1_wss::mac::{DmaMemory, DmaWindow, IrqShared, Mac, MacConfig, Peripherals};
    use mzw1_wss::rt::{self, CoreTimer};
    use mzw1_wss::time::Instant;

    /// The reference app's default address.
    const IP: [u8; 4] = [192, 168, 7, 2];

    /// Descriptors and packet buffers, linked into uncached RAM (`.dma`).
    #[unsafe(link_section = ".dma")]
    static mut DMA: DmaMemory<8, 8, 8> = DmaMemory::new();
    static IRQ: IrqShared = IrqShared::new();
    static mut SOCKETS: Sockets = SOCKETS_EMPTY;
    static mut BUFFERS: Buffers = Buffers::new();
    /// The server's storage (uninitialised: `.bss`, no flash copy).
    static mut SERVER_STORAGE: MaybeUninit<WsServer> = MaybeUninit::uninit();
    static SERVER: Mutex<RefCell<Option<&'static mut WsServer>>> = Mutex::new(RefCell::new(None));
    static TIMER: Mutex<RefCell<Option<CoreTimer>>> = Mutex::new(RefCell::new(None));

    fn with_server(f: impl FnOnce(&mut WsServer, Instant)) {
        critical_section::with(|cs| {
            let (Ok(mut timer), Ok(mut server)) = (
                TIMER.borrow(cs).try_borrow_mut(),
                SERVER.borrow(cs).try_borrow_mut(),
            ) else {
                return;
            };
            let now = timer.get_or_insert_with(CoreTimer::new).now();
            if let Some(s) = server.as_mut() {
                f(s, now);
            }
        })
    }

    #[unsafe(no_mangle)]
    extern "C" fn mzw1_main() -> ! {
        let config = MacConfig::default();
        // SAFETY: the one place that takes the peripherals, the DMA region and the
        // server's sockets and buffers.
        let (p, dma, sockets, buffers) = unsafe {
            (
                Peripherals::pic32mzw1(),
                &mut *core::ptr::addr_of_mut!(DMA),
                &mut *core::ptr::addr_of_mut!(SOCKETS),
                &mut *core::ptr::addr_of_mut!(BUFFERS),
            )
        };
        let mut timer = CoreTimer::new();
        let now = timer.now();
        let mac = Mac::new(p, dma, DmaWindow::PIC32_KSEG1, &IRQ, config, now);
        let server = WsServer::new(mac, config.mac_address, IP, sockets, buffers, now);
        // SAFETY: the one place that touches the storage, once, before interrupts are on.
        let server: &'static mut WsServer =
            unsafe { (*core::ptr::addr_of_mut!(SERVER_STORAGE)).write(server) };
        critical_section::with(|cs| {
            if let (Ok(mut t), Ok(mut s)) = (
                TIMER.borrow(cs).try_borrow_mut(),
                SERVER.borrow(cs).try_borrow_mut(),
            ) {
                *t = Some(timer);
                *s = Some(server);
            }
        });
        // SAFETY: the interrupt handler's state (SERVER) is ready.
        unsafe { rt::enable_interrupts() };
        loop {
            with_server(|s, now| {
                s.dev.mac.poll(now);
                s.service(now);
            });
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn mzw1_eth_interrupt() {
        with_server(|s, now| {
            s.dev.mac.on_interrupt();
            s.service(now);
        });
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "mzw1-peer-image is the peer's PIC32MZW1 image, for its footprint \
         (`cargo xtask size` builds and measures it)."
    );
}
