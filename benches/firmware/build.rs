//! Links the benchmark firmware for QEMU's Malta board (`benches/malta.ld`).
use std::env;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = format!("{dir}/../malta.ld");
    println!("cargo:rerun-if-changed={script}");
    if target.starts_with("mips") && target.ends_with("-none") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}
