//! How the muxvisor binary is linked on Linux; each choice was measured
//! (BENCHMARKS.md, "Release profile" and "Start-up without std's runtime").
//!
//! **Position-dependent.** Every running peer keeps two muxvisor processes
//! (its canary and its pane-log copier). A position-independent executable
//! must patch about 39,000 pointers in its 1.2 MB of relocated read-only data
//! at every start, which makes those pages private to each process: about
//! 1.2 MB of private memory per muxvisor process, 2.4 MB per peer, and a third
//! of `--version`'s CPU time. Linked without PIE the linker resolves them
//! once, the pages stay shared with the file, and a peer's helpers cost about
//! 1.2 MB in all (BENCHMARKS.md, "Weight per peer"). The trade: the
//! executable's own image is not randomised (ASLR still randomises its
//! libraries, heap and stack). `MUXVISOR_PIE=1` at build time keeps the
//! default PIE link. macOS requires PIE; nothing changes there.
//!
//! **The unwinder linked in, not `libgcc_s.so`.** std asks for the shared
//! libgcc_s only for its unwinder, which a binary that aborts on panic uses
//! just to print a backtrace. Loading that library costs each process about
//! 0.16 ms here (it probes the CPU at load, which traps to the hypervisor on
//! a VM). The same unwinder from the static `libgcc_eh.a` goes into the
//! binary instead, and the linker (`--as-needed`) then drops libgcc_s. Only
//! where the C compiler has `libgcc_eh.a` (every gcc install); elsewhere the
//! link stays as std asks.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MUXVISOR_PIE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let linux = os == "linux";
    let pie = std::env::var_os("MUXVISOR_PIE").is_some_and(|v| v == "1");
    // A static build (`-C target-feature=+crt-static`) is rustc's to link:
    // `-no-pie` on top of its `-static-pie` makes a binary that crashes at
    // once. rustc links it without PIE itself under `-C relocation-model=static`.
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .unwrap_or_default()
        .split(',')
        .any(|f| f == "crt-static");
    if linux && !pie && !crt_static {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if linux && env == "gnu" && !crt_static && has_static_unwinder() {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}

/// Whether the C compiler rustc links with finds `libgcc_eh.a`: it prints
/// the file's full path when it has it, the bare name when not.
fn has_static_unwinder() -> bool {
    let Ok(out) = Command::new("cc").arg("-print-file-name=libgcc_eh.a").output() else {
        return false;
    };
    let path = String::from_utf8_lossy(&out.stdout);
    let path = std::path::Path::new(path.trim());
    out.status.success() && path.is_absolute() && path.is_file()
}
