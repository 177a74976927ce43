//! `hind-runc`: the OCI runtime command line of runc, so that podman
//! (through conmon) and containerd (through its runc shim) can run
//! containers with hind. It is a second entry point over the shim's create
//! path ([`crate::spec`], [`crate::launch`], [`crate::cgroups`]): the same
//! bundle gives the same container as `hind run`. The difference is who
//! supervises: here the caller does, so `create` starts init as its own
//! child and exits, and no hind-shim stays behind.
//!
//! - [`cli`]: the command line (clap) and the logging runc callers read.
//! - [`container`]: create, start, run, state, kill, delete.
//! - [`ops`]: exec, ps, list, pause, resume, update.
//! - [`state`]: what is kept between invocations.
//! - [`validate`], [`features`], [`template`]: config.json checks, the
//!   `features` report and the `spec` template.

pub mod cli;
pub mod container;
pub mod features;
pub mod ops;
pub mod state;
pub mod template;
pub mod validate;

pub use cli::main;
