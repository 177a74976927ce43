//! `hind-runc`: the runc-compatible OCI runtime command line (see
//! `hind_shim::runc`).

fn main() {
    std::process::exit(hind_shim::runc::main());
}
