#!/usr/bin/env python3
"""What a process start costs here, by what it loads (issue 21): an empty C
program, and an empty Rust program built with muxvisor's release profile
and link (no PIE) four ways: as cargo builds it (std's runtime start-up,
libgcc_s.so loaded for std's unwinder), without std's runtime start-up (a
C `main`, `#![no_main]`), with the unwinder linked in from libgcc_eh.a
(libgcc_s no longer loaded), and both, which is how muxvisor's binary is
built now (build.rs, src/main.rs, src/ground/start.rs). /bin/true is the
reference. With --bin NAME=BINARY (repeatable), that muxvisor build's
`--version` and `send --no-kick` to an ephemeral peer are timed in the
same rounds.

Every row is timed as a whole process (spawn to reap) from this script,
interleaved in a shuffled order each round; medians.

Usage: python3 bench/startup.py [--runs N] [--bin NAME=BINARY ...]
Builds the probes with cargo and cc in a temp directory (no network: the
probes have no dependencies); removes it at the end."""

import argparse, os, random, shutil, statistics, subprocess, sys, tempfile, time

DEV = subprocess.DEVNULL

CARGO_TOML = """[package]
name = "probe"
version = "0.1.0"
edition = "2024"
[profile.release]
lto = "fat"
codegen-units = 1
panic = "abort"
strip = "symbols"
"""
RUST_MAIN = "fn main() {}\n"
C_MAIN = """#![no_main]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    0
}
"""
UNWINDER = 'fn main() { println!("cargo:rustc-link-lib=static:-bundle=gcc_eh"); }\n'


def build_probes(work):
    """The five probe binaries, by row name."""
    out = {}
    with open(os.path.join(work, "empty.c"), "w") as f:
        f.write("int main(void) { return 0; }\n")
    out["C, empty"] = os.path.join(work, "c-empty")
    subprocess.run(["cc", "-O2", "-o", out["C, empty"], os.path.join(work, "empty.c")], check=True)
    proj = os.path.join(work, "probe")
    os.makedirs(os.path.join(proj, "src"))
    with open(os.path.join(proj, "Cargo.toml"), "w") as f:
        f.write(CARGO_TOML)
    env = dict(os.environ, RUSTFLAGS="-C link-arg=-no-pie", CARGO_TARGET_DIR=os.path.join(work, "t"))
    for name, main_rs, unwinder in [
        ("Rust, empty: std start-up, libgcc_s", RUST_MAIN, False),
        ("Rust, empty: no std start-up, libgcc_s", C_MAIN, False),
        ("Rust, empty: std start-up, unwinder linked in", RUST_MAIN, True),
        ("Rust, empty: neither (how muxvisor is built now)", C_MAIN, True),
    ]:
        with open(os.path.join(proj, "src", "main.rs"), "w") as f:
            f.write(main_rs)
        build_rs = os.path.join(proj, "build.rs")
        if unwinder:
            with open(build_rs, "w") as f:
                f.write(UNWINDER)
        elif os.path.exists(build_rs):
            os.unlink(build_rs)
        subprocess.run(["cargo", "build", "--release", "--quiet", "--offline"], cwd=proj, env=env, check=True)
        dst = os.path.join(work, f"probe{len(out)}")
        shutil.copy(os.path.join(work, "t", "release", "probe"), dst)
        needed = subprocess.run(["readelf", "-d", dst], capture_output=True, text=True).stdout
        assert ("libgcc_s" in needed) != unwinder, (name, needed)
        out[name] = dst
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--bin", action="append", default=[], help="NAME=BINARY")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mvstart")
    try:
        rows = {"/bin/true": (["/bin/true"], None)}
        for name, path in build_probes(work).items():
            rows[name] = ([path], None)
        for i, spec in enumerate(a.bin):
            name, path = spec.split("=", 1)
            path = os.path.abspath(path)
            root = os.path.join(work, f"root{i}")
            env = dict(os.environ, MUXVISOR_ROOT=root)
            subprocess.run([path, "add", "w", "--ephemeral", "--", "true"], env=env, check=True, stdout=DEV)
            rows[f"muxvisor {name}: --version"] = ([path, "--version"], env)
            rows[f"muxvisor {name}: send --no-kick"] = ([path, "send", "--no-kick", "w", "x"], env)
        samples = {k: [] for k in rows}
        for _ in range(a.runs):
            order = list(rows)
            random.shuffle(order)
            for k in order:
                cmd, env = rows[k]
                t = time.perf_counter()
                r = subprocess.run(cmd, stdout=DEV, stderr=DEV, env=env)
                samples[k].append((time.perf_counter() - t) * 1000)
                if r.returncode != 0:
                    sys.exit(f"startup: {cmd} exited {r.returncode}")
        base = statistics.median(samples["/bin/true"])
        print(f"Process start, whole process timed from spawn to reap, {a.runs} rounds, shuffled "
              f"order, medians ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"`python3 bench/startup.py --runs {a.runs}"
              + "".join(f" --bin {b.split('=')[0]}=..." for b in a.bin) + "`):\n")
        print("| what | median ms | vs /bin/true |\n|---|---:|---:|")
        for k, v in samples.items():
            m = statistics.median(v)
            print(f"| {k} | {m:.3f} | {m / base:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
