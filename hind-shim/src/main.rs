//! `hind-shim`: the per-container supervisor, started (double-forked) by
//! `hind run`. See the crate's `lib.rs` for what it owns.

fn main() {
    std::process::exit(hind_shim::main());
}
