//! Test benches that run everything on one wire in **virtual time**: the board with its
//! firmware against a peer ([`Testbed`]), or any two stations against each other
//! ([`Link`]).
//!
//! Time does not tick in fixed steps: each step jumps straight to the next instant at
//! which something can happen (the next frame arrival on the wire, the next timer a
//! station asked for, or the firmware's next superloop pass), so megabytes move in
//! seconds of real time whatever the virtual time they take.
//!
//! A station driven by the outside world (a TAP device, where the Linux kernel is the
//! peer) makes the bench follow the wall clock instead: virtual time is then real time,
//! and the bench waits on the station for input between events.

use crate::board::{Board, Firmware};
use crate::peer::PeerHost;
use crate::wire::{End, Wire};
use std::time::{Duration, Instant as WallClock};

/// Something attached to one end of the [`Wire`] that moves frames (with their FCS) in
/// and out of it: a [`PeerHost`], a [`crate::tap::TapPort`], a hand-written responder.
pub trait Station {
    /// The end of the wire it sits on.
    fn end(&self) -> End;

    /// Takes the frames due at its end by `now_ns`, does its work at `now_ns`, and sends
    /// what it has to send.
    fn poll(&mut self, now_ns: u64, wire: &mut Wire);

    /// The time at which it next needs [`Station::poll`] without any frame arriving (a
    /// timer), if any. A time at or before `now_ns` means "as soon as possible".
    fn poll_at(&mut self, now_ns: u64) -> Option<u64>;

    /// Whether the outside world drives it (a kernel behind a TAP device), so the bench
    /// must follow the wall clock rather than jump through virtual time.
    fn realtime(&self) -> bool {
        false
    }

    /// Blocks for at most `timeout` or until outside input may be ready. Only called on
    /// real-time stations.
    fn wait(&mut self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
}

/// Chooses the instant of each step: the next event in virtual time, or, with a
/// real-time station, the wall clock (waiting on the station until the event is due).
#[derive(Debug)]
struct Pacer {
    realtime: bool,
    /// Wall-clock instant and bench time at the first real-time step.
    origin: Option<(WallClock, u64)>,
}

impl Pacer {
    fn new(realtime: bool) -> Pacer {
        Pacer {
            realtime,
            origin: None,
        }
    }

    /// The time of the next step, strictly after `now` so every step makes progress.
    /// `next` is the earliest event; `wait` blocks on the real-time station.
    fn advance(&mut self, now: u64, next: u64, wait: &mut dyn FnMut(Duration)) -> u64 {
        let next = next.max(now + 1);
        if !self.realtime {
            return next;
        }
        let (origin, base) = *self.origin.get_or_insert((WallClock::now(), now));
        let wall = || base + origin.elapsed().as_nanos() as u64;
        let w = wall();
        if w < next {
            wait(Duration::from_nanos(next - w));
        }
        wall().max(now + 1)
    }
}

/// The earliest of a set of optional instants.
fn earliest(times: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    times.into_iter().flatten().min()
}

/// The board running firmware `F`, a wire, and a peer station on the wire's
/// [`End::Peer`] (by default a smoltcp [`PeerHost`]).
///
/// Each [`Testbed::step`] moves board time to the next interesting instant: the next
/// frame arrival, the peer's next timer, or the firmware's next superloop pass (at most
/// [`Testbed::tick_ns`] after the previous step). At that instant it delivers the frames
/// due at the board, runs the firmware (interrupts, superloop, interrupts), puts what
/// the controller transmitted on the wire, and polls the peer.
pub struct Testbed<F: Firmware, P: Station = PeerHost> {
    /// The simulated board.
    pub board: Board,
    /// The firmware running on it.
    pub fw: F,
    /// The wire between the board and the peer.
    pub wire: Wire,
    /// The peer.
    pub peer: P,
    /// Longest interval between two superloop passes, nanoseconds (default 1 ms: the
    /// firmware's clock has millisecond resolution, so its timers need nothing finer).
    pub tick_ns: u64,
    steps: u64,
    pacer: Pacer,
}

impl<F: Firmware, P: Station> Testbed<F, P> {
    /// A bench from a board, the firmware already built on it, a wire and a peer. Virtual
    /// time starts at the board's current time.
    ///
    /// # Panics
    /// If the peer does not sit on [`End::Peer`].
    pub fn new(board: Board, fw: F, wire: Wire, peer: P) -> Testbed<F, P> {
        assert_eq!(
            peer.end(),
            End::Peer,
            "the testbed's peer must sit on End::Peer (the board owns End::Board)"
        );
        let realtime = peer.realtime();
        Testbed {
            board,
            fw,
            wire,
            peer,
            tick_ns: 1_000_000,
            steps: 0,
            pacer: Pacer::new(realtime),
        }
    }

    /// Board time, nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.board.now_ns()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One step: to the next interesting instant, at most `tick_ns` ahead.
    pub fn step(&mut self) {
        let now = self.now_ns();
        self.step_before(now + self.tick_ns.max(1));
    }

    /// One step, to the next event but no later than `deadline`.
    fn step_before(&mut self, deadline: u64) {
        let now = self.now_ns();
        let next = earliest([
            Some(deadline),
            Some(now + self.tick_ns.max(1)),
            self.wire.next_arrival(),
            self.peer.poll_at(now),
        ])
        .unwrap_or(deadline);
        let peer = &mut self.peer;
        let t = self.pacer.advance(now, next, &mut |d| peer.wait(d));
        self.steps += 1;
        self.board.set_now_ns(t);
        while let Some(frame) = self.wire.receive(End::Board, t) {
            self.board.receive(&frame);
            // The CPU takes vector 165 as the frame lands (when the firmware enabled it),
            // so a burst is handled frame by frame, as on the chip, rather than piling up
            // in the RX ring until the next pass of the superloop.
            self.board.service_interrupts(&mut self.fw);
        }
        self.board.step(&mut self.fw);
        for frame in self.board.take_transmitted() {
            self.wire.send(End::Board, t, frame);
        }
        self.peer.poll(t, &mut self.wire);
    }

    /// Steps until `cond` holds (checked before each step) or `limit_ns` of board time
    /// has passed from now; returns whether `cond` held.
    pub fn run_until(&mut self, mut cond: impl FnMut(&mut Self) -> bool, limit_ns: u64) -> bool {
        let deadline = self.now_ns().saturating_add(limit_ns);
        loop {
            if cond(self) {
                return true;
            }
            if self.now_ns() >= deadline {
                return false;
            }
            self.step_before(deadline);
        }
    }

    /// Runs for `ns` of board time.
    pub fn run_for(&mut self, ns: u64) {
        self.run_until(|_| false, ns);
    }
}

/// Two stations on the two ends of one wire, with no board: for testing the harness
/// itself, or two peers against each other.
///
/// Each [`Link::step`] jumps to the next frame arrival or station timer and polls both
/// stations there; when nothing is pending at all, time jumps to the deadline.
pub struct Link<A: Station, B: Station> {
    /// The station on one end.
    pub a: A,
    /// The station on the other end.
    pub b: B,
    /// The wire between them.
    pub wire: Wire,
    /// How far an idle [`Link::step`] (nothing pending) moves time, nanoseconds.
    pub idle_ns: u64,
    now_ns: u64,
    steps: u64,
    pacer: Pacer,
}

impl<A: Station, B: Station> Link<A, B> {
    /// Two stations and the wire between them, at time 0.
    ///
    /// # Panics
    /// If both stations sit on the same end.
    pub fn new(a: A, b: B, wire: Wire) -> Link<A, B> {
        assert_ne!(
            a.end(),
            b.end(),
            "the two stations of a link must sit on different ends of the wire"
        );
        let realtime = a.realtime() || b.realtime();
        Link {
            a,
            b,
            wire,
            idle_ns: 1_000_000,
            now_ns: 0,
            steps: 0,
            pacer: Pacer::new(realtime),
        }
    }

    /// Link time, nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One step: to the next event, or `idle_ns` ahead if nothing is pending.
    pub fn step(&mut self) {
        let deadline = self.now_ns + self.idle_ns.max(1);
        self.step_before(deadline);
    }

    fn step_before(&mut self, deadline: u64) {
        let now = self.now_ns;
        // Real-time stations have no timers we know of, so the wait is bounded to keep
        // polling the virtual ones and the wire regularly.
        let cap = if self.pacer.realtime {
            now + 10_000_000
        } else {
            deadline
        };
        let next = earliest([
            Some(deadline.min(cap)),
            self.wire.next_arrival(),
            self.a.poll_at(now),
            self.b.poll_at(now),
        ])
        .unwrap_or(deadline);
        let (a, b) = (&mut self.a, &mut self.b);
        let t = self.pacer.advance(now, next, &mut |d| {
            if a.realtime() {
                a.wait(d)
            } else if b.realtime() {
                b.wait(d)
            } else {
                std::thread::sleep(d)
            }
        });
        self.now_ns = t;
        self.steps += 1;
        self.a.poll(t, &mut self.wire);
        self.b.poll(t, &mut self.wire);
    }

    /// Steps until `cond` holds (checked before each step) or `limit_ns` has passed from
    /// now; returns whether `cond` held.
    pub fn run_until(&mut self, mut cond: impl FnMut(&mut Self) -> bool, limit_ns: u64) -> bool {
        let deadline = self.now_ns.saturating_add(limit_ns);
        loop {
            if cond(self) {
                return true;
            }
            if self.now_ns >= deadline {
                return false;
            }
            self.step_before(deadline);
        }
    }

    /// Runs for `ns`.
    pub fn run_for(&mut self, ns: u64) {
        self.run_until(|_| false, ns);
    }
}
