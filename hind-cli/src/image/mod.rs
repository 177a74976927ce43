//! Resolving the IMAGE argument of `hind run` to the directories the
//! container's root is made from: the host root (`/`, alias `NOIMG`), a
//! directory, a root filesystem tar that is unpacked once (keyed by the
//! sha256 of its bytes), or an image of the store (a reference, pulled if
//! missing, or an id), whose layers become the overlay's lower dirs.

pub mod archive;
pub mod commands;
pub mod config;
pub mod diff;
pub mod extract;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use protocol::paths::Layout;
use sha2::{Digest, Sha256};

use self::config::ImageConfig;
use self::reference::Reference;
use self::store::{ImageRecord, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {0}: no such file or directory")]
    Missing(PathBuf),
    #[error("image {0}: not a directory or a tar file")]
    NotImage(PathBuf),
    #[error("image {0:?}: no such image here (pull it, or run with --pull missing)")]
    NotFound(String),
    #[error("image {0:?}: not a path and not a valid reference")]
    BadReference(String, #[source] reference::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Pull(#[from] pull::Error),
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("read image tar {0}")]
    ReadTar(PathBuf, #[source] io::Error),
    #[error("unpack image tar {0}")]
    Unpack(PathBuf, #[source] io::Error),
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// The host's own root, read-only below the container's upper dir.
    Host,
    Dir(PathBuf),
    /// A tar, unpacked in the store at `rootfs`.
    Tar {
        file: PathBuf,
        rootfs: PathBuf,
    },
    /// An image of the store.
    Stored(Box<Stored>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub record: ImageRecord,
    /// Overlay lower dirs, top layer first.
    pub lowers: Vec<PathBuf>,
    pub config: ImageConfig,
}

/// How `run` may pull: Docker's `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl Image {
    /// The directories the container's root is made from, top first.
    pub fn lowers(&self) -> Vec<PathBuf> {
        match self {
            Image::Host => vec![PathBuf::from("/")],
            Image::Dir(p) => vec![p.clone()],
            Image::Tar { rootfs, .. } => vec![rootfs.clone()],
            Image::Stored(s) => s.lowers.clone(),
        }
    }

    /// The directory whose owner and mode the container's `/` gets.
    pub fn root_dir(&self) -> PathBuf {
        match self {
            Image::Stored(s) => s
                .lowers
                .last()
                .cloned()
                .unwrap_or_else(|| PathBuf::from("/")),
            other => other.lowers().swap_remove(0),
        }
    }

    pub fn config(&self) -> Option<&ImageConfig> {
        match self {
            Image::Stored(s) => Some(&s.config),
            _ => None,
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Image::Stored(s) => Some(&s.record.id),
            _ => None,
        }
    }

    /// Reads a file of the image's root filesystem (`rel` is relative to
    /// `/`), looking through the layers top first as overlayfs would:
    /// a whiteout or an opaque dir above hides what is below.
    pub fn read_file(&self, rel: &str) -> Option<String> {
        let rel = rel.trim_start_matches('/');
        for layer in self.lowers() {
            match lookup_in_layer(&layer, rel) {
                Lookup::Found(p) => return read_regular(&p),
                Lookup::Hidden => return None,
                Lookup::Absent => {}
            }
        }
        None
    }
}

/// The content of `p` if it is a regular file, at most 1 MiB of it. The
/// layers are untrusted and read here on the host: a symlink would be
/// followed on the host's tree (`etc/passwd -> /etc/shadow`), a FIFO would
/// block `run` forever and `/dev/zero` would never end.
fn read_regular(p: &Path) -> Option<String> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut s = String::new();
    f.take(1 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

enum Lookup {
    Found(PathBuf),
    /// A whiteout or opaque dir in this layer hides the lower layers.
    Hidden,
    Absent,
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 4];
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path and `buf` a writable buffer of
    // the length passed; lgetxattr writes at most that many bytes.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn lookup_in_layer(layer: &Path, rel: &str) -> Lookup {
    let mut p = layer.to_path_buf();
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let Ok(md) = fs::symlink_metadata(&p) else {
            return Lookup::Absent;
        };
        if is_whiteout(&md) {
            return Lookup::Hidden;
        }
        if i + 1 == parts.len() {
            return Lookup::Found(p);
        }
        if !md.is_dir() {
            return Lookup::Absent;
        }
        if is_opaque(&p) {
            // Below an opaque dir only this layer counts.
            let rest = parts[i + 1..].join("/");
            return match fs::symlink_metadata(p.join(&rest)) {
                Ok(m) if !is_whiteout(&m) => Lookup::Found(p.join(rest)),
                _ => Lookup::Hidden,
            };
        }
    }
    Lookup::Absent
}

/// Whether `arg` names an image of the store (not a path or the host).
pub fn uses_store(arg: &str) -> bool {
    !(arg == "/" || arg == "NOIMG" || is_path(arg))
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s == "." || s == ".."
}

/// Resolves `arg` for `run`. A store image may be pulled first, as
/// `policy` says; `platform` is the one to pull.
pub fn resolve(
    layout: &Layout,
    arg: &str,
    policy: PullPolicy,
    platform: Option<&str>,
) -> Result<Image> {
    if arg == "/" || arg == "NOIMG" {
        return Ok(Image::Host);
    }
    if !is_path(arg) {
        return resolve_stored(layout, arg, policy, platform);
    }
    let p = PathBuf::from(arg);
    let md = fs::metadata(&p).map_err(|_| Error::Missing(p.clone()))?;
    let abs = fs::canonicalize(&p).map_err(|_| Error::Missing(p.clone()))?;
    if abs == Path::new("/") {
        return Ok(Image::Host);
    }
    if md.is_dir() {
        return Ok(Image::Dir(abs));
    }
    if !md.is_file() {
        return Err(Error::NotImage(p));
    }
    let rootfs = unpack_tar(layout, &abs)?;
    Ok(Image::Tar { file: abs, rootfs })
}

fn resolve_stored(
    layout: &Layout,
    arg: &str,
    policy: PullPolicy,
    platform: Option<&str>,
) -> Result<Image> {
    let store = Store::open(layout)?;
    let found = match policy {
        PullPolicy::Always => None,
        _ => store.lookup(arg)?,
    };
    let record = match found {
        Some(r) => r,
        None if policy == PullPolicy::Never => return Err(Error::NotFound(arg.to_string())),
        None => {
            let r = Reference::parse(arg).map_err(|e| Error::BadReference(arg.to_string(), e))?;
            if policy == PullPolicy::Missing {
                eprintln!("Unable to find image '{}' locally", r.familiar());
            }
            pull::pull(
                layout,
                &store,
                &r,
                &pull::Options {
                    platform: platform.map(str::to_string),
                    quiet: false,
                },
            )?
        }
    };
    stored(&store, record)
}

/// An image of the store, ready for `run`.
pub fn stored(store: &Store, record: ImageRecord) -> Result<Image> {
    let lowers = store.lower_dirs(&record)?;
    let config = ImageConfig::parse(&record.id, &store.config(&record)?)?;
    Ok(Image::Stored(Box::new(Stored {
        record,
        lowers,
        config,
    })))
}

fn digest(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::ReadTar(path.into(), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::ReadTar(path.into(), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Unpacks `tar` into `images/tar/<sha256>/rootfs` unless that exists. The
/// unpacking happens in a scratch dir that is renamed into place at the
/// end, so an interrupted unpack never looks like a complete image.
fn unpack_tar(layout: &Layout, tar: &Path) -> Result<PathBuf> {
    let sum = digest(tar)?;
    let store = layout.images().join("tar");
    let dest = store.join(&sum);
    let rootfs = dest.join("rootfs");
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    let mk = |p: &Path| {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
            .map_err(|e| Error::Create(p.to_path_buf(), e))
    };
    mk(&store)?;
    mk(&layout.tmp())?;
    let scratch = layout
        .tmp()
        .join(format!("tar-{}-{}", &sum[..12], std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    let scratch_root = scratch.join("rootfs");
    mk(&scratch_root)?;
    let result = (|| {
        let f = File::open(tar).map_err(|e| Error::ReadTar(tar.into(), e))?;
        // The same extractor as for layers: a tar given on the command line
        // is no more trusted than one from a registry.
        let mut r = extract::decompress(Box::new(f))
            .map_err(|e| Error::Unpack(tar.into(), io::Error::other(e.to_string())))?;
        let stats = extract::unpack(&mut r, &scratch_root, &extract::Options::default())
            .map_err(|e| Error::Unpack(tar.into(), io::Error::other(e.to_string())))?;
        if stats.entries == 0 {
            return Err(Error::Unpack(
                tar.into(),
                io::Error::new(io::ErrorKind::InvalidData, "archive holds no entries"),
            ));
        }
        // Another CLI may have finished the same image meanwhile; theirs is
        // as good as ours.
        match fs::rename(&scratch, &dest) {
            Ok(()) => Ok(()),
            Err(_) if rootfs.is_dir() => Ok(()),
            Err(e) => Err(Error::Create(dest.clone(), e)),
        }
    })();
    let _ = fs::remove_dir_all(&scratch);
    result.map(|()| rootfs)
}
