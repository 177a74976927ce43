//! Resolving the IMAGE argument of `hind run` to a directory that becomes
//! the container's lower layer: the host root (`/`, alias `NOIMG`), a
//! directory, or a root filesystem tar that is unpacked once into the store,
//! keyed by the sha256 of its bytes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use protocol::paths::Layout;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {0}: no such file or directory")]
    Missing(PathBuf),
    #[error("image {0}: not a directory or a tar file")]
    NotImage(PathBuf),
    #[error("image {0:?}: image references need the image store; give a path (./DIR, /DIR, FILE.tar) or /")]
    NotAPath(String),
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
}

impl Image {
    /// The directory the container's root is made from.
    pub fn rootfs(&self) -> &Path {
        match self {
            Image::Host => Path::new("/"),
            Image::Dir(p) => p,
            Image::Tar { rootfs, .. } => rootfs,
        }
    }
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s == "." || s == ".."
}

pub fn resolve(layout: &Layout, arg: &str) -> Result<Image> {
    if arg == "/" || arg == "NOIMG" {
        return Ok(Image::Host);
    }
    if !is_path(arg) {
        return Err(Error::NotAPath(arg.to_string()));
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
        let mut a = tar::Archive::new(io::BufReader::with_capacity(256 * 1024, f));
        a.set_preserve_permissions(true);
        a.set_preserve_ownerships(true);
        a.set_preserve_mtime(true);
        a.set_unpack_xattrs(true);
        a.set_overwrite(true);
        let mut entries = 0usize;
        for entry in a.entries().map_err(|e| Error::Unpack(tar.into(), e))? {
            let mut entry = entry.map_err(|e| Error::Unpack(tar.into(), e))?;
            entry
                .unpack_in(&scratch_root)
                .map_err(|e| Error::Unpack(tar.into(), e))?;
            entries += 1;
        }
        if entries == 0 {
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
