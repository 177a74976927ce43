//! `hind-init`: started by the shim inside the container's new namespaces,
//! it reads its config from the inherited init socket, builds the
//! container's root and identity, and execs the user's command as PID 1.

fn main() {
    hind_init::main()
}
