//! OCI images built in Rust, byte for byte, for the image-store tests.
//!
//! - [`Entry`] and [`Layer`]: a layer tar made from a list of entries (files,
//!   dirs, links, devices, whiteouts, opaque markers, and raw entries with
//!   names no sane tool would write, like `../escape`), or from a directory
//!   tree; stored uncompressed, gzip or zstd.
//! - [`ImageBuilder`] and [`IndexBuilder`]: the config, manifest and
//!   (multi-platform) index JSON for those layers, written into an OCI image
//!   layout by [`Layout`]; every digest comes back for assertions
//!   ([`ImageDigests`], [`IndexDigests`]).
//! - [`oci_archive`] and [`docker_archive`]: the tarballs `hind load` reads,
//!   an OCI layout packed into a tar and a classic `docker save` tarball.
//!
//! Everything is deterministic (fixed mtimes, sorted JSON keys, gzip without
//! a timestamp), so building the same image twice gives the same digests.
//! The helpers panic with the path they failed on, like the rest of the
//! harness.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The annotation of an `index.json` entry naming its tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The fixed mtime of every entry and the `created` of every config.
pub const EPOCH: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// The OCI name of the architecture this test binary runs on (`amd64`,
/// `arm64`, ...), what `hind pull` picks from an index by default.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[track_caller]
fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// What a tar entry is; the payload is the content or the link target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    /// Target is another entry's name in the same layer (or a lower one).
    Hardlink(Vec<u8>),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One entry of a layer tar. The usual constructors take `/`-or-not
/// relative paths and strip a leading `/` or `./`; [`Entry::raw`] writes the
/// name bytes exactly as given. Setters chain:
/// `Entry::file("etc/shadow", "x").mode(0o600).owner(0, 42)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Written as PAX `SCHILY.xattr.<name>` records before the entry.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

fn clean_name(path: &str) -> Vec<u8> {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else {
            break;
        }
    }
    p.as_bytes().to_vec()
}

impl Entry {
    fn new(name: Vec<u8>, kind: Kind, mode: u32) -> Entry {
        Entry {
            name,
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: EPOCH,
            xattrs: Vec::new(),
        }
    }

    /// A regular file, mode 0644.
    pub fn file(path: &str, data: impl AsRef<[u8]>) -> Entry {
        Entry::new(clean_name(path), Kind::File(data.as_ref().to_vec()), 0o644)
    }

    /// A directory, mode 0755.
    pub fn dir(path: &str) -> Entry {
        Entry::new(clean_name(path), Kind::Dir, 0o755)
    }

    /// A symlink to `target` (written as given, absolute or relative).
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(
            clean_name(path),
            Kind::Symlink(target.as_bytes().to_vec()),
            0o777,
        )
    }

    /// A hard link to the entry named `target`.
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::new(clean_name(path), Kind::Hardlink(clean_name(target)), 0o644)
    }

    /// A character device, mode 0666.
    pub fn char_device(path: &str, major: u32, minor: u32) -> Entry {
        Entry::new(clean_name(path), Kind::CharDevice { major, minor }, 0o666)
    }

    /// A block device, mode 0660.
    pub fn block_device(path: &str, major: u32, minor: u32) -> Entry {
        Entry::new(clean_name(path), Kind::BlockDevice { major, minor }, 0o660)
    }

    /// A named pipe, mode 0644.
    pub fn fifo(path: &str) -> Entry {
        Entry::new(clean_name(path), Kind::Fifo, 0o644)
    }

    /// The whiteout deleting `path` from the layers below: an empty file
    /// `DIR/.wh.NAME`.
    pub fn whiteout(path: &str) -> Entry {
        let name = clean_name(path);
        let (dir, base) = match name.iter().rposition(|&c| c == b'/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => (&name[..0], &name[..]),
        };
        let mut wh = dir.to_vec();
        wh.extend_from_slice(b".wh.");
        wh.extend_from_slice(base);
        Entry::new(wh, Kind::File(Vec::new()), 0o644)
    }

    /// The opaque marker `DIR/.wh..wh..opq`: `dir` hides everything the
    /// layers below have in it.
    pub fn opaque(dir: &str) -> Entry {
        let mut name = clean_name(dir);
        if !name.is_empty() && !name.ends_with(b"/") {
            name.push(b'/');
        }
        name.extend_from_slice(b".wh..wh..opq");
        Entry::new(name, Kind::File(Vec::new()), 0o644)
    }

    /// An entry with exactly these name bytes, unchecked: `../escape`,
    /// `/abs/path`, `a/../../b`. Mode 0644 (0777 for symlinks).
    pub fn raw(name: impl AsRef<[u8]>, kind: Kind) -> Entry {
        let mode = if matches!(kind, Kind::Symlink(_)) {
            0o777
        } else {
            0o644
        };
        Entry::new(name.as_ref().to_vec(), kind, mode)
    }

    /// Permission bits (including setuid/setgid/sticky).
    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }

    /// An extended attribute, e.g. `security.capability`.
    pub fn xattr(mut self, name: &str, value: impl AsRef<[u8]>) -> Entry {
        self.xattrs
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }
}

/// Appends one header (with GNU long-name records for names over 100
/// bytes) and its data. Names and link names go in as raw bytes, so
/// nothing is checked or normalised.
fn append_entry(b: &mut tar::Builder<Vec<u8>>, e: &Entry) -> std::io::Result<()> {
    if !e.xattrs.is_empty() {
        let mut pax = Vec::new();
        for (k, v) in &e.xattrs {
            pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
        }
        let mut name = b"PaxHeaders/".to_vec();
        name.extend_from_slice(&e.name);
        name.truncate(100);
        let h = header(&name, tar::EntryType::XHeader, 0o644, pax.len() as u64, e);
        b.append(&h, &pax[..])?;
    }
    let (ty, data, link): (_, &[u8], &[u8]) = match &e.kind {
        Kind::File(d) => (tar::EntryType::Regular, d, b""),
        Kind::Dir => (tar::EntryType::Directory, b"", b""),
        Kind::Symlink(t) => (tar::EntryType::Symlink, b"", t),
        Kind::Hardlink(t) => (tar::EntryType::Link, b"", t),
        Kind::CharDevice { .. } => (tar::EntryType::Char, b"", b""),
        Kind::BlockDevice { .. } => (tar::EntryType::Block, b"", b""),
        Kind::Fifo => (tar::EntryType::Fifo, b"", b""),
    };
    if link.len() > 100 {
        let h = long_name_header(tar::EntryType::GNULongLink, link.len() + 1);
        b.append(&h, &[link, b"\0"].concat()[..])?;
    }
    if e.name.len() > 100 {
        let h = long_name_header(tar::EntryType::GNULongName, e.name.len() + 1);
        b.append(&h, &[&e.name[..], b"\0"].concat()[..])?;
    }
    let mut h = header(&e.name, ty, e.mode, data.len() as u64, e);
    if !link.is_empty() {
        let n = link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
    }
    if let Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } = e.kind {
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
    }
    h.set_cksum();
    b.append(&h, data)
}

/// A GNU header with the first 100 bytes of `name` written directly.
fn header(name: &[u8], ty: tar::EntryType, mode: u32, size: u64, e: &Entry) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    h.set_size(size);
    h.set_cksum();
    h
}

fn long_name_header(ty: tar::EntryType, size: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(ty);
    h.set_mode(0o644);
    h.set_size(size as u64);
    h.set_cksum();
    h
}

/// One PAX record: `<len> <key>=<value>\n`, where len counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A tar of `entries` in the given order.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        append_entry(&mut b, e)
            .unwrap_or_else(|err| panic!("tar entry {}: {err}", String::from_utf8_lossy(&e.name)));
    }
    b.into_inner().expect("finish tar in memory")
}

/// The entries of the tree under `dir`, parents before children, sorted by
/// name: dirs (named `DIR/`), files, symlinks, devices and fifos with their
/// mode, owner and mtime; a file whose inode was already seen becomes a
/// hard link to the first name.
#[track_caller]
pub fn entries_from_dir(dir: &Path) -> Vec<Entry> {
    fn walk(root: &Path, d: &Path, seen: &mut HashMap<(u64, u64), Vec<u8>>, out: &mut Vec<Entry>) {
        let mut kids: Vec<PathBuf> = fs::read_dir(d)
            .unwrap_or_else(|e| panic!("read dir {}: {e}", d.display()))
            .map(|e| {
                e.unwrap_or_else(|err| panic!("read dir {}: {err}", d.display()))
                    .path()
            })
            .collect();
        kids.sort();
        for p in kids {
            let m =
                fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
            let mut name = p
                .strip_prefix(root)
                .expect("walked path is under the root")
                .as_os_str()
                .as_bytes()
                .to_vec();
            let ft = m.file_type();
            let (dev, minor) = (
                nix::sys::stat::major(m.rdev()) as u32,
                nix::sys::stat::minor(m.rdev()) as u32,
            );
            let kind = if ft.is_dir() {
                name.push(b'/');
                Kind::Dir
            } else if ft.is_symlink() {
                let t =
                    fs::read_link(&p).unwrap_or_else(|e| panic!("readlink {}: {e}", p.display()));
                Kind::Symlink(t.as_os_str().as_bytes().to_vec())
            } else if ft.is_char_device() {
                Kind::CharDevice { major: dev, minor }
            } else if ft.is_block_device() {
                Kind::BlockDevice { major: dev, minor }
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_socket() {
                continue;
            } else if m.nlink() > 1 && seen.contains_key(&(m.dev(), m.ino())) {
                Kind::Hardlink(seen[&(m.dev(), m.ino())].clone())
            } else {
                if m.nlink() > 1 {
                    seen.insert((m.dev(), m.ino()), name.clone());
                }
                Kind::File(fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
            };
            out.push(Entry {
                name,
                kind,
                mode: m.mode() & 0o7777,
                uid: u64::from(m.uid()),
                gid: u64::from(m.gid()),
                mtime: m.mtime().max(0) as u64,
                xattrs: Vec::new(),
            });
            if ft.is_dir() {
                walk(root, &p, seen, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut HashMap::new(), &mut out);
    out
}

/// How a layer blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_LAYER_TAR,
            Compression::Gzip => MEDIA_LAYER_GZIP,
            Compression::Zstd => MEDIA_LAYER_ZSTD,
        }
    }

    /// `data` compressed this way.
    pub fn apply(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(data).expect("gzip in memory");
                enc.finish().expect("gzip in memory")
            }
            Compression::Zstd => zstd::encode_all(data, 3).expect("zstd in memory"),
        }
    }
}

/// A layer: its tar (whose sha256 is the diff id) and its blob (the tar
/// compressed, whose sha256 is the digest in the manifest).
#[derive(Clone, Debug)]
pub struct Layer {
    tar: Vec<u8>,
    blob: Vec<u8>,
    compression: Compression,
    media_type: String,
}

impl Layer {
    /// An uncompressed layer of `entries`, in that order.
    pub fn new(entries: &[Entry]) -> Layer {
        Layer::from_tar(tar_of(entries))
    }

    /// An uncompressed layer with this exact tar (may be garbage).
    pub fn from_tar(tar: Vec<u8>) -> Layer {
        Layer {
            blob: tar.clone(),
            tar,
            compression: Compression::None,
            media_type: MEDIA_LAYER_TAR.to_string(),
        }
    }

    /// An uncompressed layer of the tree under `dir`, see
    /// [`entries_from_dir`].
    #[track_caller]
    pub fn from_dir(dir: &Path) -> Layer {
        Layer::new(&entries_from_dir(dir))
    }

    /// The shared busybox test image ([`crate::image::busybox_image`]) as
    /// one uncompressed layer.
    pub fn busybox() -> Layer {
        Layer::from_dir(crate::image::busybox_image())
    }

    /// The same tar stored with `c`; the media type follows.
    pub fn compress(mut self, c: Compression) -> Layer {
        self.blob = c.apply(&self.tar);
        self.compression = c;
        self.media_type = c.media_type().to_string();
        self
    }

    pub fn gzip(self) -> Layer {
        self.compress(Compression::Gzip)
    }

    pub fn zstd(self) -> Layer {
        self.compress(Compression::Zstd)
    }

    /// Another media type in the manifest, blob unchanged (for the
    /// Docker types or a lying manifest).
    pub fn with_media_type(mut self, media_type: &str) -> Layer {
        self.media_type = media_type.to_string();
        self
    }

    /// Replaces the blob with other bytes, keeping the tar's diff id (for
    /// a corrupt or mislabelled blob).
    pub fn with_blob(mut self, blob: Vec<u8>) -> Layer {
        self.blob = blob;
        self
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> &[u8] {
        &self.tar
    }

    /// The bytes stored in the registry or layout.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// `sha256:` of the blob, as in the manifest.
    pub fn digest(&self) -> String {
        sha256_digest(&self.blob)
    }

    /// `sha256:` of the uncompressed tar, as in the config's `rootfs.diff_ids`.
    pub fn diff_id(&self) -> String {
        sha256_digest(&self.tar)
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest(),
            "size": self.blob.len(),
        })
    }
}

/// The digests of one image as written, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDigests {
    /// `sha256:` of the manifest JSON.
    pub manifest: String,
    pub manifest_size: u64,
    /// `sha256:` of the config JSON: the image id.
    pub config: String,
    /// Layer blob digests, bottom first.
    pub layers: Vec<String>,
    /// `sha256:` of each uncompressed layer tar, bottom first.
    pub diff_ids: Vec<String>,
    pub os: String,
    pub architecture: String,
}

type Edit = Box<dyn Fn(&mut Value)>;

/// An image: layers plus the config. Defaults: `linux` on [`host_arch`],
/// no Entrypoint/Cmd/Env. Build it into a [`Layout`] (or with
/// [`ImageBuilder::write_layout`]).
pub struct ImageBuilder {
    layers: Vec<Layer>,
    os: String,
    architecture: String,
    variant: Option<String>,
    config: Map<String, Value>,
    config_edits: Vec<Edit>,
    manifest_edits: Vec<Edit>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

fn strings(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect())
}

impl ImageBuilder {
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            os: "linux".to_string(),
            architecture: host_arch().to_string(),
            variant: None,
            config: Map::new(),
            config_edits: Vec::new(),
            manifest_edits: Vec::new(),
        }
    }

    /// Adds a layer on top of the previous ones.
    pub fn layer(mut self, layer: Layer) -> ImageBuilder {
        self.layers.push(layer);
        self
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// `os` and `architecture` of the config (and of the index entry).
    pub fn platform(mut self, os: &str, architecture: &str) -> ImageBuilder {
        self.os = os.to_string();
        self.architecture = architecture.to_string();
        self
    }

    pub fn variant(mut self, variant: &str) -> ImageBuilder {
        self.variant = Some(variant.to_string());
        self
    }

    pub fn entrypoint(self, args: &[&str]) -> ImageBuilder {
        self.config_field("Entrypoint", strings(args))
    }

    pub fn cmd(self, args: &[&str]) -> ImageBuilder {
        self.config_field("Cmd", strings(args))
    }

    /// Appends `KEY=VALUE` to `Env`.
    pub fn env(mut self, kv: &str) -> ImageBuilder {
        let env = self
            .config
            .entry("Env")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = env {
            a.push(Value::String(kv.to_string()));
        }
        self
    }

    pub fn working_dir(self, dir: &str) -> ImageBuilder {
        self.config_field("WorkingDir", Value::String(dir.to_string()))
    }

    pub fn user(self, user: &str) -> ImageBuilder {
        self.config_field("User", Value::String(user.to_string()))
    }

    pub fn stop_signal(self, sig: &str) -> ImageBuilder {
        self.config_field("StopSignal", Value::String(sig.to_string()))
    }

    /// Adds `port` (`80/tcp`) to `ExposedPorts`.
    pub fn expose(mut self, port: &str) -> ImageBuilder {
        let ports = self
            .config
            .entry("ExposedPorts")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = ports {
            m.insert(port.to_string(), json!({}));
        }
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> ImageBuilder {
        let labels = self
            .config
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = labels {
            m.insert(key.to_string(), Value::String(value.to_string()));
        }
        self
    }

    /// Sets any field of the config's `config` object.
    pub fn config_field(mut self, key: &str, value: Value) -> ImageBuilder {
        self.config.insert(key.to_string(), value);
        self
    }

    /// Runs `f` on the whole config JSON just before it is serialised (to
    /// write something invalid: wrong diff ids, missing fields ...).
    pub fn edit_config(mut self, f: impl Fn(&mut Value) + 'static) -> ImageBuilder {
        self.config_edits.push(Box::new(f));
        self
    }

    /// Runs `f` on the manifest JSON just before it is serialised.
    pub fn edit_manifest(mut self, f: impl Fn(&mut Value) + 'static) -> ImageBuilder {
        self.manifest_edits.push(Box::new(f));
        self
    }

    /// The config JSON bytes.
    pub fn config_json(&self) -> Vec<u8> {
        let mut platform = json!({
            "created": CREATED,
            "architecture": self.architecture,
            "os": self.os,
            "config": Value::Object(self.config.clone()),
            "rootfs": {
                "type": "layers",
                "diff_ids": self.layers.iter().map(Layer::diff_id).collect::<Vec<_>>(),
            },
            "history": self.layers.iter().enumerate().map(|(i, _)| json!({
                "created": CREATED,
                "created_by": format!("hind-tests layer {i}"),
            })).collect::<Vec<_>>(),
        });
        if let Some(v) = &self.variant {
            platform["variant"] = Value::String(v.clone());
        }
        for f in &self.config_edits {
            f(&mut platform);
        }
        serde_json::to_vec(&platform).expect("serialise config")
    }

    /// The manifest JSON bytes for config bytes `config`.
    fn manifest_json(&self, config: &[u8]) -> Vec<u8> {
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {
                "mediaType": MEDIA_OCI_CONFIG,
                "digest": sha256_digest(config),
                "size": config.len(),
            },
            "layers": self.layers.iter().map(Layer::descriptor).collect::<Vec<_>>(),
        });
        for f in &self.manifest_edits {
            f(&mut m);
        }
        serde_json::to_vec(&m).expect("serialise manifest")
    }

    fn platform_json(&self) -> Value {
        let mut p = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(v) = &self.variant {
            p["variant"] = Value::String(v.clone());
        }
        p
    }

    /// Writes the image as the only one in a new layout at `dir`, tagged
    /// `tag`.
    #[track_caller]
    pub fn write_layout(&self, dir: &Path, tag: &str) -> ImageDigests {
        Layout::create(dir).add_image(self, &[(REF_NAME, tag)])
    }
}

/// An image index over several images, one per platform.
#[derive(Default)]
pub struct IndexBuilder {
    images: Vec<ImageBuilder>,
    edits: Vec<Edit>,
}

/// The digests of an index as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDigests {
    /// `sha256:` of the index JSON.
    pub index: String,
    pub index_size: u64,
    /// One per image, in the order added.
    pub images: Vec<ImageDigests>,
}

impl IndexDigests {
    /// The image for `architecture`; panics if there is none.
    #[track_caller]
    pub fn image(&self, architecture: &str) -> &ImageDigests {
        self.images
            .iter()
            .find(|i| i.architecture == architecture)
            .unwrap_or_else(|| panic!("no {architecture} image in the index"))
    }
}

impl IndexBuilder {
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }

    /// Adds an image; its platform goes in the index entry.
    pub fn image(mut self, image: ImageBuilder) -> IndexBuilder {
        self.images.push(image);
        self
    }

    /// The two-platform test index: for each of `linux/amd64` and
    /// `linux/arm64`, `make(arch)` with that platform and a top layer
    /// holding `/platform` = `ARCH\n`.
    pub fn amd64_arm64(make: impl Fn(&str) -> ImageBuilder) -> IndexBuilder {
        let mut idx = IndexBuilder::new();
        for arch in ["amd64", "arm64"] {
            let top = Layer::new(&[Entry::file("platform", format!("{arch}\n"))]).gzip();
            idx = idx.image(make(arch).platform("linux", arch).layer(top));
        }
        idx
    }

    /// Runs `f` on the index JSON just before it is serialised.
    pub fn edit(mut self, f: impl Fn(&mut Value) + 'static) -> IndexBuilder {
        self.edits.push(Box::new(f));
        self
    }

    /// Writes the index as the only entry of a new layout at `dir`, tagged
    /// `tag`.
    #[track_caller]
    pub fn write_layout(&self, dir: &Path, tag: &str) -> IndexDigests {
        Layout::create(dir).add_index(self, &[(REF_NAME, tag)])
    }
}

/// An OCI image layout directory: `oci-layout`, `index.json`,
/// `blobs/sha256/<hex>`. Each `add_*` writes the blobs and rewrites
/// `index.json`.
pub struct Layout {
    dir: PathBuf,
    manifests: Vec<Value>,
}

impl Layout {
    /// A new empty layout at `dir` (created if missing).
    #[track_caller]
    pub fn create(dir: &Path) -> Layout {
        write_file(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        fs::create_dir_all(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("create {}/blobs/sha256: {e}", dir.display()));
        let l = Layout {
            dir: dir.to_path_buf(),
            manifests: Vec::new(),
        };
        l.save_index();
        l
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the blob `sha256:<hex>`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Stores `data` as a blob and returns its digest.
    #[track_caller]
    pub fn write_blob(&self, data: &[u8]) -> String {
        let d = sha256_digest(data);
        write_file(&self.blob_path(&d), data);
        d
    }

    #[track_caller]
    fn save_index(&self) {
        let idx = json!({ "schemaVersion": 2, "manifests": self.manifests });
        write_file(
            &self.dir.join("index.json"),
            &serde_json::to_vec(&idx).expect("serialise index.json"),
        );
    }

    /// Writes the image's blobs, config and manifest without an
    /// `index.json` entry.
    #[track_caller]
    fn write_image(&self, img: &ImageBuilder) -> ImageDigests {
        for l in &img.layers {
            self.write_blob(l.blob());
        }
        let config = img.config_json();
        let manifest = img.manifest_json(&config);
        ImageDigests {
            config: self.write_blob(&config),
            manifest: self.write_blob(&manifest),
            manifest_size: manifest.len() as u64,
            layers: img.layers.iter().map(Layer::digest).collect(),
            diff_ids: img.layers.iter().map(Layer::diff_id).collect(),
            os: img.os.clone(),
            architecture: img.architecture.clone(),
        }
    }

    fn add_entry(
        &mut self,
        media_type: &str,
        digest: &str,
        size: u64,
        annotations: &[(&str, &str)],
    ) {
        let mut e = json!({ "mediaType": media_type, "digest": digest, "size": size });
        if !annotations.is_empty() {
            let a: BTreeMap<&str, &str> = annotations.iter().copied().collect();
            e["annotations"] = json!(a);
        }
        self.manifests.push(e);
        self.save_index();
    }

    /// Adds an image with these annotations on its `index.json` entry
    /// (`&[(REF_NAME, "latest")]` for a tag, `&[]` for none).
    #[track_caller]
    pub fn add_image(&mut self, img: &ImageBuilder, annotations: &[(&str, &str)]) -> ImageDigests {
        let d = self.write_image(img);
        self.add_entry(
            MEDIA_OCI_MANIFEST,
            &d.manifest,
            d.manifest_size,
            annotations,
        );
        d
    }

    /// Adds an index (and all its images) with these annotations on its
    /// `index.json` entry.
    #[track_caller]
    pub fn add_index(&mut self, idx: &IndexBuilder, annotations: &[(&str, &str)]) -> IndexDigests {
        let mut images = Vec::new();
        let mut entries = Vec::new();
        for img in &idx.images {
            let d = self.write_image(img);
            entries.push(json!({
                "mediaType": MEDIA_OCI_MANIFEST,
                "digest": d.manifest,
                "size": d.manifest_size,
                "platform": img.platform_json(),
            }));
            images.push(d);
        }
        let mut v = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": entries,
        });
        for f in &idx.edits {
            f(&mut v);
        }
        let bytes = serde_json::to_vec(&v).expect("serialise index");
        let digest = self.write_blob(&bytes);
        self.add_entry(MEDIA_OCI_INDEX, &digest, bytes.len() as u64, annotations);
        IndexDigests {
            index: digest,
            index_size: bytes.len() as u64,
            images,
        }
    }
}

/// The tree under `dir` as a tar (entries relative, sorted, owner and mode
/// kept), stored with `c`.
#[track_caller]
pub fn tar_dir(dir: &Path, c: Compression) -> Vec<u8> {
    c.apply(&tar_of(&entries_from_dir(dir)))
}

/// Packs the layout at `layout` into the OCI archive `dest`: a tar with
/// `oci-layout`, `index.json` and `blobs/` at its top, gzip'd or not.
#[track_caller]
pub fn oci_archive(layout: &Path, dest: &Path, c: Compression) {
    write_file(dest, &tar_dir(layout, c));
}

/// Writes a classic `docker save` tarball to `dest` (uncompressed):
/// `manifest.json` (`Config`, `RepoTags`, `Layers`), `repositories`, the
/// config as `<hex>.json`, and each layer uncompressed as
/// `<diff id hex>/layer.tar` (with `VERSION` and `json`). `images` pairs
/// each image with its tags (`"busybox:latest"`). The returned `manifest`
/// digests are those of the OCI manifest the builder would write; a docker
/// archive holds none.
#[track_caller]
pub fn docker_archive(dest: &Path, images: &[(&ImageBuilder, &[&str])]) -> Vec<ImageDigests> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut add = |entries: &mut Vec<Entry>, e: Entry| {
        if names.insert(e.name.clone()) {
            entries.push(e);
        }
    };
    for (img, tags) in images {
        let config = img.config_json();
        let config_hex = sha256_digest(&config)
            .trim_start_matches("sha256:")
            .to_string();
        let mut layer_paths = Vec::new();
        for l in &img.layers {
            let id = l.diff_id().trim_start_matches("sha256:").to_string();
            add(&mut entries, Entry::dir(&format!("{id}/")));
            add(&mut entries, Entry::file(&format!("{id}/VERSION"), "1.0"));
            add(
                &mut entries,
                Entry::file(&format!("{id}/json"), format!(r#"{{"id":"{id}"}}"#)),
            );
            add(
                &mut entries,
                Entry::file(&format!("{id}/layer.tar"), l.tar()),
            );
            layer_paths.push(format!("{id}/layer.tar"));
        }
        add(
            &mut entries,
            Entry::file(&format!("{config_hex}.json"), &config),
        );
        for t in tags.iter() {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t, "latest"));
            if let Some(last) = layer_paths.last() {
                let id = last.trim_end_matches("/layer.tar").to_string();
                repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(tag.to_string(), id);
            }
        }
        manifest.push(json!({
            "Config": format!("{config_hex}.json"),
            "RepoTags": tags,
            "Layers": layer_paths,
        }));
        let m = img.manifest_json(&config);
        out.push(ImageDigests {
            manifest: sha256_digest(&m),
            manifest_size: m.len() as u64,
            config: sha256_digest(&config),
            layers: img.layers.iter().map(Layer::digest).collect(),
            diff_ids: img.layers.iter().map(Layer::diff_id).collect(),
            os: img.os.clone(),
            architecture: img.architecture.clone(),
        });
    }
    entries.push(Entry::file(
        "manifest.json",
        serde_json::to_vec(&manifest).expect("serialise manifest.json"),
    ));
    entries.push(Entry::file(
        "repositories",
        serde_json::to_vec(&repositories).expect("serialise repositories"),
    ));
    write_file(dest, &tar_of(&entries));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<(Vec<u8>, tar::EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (e.path_bytes().to_vec(), e.header().entry_type())
            })
            .collect()
    }

    #[test]
    fn raw_and_special_entries_round_trip() {
        let long = format!("d/{}", "x".repeat(150));
        let layer = Layer::new(&[
            Entry::dir("/etc"),
            Entry::file("etc/passwd", "root").mode(0o600).owner(1, 2),
            Entry::whiteout("etc/group"),
            Entry::opaque("var"),
            Entry::char_device("dev/null", 1, 3),
            Entry::raw("../escape", Kind::File(b"x".to_vec())),
            Entry::raw("/abs", Kind::Symlink(b"../../etc".to_vec())),
            Entry::file(&long, "long").xattr("user.k", "v"),
            Entry::hardlink("etc/pw2", "etc/passwd"),
        ]);
        let got = names(layer.tar());
        let want: Vec<&[u8]> = vec![
            b"etc",
            b"etc/passwd",
            b"etc/.wh.group",
            b"var/.wh..wh..opq",
            b"dev/null",
            b"../escape",
            b"/abs",
            long.as_bytes(),
            b"etc/pw2",
        ];
        assert_eq!(got.iter().map(|(n, _)| &n[..]).collect::<Vec<_>>(), want);
        assert_eq!(got[4].1, tar::EntryType::Char);
        assert_eq!(got[8].1, tar::EntryType::Link);
        let mut a = tar::Archive::new(layer.tar());
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            if e.path_bytes().starts_with(b"d/") {
                let x: Vec<_> = e
                    .pax_extensions()
                    .expect("pax")
                    .expect("has pax")
                    .map(|p| p.expect("pax record").key().expect("key").to_string())
                    .collect();
                assert_eq!(x, ["SCHILY.xattr.user.k"]);
            }
        }
    }

    #[test]
    fn compression_keeps_diff_id() {
        let l = Layer::new(&[Entry::file("a", "hello")]);
        let g = l.clone().gzip();
        let z = l.clone().zstd();
        assert_eq!(l.diff_id(), g.diff_id());
        assert_eq!(l.diff_id(), z.diff_id());
        assert_ne!(g.digest(), z.digest());
        assert_eq!(l.digest(), l.diff_id());
        assert_eq!(g.media_type(), MEDIA_LAYER_GZIP);
        assert_eq!(zstd::decode_all(z.blob()).expect("unzstd"), l.tar());
    }

    #[test]
    fn pax_record_length_counts_itself() {
        for n in [0, 1, 5, 80, 95, 990] {
            let r = pax_record("k", &vec![b'v'; n]);
            let len: usize =
                std::str::from_utf8(&r[..r.iter().position(|&c| c == b' ').unwrap_or(0)])
                    .expect("utf8")
                    .parse()
                    .expect("number");
            assert_eq!(len, r.len());
        }
    }
}
