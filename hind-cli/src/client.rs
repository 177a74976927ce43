//! Talking to a running container's shim over its control socket.

use std::fs::File;
use std::io;
use std::os::unix::net::UnixStream;

use protocol::control::{Event, Hello, Request};
use protocol::paths::{self, Layout};
use protocol::{frame, PROTOCOL_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect to the shim of container {0}")]
    Connect(String, #[source] io::Error),
    #[error("talk to the shim of container {0}")]
    Talk(String, #[source] frame::Error),
    #[error("the shim of container {0} speaks protocol {1}, this hind speaks {PROTOCOL_VERSION}: restart the container to upgrade it")]
    Version(String, u32),
    #[error("the shim of container {0}: {1}")]
    Shim(String, String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Connects and exchanges `Hello`. The socket path may exceed `sun_path`,
/// so it is reached through an fd of the run dir.
pub fn connect(layout: &Layout, id: &str) -> Result<UnixStream> {
    let err = |e| Error::Connect(id.to_string(), e);
    let dir = File::open(&layout.run).map_err(err)?;
    let addr = paths::via_dir_fd(&dir, &paths::socket_name(id));
    let mut s = UnixStream::connect(addr).map_err(err)?;
    let talk = |e| Error::Talk(id.to_string(), e);
    frame::write(
        &mut s,
        &Request::Hello(Hello {
            version: PROTOCOL_VERSION,
        }),
    )
    .map_err(talk)?;
    match frame::read::<Event, _>(&mut s).map_err(talk)? {
        Event::Hello(h) if h.version == PROTOCOL_VERSION => Ok(s),
        Event::Hello(h) => Err(Error::Version(id.to_string(), h.version)),
        other => Err(Error::Shim(id.to_string(), format!("{other:?}"))),
    }
}

pub fn send(s: &mut UnixStream, id: &str, req: &Request) -> Result<()> {
    frame::write(s, req).map_err(|e| Error::Talk(id.to_string(), e))
}

/// Reads events until `Exited` (its code) or the shim closes (None).
pub fn wait_exit(s: &mut UnixStream, id: &str) -> Result<Option<i32>> {
    loop {
        match frame::read::<Event, _>(s) {
            Ok(Event::Exited { exit_code, .. }) => return Ok(Some(exit_code)),
            Ok(Event::Error(m)) => return Err(Error::Shim(id.to_string(), m)),
            Ok(_) => {}
            Err(frame::Error::Closed) => return Ok(None),
            Err(frame::Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Ok(None)
            }
            Err(e) => return Err(Error::Talk(id.to_string(), e)),
        }
    }
}
