//! Types shared by `hind`, `hind-shim` and `hind-init`: the init config sent
//! over an inherited socket, the shim's control protocol, the length-prefixed
//! framing both use, the on-disk container record and the state-root layout.

pub mod caps;
pub mod cgroupfs;
pub mod control;
pub mod env;
pub mod frame;
pub mod init;
pub mod lockfile;
pub mod paths;
pub mod record;
pub mod time;
pub mod user;

/// Version of every message family in this crate. A peer that sees another
/// number says so instead of misreading the bytes (see `control::Hello`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Exit code when hind itself fails (Docker's convention).
pub const EXIT_ENGINE: i32 = 125;
/// Exit code when the command exists but cannot be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// Exit code when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;
