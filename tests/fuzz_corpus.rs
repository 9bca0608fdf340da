//! The fuzz targets' corpora, replayed as ordinary tests: every file under
//! `fuzz/corpus/<target>/` and every reproducer under `fuzz/artifacts-found/<target>/`
//! goes once through the same harness the fuzz target runs (`fuzz/src/`, included here
//! by path), without sanitizers or the nightly toolchain.
//!
//! `MZW1_WRITE_CORPUS=1 cargo test --test fuzz_corpus` (re)writes the seed corpus from
//! `fuzz/src/seeds.rs` first.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use harness::seeds::{TARGETS, harness, seeds};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir` (none if it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn write_seeds_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("MZW1_WRITE_CORPUS").is_none_or(|v| v != "1") {
        return;
    }
    ONCE.call_once(write_seeds);
}

fn write_seeds() {
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in seeds(target) {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}

fn replay(target: &str) {
    write_seeds_if_asked();
    let run = harness(target);
    let mut n = 0;
    for sub in ["corpus", "artifacts-found"] {
        for path in files(&fuzz_dir().join(sub).join(target)) {
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{} fails", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn seeds_are_the_committed_corpus() {
    write_seeds_if_asked();
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        for (name, data) in seeds(target) {
            let on_disk = std::fs::read(dir.join(&name)).unwrap_or_default();
            assert!(
                on_disk == data,
                "fuzz/corpus/{target}/{name} is not what fuzz/src/seeds.rs makes: \
                 MZW1_WRITE_CORPUS=1 cargo test --test fuzz_corpus"
            );
        }
    }
}

#[test]
fn handshake_corpus() {
    replay("handshake");
}

#[test]
fn frame_receiver_corpus() {
    replay("frame_receiver");
}

#[test]
fn net_stack_corpus() {
    replay("net_stack");
}
