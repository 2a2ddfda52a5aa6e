//! Link the muxvisor binary as a position-dependent executable on Linux.
//!
//! Every running peer keeps two muxvisor processes (its canary and its
//! pane-log copier). A position-independent executable must patch about
//! 39,000 pointers in its 1.2 MB of relocated read-only data at every start,
//! which makes those pages private to each process: about 1.2 MB of private
//! memory per muxvisor process, 2.4 MB per peer, and a third of `--version`'s
//! CPU time. Linked without PIE the linker resolves them once, the pages stay
//! shared with the file, and a peer's helpers cost about 1.2 MB in all
//! (BENCHMARKS.md, "Weight per peer"). The trade: the executable's own image
//! is not randomised (ASLR still randomises its libraries, heap and stack).
//! `MUXVISOR_PIE=1` at build time keeps the default PIE link. macOS requires
//! PIE; nothing changes there.

fn main() {
    println!("cargo:rerun-if-env-changed=MUXVISOR_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let pie = std::env::var_os("MUXVISOR_PIE").is_some_and(|v| v == "1");
    if linux && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
