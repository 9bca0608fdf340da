//! The reference firmware image for the PIC32MZW1.
//!
//! The Ethernet interrupt does the work as frames arrive; the superloop runs the timers.
//! Both reach the app through one `critical_section::Mutex`, so they never overlap.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::cell::RefCell;
    use core::mem::MaybeUninit;
    use critical_section::Mutex;
    use mzw1_reference::{App, Config, Dma};
    use mzw1_wss::mac::{DmaWindow, IrqShared, Peripherals};
    use mzw1_wss::rt::{self, CoreTimer};
    use mzw1_wss::time::Instant;

    /// Descriptors and packet buffers, linked into uncached RAM (`.dma`).
    #[unsafe(link_section = ".dma")]
    static mut DMA: Dma = Dma::new();
    static IRQ: IrqShared = IrqShared::new();
    /// The app's storage: uninitialised, so it lands in `.bss` and costs no flash (an
    /// `Option<App>` initialised to `None` would be copied from flash at start-up).
    static mut APP_STORAGE: MaybeUninit<App> = MaybeUninit::uninit();
    /// The app and its clock, once both are up. One cell for both: each pass of the
    /// superloop and each interrupt takes one borrow, not two.
    static RUNNING: Mutex<RefCell<Option<Running>>> = Mutex::new(RefCell::new(None));

    /// What the superloop and the interrupt run on.
    struct Running {
        app: &'static mut App,
        timer: CoreTimer,
    }

    /// Runs `f` on the app, if it is up. The interrupt and the superloop take it inside a
    /// critical section, so the borrow never fails; if it did, the call is skipped rather
    /// than panicking.
    fn with_app(f: impl FnOnce(&mut App, Instant)) {
        critical_section::with(|cs| {
            let Ok(mut running) = RUNNING.borrow(cs).try_borrow_mut() else {
                return;
            };
            if let Some(Running { app, timer }) = running.as_mut() {
                let now = timer.now();
                f(app, now);
            }
        })
    }

    #[unsafe(no_mangle)]
    extern "C" fn mzw1_main() -> ! {
        // SAFETY: the one place that takes the peripherals and the DMA region.
        let (p, dma) = unsafe { (Peripherals::pic32mzw1(), &mut *core::ptr::addr_of_mut!(DMA)) };
        let mut timer = CoreTimer::new();
        let now = timer.now();
        let app = App::new(
            p,
            dma,
            DmaWindow::PIC32_KSEG1,
            &IRQ,
            probe(Config::default()),
            now,
        );
        // SAFETY: the one place that touches the storage, once, before interrupts are on.
        let app: &'static mut App = unsafe { (*core::ptr::addr_of_mut!(APP_STORAGE)).write(app) };
        critical_section::with(|cs| {
            if let Ok(mut running) = RUNNING.borrow(cs).try_borrow_mut() {
                *running = Some(Running { app, timer });
            }
        });
        // SAFETY: the interrupt handler's state (RUNNING) is ready.
        unsafe { rt::enable_interrupts() };
        loop {
            with_app(|app, now| app.poll(now));
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn mzw1_eth_interrupt() {
        with_app(|app, now| app.on_interrupt(now));
    }

    /// With `--features panic-probe`, a bounds-checked index on a value the compiler
    /// cannot know, so a panic path is linked (for the `xtask size` self-test).
    #[cfg(feature = "panic-probe")]
    fn probe(c: Config) -> Config {
        let table = [1u8, 2, 3];
        let i = unsafe { core::ptr::read_volatile(&c.mac.mac_address[5]) } as usize;
        let mut c = c;
        c.mac.mac_address[0] = table[i];
        c
    }

    #[cfg(not(feature = "panic-probe"))]
    fn probe(c: Config) -> Config {
        c
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "mzw1-reference is firmware for the PIC32MZW1 (build it with `cargo xtask size`).\n\
         To run the same app on the simulated board: cargo run --release -p mzw1-sim"
    );
}
