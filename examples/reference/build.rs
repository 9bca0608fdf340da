//! Links the target binary with the PIC32MZW1 memory map.
use std::env;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = format!("{dir}/../../linker/pic32mzw1.ld");
    println!("cargo:rerun-if-changed={script}");
    // The client count the image is built for (`CLIENTS`).
    println!("cargo:rerun-if-env-changed=MZW1_CLIENTS");
    if target.starts_with("mips") && target.ends_with("-none") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}
