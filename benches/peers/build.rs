//! Links the benchmark images for QEMU's Malta board (`benches/malta.ld`), or for the
//! PIC32MZW1 with the `pic32` feature (`linker/pic32mzw1.ld`); the peer's footprint image
//! `mzw1-peer-image` always for the PIC32MZW1.
use std::env;

const BENCH_BINS: [&str; 2] = ["mzw1-bench-peers", "mzw1-bench-peers-ws"];

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let malta = format!("{dir}/../malta.ld");
    let pic32 = format!("{dir}/../../linker/pic32mzw1.ld");
    println!("cargo:rerun-if-changed={malta}");
    println!("cargo:rerun-if-changed={pic32}");
    if target.starts_with("mips") && target.ends_with("-none") {
        let bench = if env::var_os("CARGO_FEATURE_PIC32").is_some() {
            &pic32
        } else {
            &malta
        };
        for bin in BENCH_BINS {
            println!("cargo:rustc-link-arg-bin={bin}=-T{bench}");
        }
        println!("cargo:rustc-link-arg-bin=mzw1-peer-image=-T{pic32}");
    }
}
