//! Shared helpers for the end-to-end tests: where the `hind` binaries are,
//! a per-test [`TestEnv`] (own state root, own cgroup parent, leak checks on
//! the way out), running `hind` with a deadline and captured output, a pty
//! driver for `-t`, and the busybox test image. [`runc`] drives the
//! runc-compatible `hind-runc` (or runc itself) with OCI bundles.
//!
//! The tests drive the real binaries as root and touch the kernel for real:
//! mounts, namespaces and cgroups. Every test gets its own names, so the
//! suite runs in parallel threads; nothing global is shared except the
//! read-only busybox image.

pub mod callers;
pub mod cgroup;
pub mod clean;
pub mod detach;
pub mod env;
pub mod image;
pub mod netns;
pub mod oci;
pub mod process;
pub mod registry;
pub mod runc;

use std::path::PathBuf;

pub use env::{TestEnv, HOLD};
pub use image::{bb, busybox_image, make_tar, snapshot};
pub use netns::NetNs;
pub use process::{Output, PtyRunning, Running};

/// Where every test keeps its files; one subdirectory per test.
pub const E2E_DIR: &str = "/tmp/hind-e2e";

/// The directory holding `hind`, `hind-shim` and `hind-init`: `HIND_BIN_DIR`
/// if set, else the cargo profile directory the test executable was built
/// into (`target/<profile>/deps/<test>` -> `target/<profile>`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HIND_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let mut dir = exe
        .parent()
        .expect("test binary has a parent dir")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of the `hind` binary; panics with a hint when it was not built.
pub fn hind_bin() -> PathBuf {
    let bin = bin_dir().join("hind");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build --workspace --bins` first or set HIND_BIN_DIR",
        bin.display()
    );
    bin
}

/// How long one `hind` invocation may take before the harness kills it and
/// fails the test: `HIND_E2E_TIMEOUT` seconds, default 60.
pub fn default_timeout() -> std::time::Duration {
    let secs = std::env::var("HIND_E2E_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    std::time::Duration::from_secs(secs)
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= end {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Names in `dir`, sorted; empty if it does not exist.
pub fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
