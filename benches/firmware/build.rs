//! Links the benchmark images for QEMU's Malta board (`benches/malta.ld`), or for the
//! PIC32MZW1 with the `pic32` feature (`linker/pic32mzw1.ld`).
use std::env;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let malta = format!("{dir}/../malta.ld");
    let pic32 = format!("{dir}/../../linker/pic32mzw1.ld");
    println!("cargo:rerun-if-changed={malta}");
    println!("cargo:rerun-if-changed={pic32}");
    if target.starts_with("mips") && target.ends_with("-none") {
        let script = if env::var_os("CARGO_FEATURE_PIC32").is_some() {
            pic32
        } else {
            malta
        };
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}
