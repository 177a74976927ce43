//! Images in and out of tar files: `load` (a `docker save` tarball or an OCI
//! image layout archive, gzip or zstd or plain), `save` (an OCI archive that
//! `docker load` reads too), `import` (a root filesystem tar becomes a
//! one-layer image), `commit` (a container's overlay upper dir becomes a
//! new layer on top of its image) and `export` (a container's merged root
//! filesystem as a tar).
//!
//! An archive is untrusted input like any layer. Its members are never
//! written under their own names: `load` indexes the tar, copying each
//! regular file of a compressed or piped archive into a flat scratch dir
//! under `images/tmp` (an uncompressed archive file is read in place), so a
//! hostile name can at worst fail the lookup. Every blob is then checked
//! against its digest while the store ingests it.
//!
//! `export` mounts the container's layers as a read-only overlay inside a
//! forked child that has its own mount namespace, so the mount vanishes
//! with the child and never appears on the host.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Descriptor, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, ImageIndex,
    ImageManifest, MediaType, Os, RootFsBuilder,
};
use protocol::paths::{self, Layout};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::commands::find;
use super::diff;
use super::extract::{self, DigestReader};
use super::reference::{is_digest, Reference};
use super::store::{self, chain_ids, hex, unique_suffix, Expect, ImageRecord, LayerRef, Store};
use crate::cli::{CommitArgs, ExportArgs, ImportArgs, LoadArgs, SaveArgs};

const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MEDIA_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The tag annotation of the OCI image-spec (annotations.md); often a bare
/// tag such as `1.0`.
const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker 25's) annotation: always a full reference.
const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Manifests, configs and index.json are read into memory; nothing
/// legitimate comes close to this.
const MAX_JSON: u64 = 32 << 20;
/// Links followed when looking up a member (docker-save links duplicate
/// layers to the first copy).
const MAX_LINKS: usize = 16;
/// Indexes nested in indexes, at most.
const MAX_INDEX_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("archive {0}: read")]
    Read(String, #[source] io::Error),
    #[error("archive {0}: entry {1:?}: {2}")]
    BadEntry(String, String, &'static str),
    #[error("archive {0}: entry {1:?}")]
    CopyEntry(String, String, #[source] io::Error),
    #[error("archive {0}: no member {1:?}")]
    NoMember(String, String),
    #[error("archive {0}: {1} is larger than {MAX_JSON} bytes")]
    TooLarge(String, String),
    #[error("archive {0}: neither index.json (OCI) nor manifest.json (docker save) in it")]
    UnknownFormat(String),
    #[error("archive {0}: {1}: {2}")]
    Parse(String, String, String),
    #[error("archive {0}: blob {1}: the content hashes to {2}")]
    BlobDigest(String, String, String),
    #[error("archive {0}: {1}")]
    Invalid(String, String),
    #[error("archive {0}")]
    Ingest(String, #[source] store::Error),
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
    #[error("write {0}")]
    Write(String, #[source] io::Error),
    #[error("read {0}")]
    ReadFile(PathBuf, #[source] io::Error),
    #[error("{0}: refusing to write a tar to a terminal (use -o FILE or redirect stdout)")]
    Terminal(&'static str),
    #[error("save: copy blob {0} into the archive")]
    CopyBlob(String, #[source] io::Error),
    #[error("save: image {0}: blob {1} holds {2}, not what its name says")]
    SaveBlob(String, String, String),
    #[error("invalid reference {0:?}: {1}")]
    BadTag(String, String),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Container(#[from] crate::store::Error),
    #[error("commit: container {0} runs on {1}; only containers of store images can be committed (import the image first)")]
    NotStoreImage(String, String),
    #[error("commit: container {0}: its image {1} is no longer in the store")]
    ImageGone(String, String),
    #[error(
        "{0}: container {1} has no overlay upper dir {2} (it runs straight on its image directory)"
    )]
    NoUpper(&'static str, String, PathBuf),
    #[error("commit: container {0}: pack {1}")]
    Pack(String, PathBuf, #[source] diff::Error),
    #[error("commit: container {0}: image config {1}: {2}")]
    BaseConfig(String, String, String),
    #[error("export: container {0}: read its config {1}")]
    Spec(String, PathBuf, #[source] oci_spec::OciSpecError),
    #[error(
        "export: container {0} runs on the host root /; exporting it would copy the whole host"
    )]
    HostRoot(String),
    #[error("export: container {0}: {1}")]
    Export(String, String),
    #[error("export: container {0}: fork the export helper")]
    Fork(String, #[source] nix::Error),
}

type Result<T> = std::result::Result<T, Error>;

/// A scratch directory removed (with everything in it) on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create(parent: &Path, what: &str) -> Result<ScratchDir> {
        let p = parent.join(format!("{what}-{}", unique_suffix()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map_err(|e| Error::Create(p.clone(), e))?;
        Ok(ScratchDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The OCI media type of a stored layer blob, from its magic bytes.
fn layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        MEDIA_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MEDIA_LAYER_ZSTD
    } else {
        MEDIA_LAYER_TAR
    }
}

/// Up to the first 4 bytes of `r`.
fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    r.take(4).read_to_end(&mut head)?;
    Ok(head)
}

fn blob_media_type(store: &Store, digest: &str) -> Result<&'static str> {
    let p = store.blob_path(digest);
    let mut f = File::open(&p).map_err(|e| Error::ReadFile(p.clone(), e))?;
    let head = read_head(&mut f).map_err(|e| Error::ReadFile(p, e))?;
    Ok(layer_media_type(&head))
}

fn parse_tag(s: &str) -> Result<Reference> {
    let r = Reference::parse(s).map_err(|e| Error::BadTag(s.to_string(), e.to_string()))?;
    if r.digest.is_some() {
        return Err(Error::BadTag(
            s.to_string(),
            "a tag cannot have a digest".into(),
        ));
    }
    Ok(r)
}

fn now() -> String {
    protocol::time::rfc3339(std::time::SystemTime::now())
}

// ---------------------------------------------------------------- members

/// Where the bytes of one archive member are.
enum Member {
    /// A range of the archive file itself (uncompressed archives).
    Range { offset: u64, size: u64 },
    /// Copied out into the scratch dir.
    Copied(PathBuf),
}

/// The regular files of an archive by normalised name, plus its links.
struct Members {
    label: String,
    /// The archive file that `Member::Range`s point into.
    file: Option<PathBuf>,
    files: HashMap<String, Member>,
    /// Symlinks and hard links: name -> the member they stand for.
    links: HashMap<String, String>,
}

/// An archive member's name as a lookup key: `./a//b/` -> `a/b`; None for
/// the archive's root dir. Absolute names and `..` are refused rather than
/// interpreted: no legitimate image archive has them.
fn member_name(raw: &[u8]) -> std::result::Result<Option<String>, &'static str> {
    let s = std::str::from_utf8(raw).map_err(|_| "name is not UTF-8")?;
    if s.starts_with('/') {
        return Err("absolute name");
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("name leaves the archive (..)"),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Where a link named `name` points inside the archive: a symlink's target
/// is relative to its own directory, a hard link's to the archive root.
/// None if it points outside.
fn link_target(name: &str, target: &[u8], symlink: bool) -> Option<String> {
    let target = std::str::from_utf8(target).ok()?;
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = if symlink {
        let mut p: Vec<&str> = name.split('/').collect();
        p.pop();
        p
    } else {
        Vec::new()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl Members {
    /// Indexes the archive at `input` (stdin if None). An uncompressed
    /// archive file is indexed in place (seeking over the data); anything
    /// else is read once, its regular files copied into `scratch`.
    fn read(label: &str, input: Option<&Path>, scratch: &Path) -> Result<Members> {
        let mut m = Members {
            label: label.to_string(),
            file: None,
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let read_err = |e| Error::Read(label.to_string(), e);
        match input {
            Some(path) => {
                let mut f = File::open(path).map_err(|e| Error::Open(path.to_path_buf(), e))?;
                let head = read_head(&mut f).map_err(read_err)?;
                f.seek(SeekFrom::Start(0)).map_err(read_err)?;
                if layer_media_type(&head) == MEDIA_LAYER_TAR
                    && f.metadata().is_ok_and(|md| md.is_file())
                {
                    m.file = Some(path.to_path_buf());
                    let mut ar = tar::Archive::new(BufReader::with_capacity(64 << 10, f));
                    let entries = ar.entries_with_seek().map_err(read_err)?;
                    for e in entries {
                        let mut e = e.map_err(read_err)?;
                        m.add(&mut e, None)?;
                    }
                } else {
                    m.read_stream(Box::new(f), scratch)?;
                }
            }
            None => m.read_stream(Box::new(io::stdin()), scratch)?,
        }
        Ok(m)
    }

    fn read_stream(&mut self, r: Box<dyn Read + Send>, scratch: &Path) -> Result<()> {
        let label = self.label.clone();
        let r = extract::decompress(r)
            .map_err(|e| Error::Read(label.clone(), io::Error::other(e.to_string())))?;
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().map_err(|e| Error::Read(label.clone(), e))?;
        for e in entries {
            let mut e = e.map_err(|e| Error::Read(label.clone(), e))?;
            self.add(&mut e, Some(scratch))?;
        }
        Ok(())
    }

    /// Records one entry; with `scratch`, a regular file's data is copied
    /// there (under a counter, never under its own name).
    fn add<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, scratch: Option<&Path>) -> Result<()> {
        use tar::EntryType as T;
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let name = match member_name(&raw) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(()),
            Err(why) => return Err(Error::BadEntry(self.label.clone(), shown, why)),
        };
        let kind = e.header().entry_type();
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let member = match scratch {
                    // A sparse file's data in the archive is not its
                    // content, so it is always read out through the parser.
                    None if kind != T::GNUSparse => Member::Range {
                        offset: e.raw_file_position(),
                        size: e.size(),
                    },
                    _ => {
                        let dir = match scratch {
                            Some(d) => d.to_path_buf(),
                            None => {
                                return Err(Error::BadEntry(
                                    self.label.clone(),
                                    shown,
                                    "sparse files are not supported in an uncompressed archive",
                                ))
                            }
                        };
                        let p = dir.join(format!("m{}", self.files.len()));
                        let mut f = OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .open(&p)
                            .map_err(|err| Error::Create(p.clone(), err))?;
                        io::copy(e, &mut f).map_err(|err| {
                            Error::CopyEntry(self.label.clone(), shown.clone(), err)
                        })?;
                        Member::Copied(p)
                    }
                };
                self.links.remove(&name);
                self.files.insert(name, member);
            }
            T::Symlink | T::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let Some(t) = link_target(&name, &target, kind == T::Symlink) else {
                    return Err(Error::BadEntry(
                        self.label.clone(),
                        shown,
                        "link points outside the archive",
                    ));
                };
                self.files.remove(&name);
                self.links.insert(name, t);
            }
            // Directories are implied by the names; fifos and devices mean
            // nothing in an image archive.
            _ => {}
        }
        Ok(())
    }

    fn resolve(&self, name: &str) -> Option<(&str, &Member)> {
        let mut n = name;
        for _ in 0..=MAX_LINKS {
            if let Some((k, m)) = self.files.get_key_value(n) {
                return Some((k, m));
            }
            n = self.links.get(n)?;
        }
        None
    }

    fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    fn size(&self, name: &str) -> Result<u64> {
        match self.resolve(name) {
            Some((_, Member::Range { size, .. })) => Ok(*size),
            Some((_, Member::Copied(p))) => fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| Error::ReadFile(p.clone(), e)),
            None => Err(Error::NoMember(self.label.clone(), name.to_string())),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let read_err = |e| Error::CopyEntry(self.label.clone(), name.to_string(), e);
        match self.resolve(name) {
            Some((_, Member::Range { offset, size })) => {
                let path = self.file.as_ref().expect("ranges only come from a file");
                let mut f = File::open(path).map_err(|e| Error::Open(path.clone(), e))?;
                f.seek(SeekFrom::Start(*offset)).map_err(read_err)?;
                Ok(Box::new(f.take(*size)))
            }
            Some((_, Member::Copied(p))) => {
                let f = File::open(p).map_err(|e| Error::ReadFile(p.clone(), e))?;
                Ok(Box::new(f))
            }
            None => Err(Error::NoMember(self.label.clone(), name.to_string())),
        }
    }

    /// A small member (JSON) read whole.
    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        if self.size(name)? > MAX_JSON {
            return Err(Error::TooLarge(self.label.clone(), name.to_string()));
        }
        let mut data = Vec::new();
        self.open(name)?
            .read_to_end(&mut data)
            .map_err(|e| Error::CopyEntry(self.label.clone(), name.to_string(), e))?;
        Ok(data)
    }

    fn blob_name(&self, digest: &str) -> Result<String> {
        if !is_digest(digest) {
            return Err(Error::Invalid(
                self.label.clone(),
                format!("unsupported or invalid digest {digest:?}"),
            ));
        }
        Ok(format!("blobs/sha256/{}", hex(digest)))
    }

    /// A small blob of an OCI layout, checked against its digest.
    fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let data = self.read_small(&self.blob_name(digest)?)?;
        let actual = extract::sha256_digest(&data);
        if actual != digest {
            return Err(Error::BlobDigest(
                self.label.clone(),
                digest.to_string(),
                actual,
            ));
        }
        Ok(data)
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, what: &str, data: &[u8]) -> Result<T> {
        serde_json::from_slice(data)
            .map_err(|e| Error::Parse(self.label.clone(), what.to_string(), e.to_string()))
    }
}

// ---------------------------------------------------------------- load

/// One layer of an image to load.
struct LayerSource {
    member: String,
    /// Digest and size of the blob, when a manifest gives them.
    digest: Option<String>,
    size: Option<u64>,
    /// As the manifest says; sniffed from the blob when there is none.
    media_type: Option<String>,
}

/// One image to load, as the archive describes it.
struct Pending {
    /// How errors name it.
    name: String,
    config: Vec<u8>,
    /// The manifest as found (OCI archives), kept byte for byte.
    manifest: Option<(Vec<u8>, String)>,
    layers: Vec<LayerSource>,
    tags: Vec<Reference>,
}

/// Layers (chain id, blob) this run put in the store, so a failed load can
/// take back what no image refers to.
#[derive(Default)]
struct Added(Vec<(String, String)>);

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// Whether an index entry's platform fits this host (no platform: assume
/// it does, as single-image layouts often omit it).
fn host_platform(d: &Descriptor) -> bool {
    match d.platform() {
        None => true,
        Some(p) => *p.os() == Os::Linux && *p.architecture() == Arch::default(),
    }
}

/// The name an `index.json` entry gives its image. `io.containerd.image.name`
/// is a full reference; `org.opencontainers.image.ref.name` may be one too
/// (`hind save` writes both), but is often a bare tag like `1.0` with no
/// repository at all: that names nothing, and the image stays untagged
/// (containerd does the same without `--base-name`).
fn oci_tag(label: &str, d: &Descriptor) -> Result<Option<Reference>> {
    let Some(ann) = d.annotations() else {
        return Ok(None);
    };
    let name = match (ann.get(ANN_CONTAINERD_NAME), ann.get(ANN_REF_NAME)) {
        (Some(n), _) => n,
        (None, Some(n)) if n.contains(['/', ':', '@']) => n,
        (None, Some(n)) => {
            eprintln!(
                "hind: archive {label}: image {} is named only {n:?} (a tag without a repository); loaded untagged",
                d.digest()
            );
            return Ok(None);
        }
        (None, None) => return Ok(None),
    };
    parse_tag(name).map(Some)
}

/// The manifest descriptor `d` stands for on this host: itself, or the
/// entry of the (nested) index it names.
fn pick_manifest(m: &Members, d: &Descriptor, depth: usize) -> Result<Descriptor> {
    let mt = d.media_type().to_string();
    if is_manifest(&mt) {
        return Ok(d.clone());
    }
    if !is_index(&mt) || depth >= MAX_INDEX_DEPTH {
        return Err(Error::Invalid(
            m.label.clone(),
            format!("{}: unsupported media type {mt:?}", d.digest()),
        ));
    }
    let data = m.read_blob(d.digest().as_ref())?;
    let idx: ImageIndex = m.parse(&format!("index {}", d.digest()), &data)?;
    let want = format!("{}/{}", Os::Linux, Arch::default());
    let usable = |e: &&Descriptor| {
        let t = e.media_type().to_string();
        host_platform(e) && (is_manifest(&t) || is_index(&t))
    };
    // An entry that names our platform beats one that names none.
    let next = idx
        .manifests()
        .iter()
        .filter(usable)
        .find(|e| e.platform().is_some())
        .or_else(|| idx.manifests().iter().find(usable))
        .ok_or_else(|| {
            Error::Invalid(
                m.label.clone(),
                format!("index {} has no image for {want}", d.digest()),
            )
        })?;
    pick_manifest(m, next, depth + 1)
}

/// The images of an OCI image layout archive.
fn oci_images(m: &Members) -> Result<Vec<Pending>> {
    let data = m.read_small("index.json")?;
    let index: ImageIndex = m.parse("index.json", &data)?;
    // One image per manifest, with every name the index gives it.
    let mut out: Vec<Pending> = Vec::new();
    for d in index.manifests() {
        let top = d.media_type().to_string();
        if is_manifest(&top) && !host_platform(d) {
            // A flat multi-platform layout: only ours is loaded.
            continue;
        }
        let tag = oci_tag(&m.label, d)?;
        let man = pick_manifest(m, d, 0)?;
        let digest = man.digest().to_string();
        if let Some(p) = out.iter_mut().find(|p| p.name == digest) {
            p.tags.extend(tag);
            continue;
        }
        let bytes = m.read_blob(&digest)?;
        let manifest: ImageManifest = m.parse(&format!("manifest {digest}"), &bytes)?;
        let config = m.read_blob(manifest.config().digest().as_ref())?;
        let mut layers = Vec::new();
        for l in manifest.layers() {
            let ld = l.digest().to_string();
            layers.push(LayerSource {
                member: m.blob_name(&ld)?,
                digest: Some(ld),
                size: Some(l.size()),
                media_type: Some(l.media_type().to_string()),
            });
        }
        let media_type = manifest
            .media_type()
            .as_ref()
            .map(MediaType::to_string)
            .unwrap_or_else(|| man.media_type().to_string());
        out.push(Pending {
            name: digest,
            config,
            manifest: Some((bytes, media_type)),
            layers,
            tags: tag.into_iter().collect(),
        });
    }
    if out.is_empty() {
        return Err(Error::Invalid(
            m.label.clone(),
            format!(
                "index.json names no image for {}/{}",
                Os::Linux,
                Arch::default()
            ),
        ));
    }
    Ok(out)
}

/// One image of a `docker save` tarball's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The images of a `docker save` tarball.
fn docker_images(m: &Members) -> Result<Vec<Pending>> {
    let data = m.read_small("manifest.json")?;
    let list: Vec<DockerImage> = m.parse("manifest.json", &data)?;
    let mut out = Vec::new();
    for img in list {
        let member = |n: &str| {
            member_name(n.as_bytes()).ok().flatten().ok_or_else(|| {
                Error::BadEntry(
                    m.label.clone(),
                    n.to_string(),
                    "invalid member name in manifest.json",
                )
            })
        };
        let config = m.read_small(&member(&img.config)?)?;
        let mut tags = Vec::new();
        for t in img.repo_tags.iter().flatten() {
            tags.push(parse_tag(t)?);
        }
        let mut layers = Vec::new();
        for l in &img.layers {
            let name = member(l)?;
            // Newer docker writes layers as OCI blobs: their name is their
            // digest, which is then checked too.
            let digest = name
                .strip_prefix("blobs/sha256/")
                .map(|h| format!("sha256:{h}"))
                .filter(|d| is_digest(d));
            layers.push(LayerSource {
                member: name,
                digest,
                size: None,
                media_type: None,
            });
        }
        out.push(Pending {
            name: img.config.clone(),
            config,
            manifest: None,
            layers,
            tags,
        });
    }
    Ok(out)
}

/// Ingests the layers of `p` that the store lacks and writes its record.
fn load_image(store: &Store, m: &Members, p: &Pending, added: &mut Added) -> Result<ImageRecord> {
    let cfg: ImageConfiguration = m.parse(&format!("config of image {}", p.name), &p.config)?;
    let diff_ids = cfg.rootfs().diff_ids();
    if diff_ids.len() != p.layers.len() {
        return Err(Error::Invalid(
            m.label.clone(),
            format!(
                "image {}: {} layers but its config lists {} diff ids",
                p.name,
                p.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let chains = chain_ids(diff_ids);
    let opts = extract::Options::default();
    let mut refs = Vec::with_capacity(p.layers.len());
    for (i, l) in p.layers.iter().enumerate() {
        let head = read_head(&mut *m.open(&l.member)?)
            .map_err(|e| Error::CopyEntry(m.label.clone(), l.member.clone(), e))?;
        let sniffed = layer_media_type(&head);
        let media_type = l.media_type.as_deref().unwrap_or(sniffed);
        // An uncompressed docker-save layer is its own diff id.
        let known_blob = l
            .digest
            .clone()
            .or_else(|| (sniffed == MEDIA_LAYER_TAR).then(|| diff_ids[i].clone()));
        if let Some(b) = known_blob
            .as_ref()
            .filter(|b| store.layer_present(&chains[i], b))
        {
            refs.push(LayerRef {
                chain_id: chains[i].clone(),
                diff_id: diff_ids[i].clone(),
                blob: b.clone(),
                media_type: media_type.to_string(),
                size: fs::metadata(store.blob_path(b))
                    .map(|md| md.len())
                    .unwrap_or(0),
            });
            continue;
        }
        let had_layer = store.has_layer(&chains[i]);
        let expect = Expect {
            digest: l.digest.clone(),
            size: l.size,
            diff_id: Some(diff_ids[i].clone()),
            parent: (i > 0).then(|| chains[i - 1].clone()),
            label: Some(match &l.digest {
                Some(d) => d.clone(),
                None => l.member.clone(),
            }),
        };
        let mut r = m.open(&l.member)?;
        let had_blob = known_blob.as_ref().is_some_and(|b| store.has_blob(b));
        let ing = store
            .ingest_layer(&mut *r, &expect, &opts)
            .map_err(|e| Error::Ingest(m.label.clone(), e))?;
        if !had_layer || !had_blob {
            added.0.push((ing.chain_id.clone(), ing.digest.clone()));
        }
        refs.push(LayerRef {
            chain_id: ing.chain_id,
            diff_id: ing.diff_id,
            blob: ing.digest,
            media_type: media_type.to_string(),
            size: ing.size,
        });
    }
    let manifest = p.manifest.as_ref().map(|(b, t)| (b.as_slice(), t.as_str()));
    store
        .add_image(&p.config, manifest, &refs, &[], &p.tags)
        .map_err(|e| Error::Ingest(m.label.clone(), e))
}

/// After a failed load: removes the layers and blobs this run added that
/// no image record uses. Done under the exclusive lock, as `image prune`
/// does, so no other writer is between ingesting a layer and naming it.
fn take_back(store: &Store, added: &Added) {
    if added.0.is_empty() {
        return;
    }
    let Ok(_lock) = store.lock_exclusive() else {
        return;
    };
    let Ok(images) = store.images() else {
        return;
    };
    let mut chains = BTreeSet::new();
    let mut blobs = BTreeSet::new();
    for i in &images {
        blobs.insert(i.id.clone());
        blobs.insert(i.manifest.clone());
        for l in &i.layers {
            chains.insert(l.chain_id.clone());
            blobs.insert(l.blob.clone());
        }
    }
    for (chain, blob) in &added.0 {
        if !chains.contains(chain) {
            let _ = fs::remove_dir_all(store.layer_root(chain));
        }
        if !blobs.contains(blob) {
            let _ = fs::remove_file(store.blob_path(blob));
        }
    }
}

pub fn load(layout: &Layout, a: LoadArgs) -> anyhow::Result<i32> {
    // Loading never draws progress bars, so -q has nothing to silence;
    // "Loaded image" lines are printed either way, as Docker does.
    let _ = a.quiet;
    let store = Store::open(layout)?;
    let label = a
        .input
        .as_ref()
        .map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
    let lock = store.lock_shared()?;
    let mut added = Added::default();
    let result = (|| -> Result<()> {
        let scratch = ScratchDir::create(&store.tmp(), "load")?;
        let members = Members::read(&label, a.input.as_deref(), scratch.path())?;
        let pending = if members.contains("index.json") {
            oci_images(&members)?
        } else if members.contains("manifest.json") {
            docker_images(&members)?
        } else {
            return Err(Error::UnknownFormat(label.clone()));
        };
        // Each image is reported once it is in the store, as Docker does:
        // a later image failing does not take back an earlier one.
        let mut out = io::stdout().lock();
        for p in &pending {
            let rec = load_image(&store, &members, p, &mut added)?;
            let line = if p.tags.is_empty() {
                format!("Loaded image ID: {}\n", rec.id)
            } else {
                p.tags
                    .iter()
                    .map(|t| format!("Loaded image: {}\n", t.familiar()))
                    .collect()
            };
            out.write_all(line.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Error::Write("stdout".into(), e))?;
        }
        Ok(())
    })();
    drop(lock);
    if let Err(e) = result {
        take_back(&store, &added);
        return Err(anyhow::Error::new(e).context("load"));
    }
    Ok(0)
}

// ---------------------------------------------------------------- output

/// Where `save` and `export` write: a temp file next to `-o FILE`, renamed
/// over it only once complete (a failed run leaves an old FILE as it was),
/// or stdout, which must not be a terminal.
enum Output {
    File {
        tmp: PathBuf,
        dest: PathBuf,
        file: File,
        done: bool,
    },
    Stdout(io::Stdout),
}

impl Output {
    fn open(dest: Option<&Path>, cmd: &'static str) -> Result<Output> {
        let Some(dest) = dest else {
            let out = io::stdout();
            if out.is_terminal() {
                return Err(Error::Terminal(cmd));
            }
            return Ok(Output::Stdout(out));
        };
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dir.join(format!(".{base}.{}.tmp", unique_suffix()));
        // 0600: an image or a container's files may hold secrets.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::Create(tmp.clone(), e))?;
        Ok(Output::File {
            tmp,
            dest: dest.to_path_buf(),
            file,
            done: false,
        })
    }

    fn name(&self) -> String {
        match self {
            Output::File { dest, .. } => dest.display().to_string(),
            Output::Stdout(_) => "stdout".into(),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::File { file, .. } => file,
            Output::Stdout(s) => s,
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Output::File { file, .. } => file.as_raw_fd(),
            Output::Stdout(s) => s.as_fd().as_raw_fd(),
        }
    }

    /// Makes the output durable and puts it in place.
    fn finish(mut self) -> Result<()> {
        let name = self.name();
        match &mut self {
            Output::File {
                tmp,
                dest,
                file,
                done,
            } => {
                file.sync_all().map_err(|e| Error::Write(name.clone(), e))?;
                fs::rename(&*tmp, &*dest).map_err(|e| Error::Write(name.clone(), e))?;
                *done = true;
                if let Some(d) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = File::open(d).and_then(|d| d.sync_all());
                }
                Ok(())
            }
            Output::Stdout(s) => s.flush().map_err(|e| Error::Write(name, e)),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File {
            tmp, done: false, ..
        } = self
        {
            let _ = fs::remove_file(tmp);
        }
    }
}

// ---------------------------------------------------------------- save

/// A tar header for a member of a saved archive: root-owned, fixed mtime,
/// so that saving the same images twice gives the same bytes.
fn save_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append_bytes(b: &mut tar::Builder<&mut dyn Write>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = save_header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, name, data)
}

/// Copies a stored blob into the archive, checking on the way that it
/// still is what its name says.
fn append_blob(
    b: &mut tar::Builder<&mut dyn Write>,
    store: &Store,
    image: &str,
    digest: &str,
) -> Result<()> {
    let p = store.blob_path(digest);
    let f = File::open(&p).map_err(|e| Error::ReadFile(p.clone(), e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::ReadFile(p.clone(), e))?
        .len();
    let mut r = DigestReader::new(BufReader::with_capacity(1 << 20, f).take(len));
    let mut h = save_header(tar::EntryType::Regular, 0o644, len);
    b.append_data(&mut h, format!("blobs/sha256/{}", hex(digest)), &mut r)
        .map_err(|e| Error::CopyBlob(digest.to_string(), e))?;
    if r.digest() != digest || r.count() != len {
        return Err(Error::SaveBlob(
            image.to_string(),
            digest.to_string(),
            r.digest(),
        ));
    }
    Ok(())
}

pub fn save(layout: &Layout, a: SaveArgs) -> anyhow::Result<i32> {
    let store = Store::open(layout)?;
    // Shared: no rmi or prune collects a blob while it is being copied.
    let _lock = store.lock_shared()?;
    // Each image once, with the tags it was asked for by.
    let mut images: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
    for arg in &a.images {
        let rec = find(&store, arg)?;
        let tags = store.tags_of(&rec.id)?;
        let tag = Reference::parse(arg)
            .ok()
            .filter(|r| r.digest.is_none() && tags.contains(&r.to_string()));
        match images.iter_mut().find(|(r, _)| r.id == rec.id) {
            Some((_, t)) => t.extend(tag.filter(|x| !t.contains(x))),
            None => images.push((rec, tag.into_iter().collect())),
        }
    }
    let mut out = Output::open(a.output.as_deref(), "save")?;
    let name = out.name();
    write_save(&store, &images, out.writer()).map_err(|e| match e {
        Error::Write(_, err) => Error::Write(name.clone(), err),
        other => other,
    })?;
    out.finish()?;
    Ok(0)
}

fn write_save(
    store: &Store,
    images: &[(ImageRecord, Vec<Reference>)],
    w: &mut dyn Write,
) -> Result<()> {
    let werr = |e| Error::Write(String::new(), e);
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for (rec, tags) in images {
        let manifest_size = fs::metadata(store.blob_path(&rec.manifest))
            .map_err(|e| Error::ReadFile(store.blob_path(&rec.manifest), e))?
            .len();
        let desc = json!({
            "mediaType": rec.manifest_media_type,
            "digest": rec.manifest,
            "size": manifest_size,
        });
        if tags.is_empty() {
            index.push(desc.clone());
        }
        for t in tags {
            let mut d = desc.clone();
            d["annotations"] = json!({
                ANN_REF_NAME: t.to_string(),
                ANN_CONTAINERD_NAME: t.to_string(),
            });
            index.push(d);
        }
        docker.push(DockerImage {
            config: format!("blobs/sha256/{}", hex(&rec.id)),
            repo_tags: Some(tags.iter().map(Reference::familiar).collect()),
            layers: rec
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", hex(&l.blob)))
                .collect(),
        });
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": index,
    });
    // Checked against the spec's types, but written from the JSON value:
    // oci-spec keeps annotations in a HashMap, whose order changes from run
    // to run, and a saved archive should be the same bytes every time.
    let _: ImageIndex = serde_json::from_value(index.clone())
        .map_err(|e| Error::Invalid("(save)".into(), format!("index.json: {e}")))?;
    let index = serde_json::to_vec(&index).expect("index serializes");
    let docker = serde_json::to_vec(&docker).expect("manifest.json serializes");

    // Big writes whatever `w` is (stdout is line buffered).
    let mut bw = io::BufWriter::with_capacity(1 << 20, w);
    let mut b = tar::Builder::new(&mut bw as &mut dyn Write);
    append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
    append_bytes(&mut b, "index.json", &index).map_err(werr)?;
    append_bytes(&mut b, "manifest.json", &docker).map_err(werr)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = save_header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, dir, io::empty()).map_err(werr)?;
    }
    let mut written = BTreeSet::new();
    for (rec, _) in images {
        let blobs = [rec.manifest.clone(), rec.id.clone()]
            .into_iter()
            .chain(rec.layers.iter().map(|l| l.blob.clone()));
        for d in blobs {
            if written.insert(d.clone()) {
                append_blob(&mut b, store, &rec.id, &d)?;
            }
        }
    }
    b.into_inner().and_then(|w| w.flush()).map_err(werr)?;
    bw.flush().map_err(werr)
}

// ---------------------------------------------------------------- import

pub fn import(layout: &Layout, a: ImportArgs) -> anyhow::Result<i32> {
    let tags: Vec<Reference> = a
        .reference
        .as_deref()
        .map(parse_tag)
        .transpose()?
        .into_iter()
        .collect();
    let store = Store::open(layout)?;
    let _lock = store.lock_shared()?;
    let mut input: Box<dyn Read + Send> = if a.file == "-" {
        Box::new(io::stdin())
    } else {
        let p = Path::new(&a.file);
        Box::new(File::open(p).map_err(|e| Error::Open(p.to_path_buf(), e))?)
    };
    let label = if a.file == "-" {
        "stdin"
    } else {
        a.file.as_str()
    };
    let expect = Expect {
        label: Some(label.to_string()),
        ..Default::default()
    };
    let ing = store
        .ingest_layer(&mut *input, &expect, &extract::Options::default())
        .map_err(|e| anyhow::Error::new(e).context("import"))?;
    let created = now();
    let mut history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(format!("hind import {label}"));
    if let Some(m) = &a.message {
        history = history.comment(m.clone());
    }
    let config = ImageConfigurationBuilder::default()
        .created(created)
        .os(Os::Linux)
        .architecture(Arch::default())
        .config(oci_spec::image::Config::default())
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![ing.diff_id.clone()])
                .build()?,
        )
        .history(vec![history.build()?])
        .build()?;
    let config = serde_json::to_vec(&config)?;
    let layer = LayerRef {
        chain_id: ing.chain_id,
        diff_id: ing.diff_id,
        media_type: blob_media_type(&store, &ing.digest)?.to_string(),
        blob: ing.digest,
        size: ing.size,
    };
    let rec = store.add_image(&config, None, &[layer], &[], &tags)?;
    println!("{}", rec.id);
    Ok(0)
}

// ---------------------------------------------------------------- commit

/// The new config of a commit: the image's own, byte for byte apart from
/// the new diff id, one more history entry and `created`. It is edited as
/// JSON rather than through a typed config so that fields oci-spec does not
/// know (Docker's `container_config`, `docker_version`, ...) survive.
fn committed_config(
    base: &[u8],
    diff_id: &str,
    created_by: &str,
    a: &CommitArgs,
) -> std::result::Result<Vec<u8>, String> {
    let mut cfg: Value = serde_json::from_slice(base).map_err(|e| e.to_string())?;
    let obj = cfg.as_object_mut().ok_or("not a JSON object")?;
    let created = now();
    let diff_ids = obj
        .get_mut("rootfs")
        .and_then(|r| r.get_mut("diff_ids"))
        .and_then(Value::as_array_mut)
        .ok_or("no rootfs.diff_ids")?;
    diff_ids.push(Value::String(diff_id.to_string()));
    let mut h = json!({ "created": created, "created_by": created_by });
    if let Some(m) = &a.message {
        h["comment"] = Value::String(m.clone());
    }
    if let Some(au) = &a.author {
        h["author"] = Value::String(au.clone());
        obj.insert("author".into(), Value::String(au.clone()));
    }
    match obj.get_mut("history").and_then(Value::as_array_mut) {
        Some(hist) => hist.push(h),
        None => {
            obj.insert("history".into(), Value::Array(vec![h]));
        }
    }
    obj.insert("created".into(), Value::String(created));
    serde_json::to_vec(&cfg).map_err(|e| e.to_string())
}

/// Removes a file on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

pub fn commit(layout: &Layout, a: CommitArgs) -> anyhow::Result<i32> {
    let tags: Vec<Reference> = a
        .reference
        .as_deref()
        .map(parse_tag)
        .transpose()?
        .into_iter()
        .collect();
    let c = crate::store::resolve(layout, &a.container)?;
    let short = a.container.clone();
    // Only a store image has layers to stack the change on; a directory,
    // a tar or the host root would first have to become a layer itself,
    // which `hind import` already does explicitly.
    let Some(image_id) = c.record.image_id.clone() else {
        let what = match c.record.image.as_str() {
            "/" | "NOIMG" => "the host root /".to_string(),
            other => format!("the image path {other}"),
        };
        return Err(Error::NotStoreImage(short, what).into());
    };
    let store = Store::open(layout)?;
    let _lock = store.lock_shared()?;
    let base = store
        .image(&image_id)
        .map_err(|_| Error::ImageGone(short.clone(), image_id.clone()))?;
    let upper = c.dir.join(paths::UPPER);
    if !upper.is_dir() {
        return Err(Error::NoUpper("commit", short, upper).into());
    }
    // The layer goes through a temp file rather than a pipe: ingesting
    // reads it like any other layer, and nothing runs concurrently.
    let tmp = TempFile(store.tmp().join(format!("commit-{}.tar", unique_suffix())));
    {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp.0)
            .map_err(|e| Error::Create(tmp.0.clone(), e))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        // A running container may change files while they are read (Docker
        // pauses it first); what lands in the layer is each file as read.
        diff::pack_upper(&upper, &mut w)
            .map_err(|e| Error::Pack(short.clone(), upper.clone(), e))?;
        w.flush()
            .map_err(|e| Error::Write(tmp.0.display().to_string(), e))?;
    }
    let mut r = BufReader::with_capacity(
        1 << 20,
        File::open(&tmp.0).map_err(|e| Error::ReadFile(tmp.0.clone(), e))?,
    );
    let expect = Expect {
        parent: base.layers.last().map(|l| l.chain_id.clone()),
        label: Some(format!("changes of container {short}")),
        ..Default::default()
    };
    let ing = store
        .ingest_layer(&mut r, &expect, &extract::Options::default())
        .map_err(|e| anyhow::Error::new(e).context("commit"))?;
    drop(r);
    drop(tmp);
    let base_config = store.config(&base)?;
    let created_by = if c.record.command.is_empty() {
        "hind commit".to_string()
    } else {
        c.record.command.join(" ")
    };
    let config = committed_config(&base_config, &ing.diff_id, &created_by, &a)
        .map_err(|e| Error::BaseConfig(short.clone(), base.id.clone(), e))?;
    let mut layers = base.layers.clone();
    layers.push(LayerRef {
        chain_id: ing.chain_id,
        diff_id: ing.diff_id,
        blob: ing.digest,
        media_type: MEDIA_LAYER_TAR.to_string(),
        size: ing.size,
    });
    let rec = store.add_image(&config, None, &layers, &[], &tags)?;
    println!("{}", rec.id);
    Ok(0)
}

// ---------------------------------------------------------------- export

/// The directories a container's root is made of, top first: its upper
/// dir and the lower dirs of its overlay, or for a container that runs
/// straight on a directory (`--no-overlay`) that directory alone.
fn container_layers(c: &crate::store::Container, name: &str) -> Result<Vec<PathBuf>> {
    let short = name.to_string();
    let cfg = c.dir.join(paths::CONFIG_JSON);
    let spec = oci_spec::runtime::Spec::load(&cfg)
        .map_err(|e| Error::Spec(short.clone(), cfg.clone(), e))?;
    let ann = spec.annotations().clone().unwrap_or_default();
    let mut dirs = Vec::new();
    match ann.get(protocol::init::ANN_OVERLAY_LOWER) {
        Some(lower) => {
            let upper = ann
                .get(protocol::init::ANN_OVERLAY_UPPER)
                .map(PathBuf::from)
                .unwrap_or_else(|| c.dir.join(paths::UPPER));
            if !upper.is_dir() {
                return Err(Error::NoUpper("export", short, upper));
            }
            dirs.push(upper);
            dirs.extend(
                lower
                    .split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
            );
        }
        None => {
            let root = spec
                .root()
                .as_ref()
                .map(|r| r.path().clone())
                .ok_or_else(|| {
                    Error::Export(short.clone(), format!("{} names no root", cfg.display()))
                })?;
            dirs.push(if root.is_absolute() {
                root
            } else {
                c.dir.join(root)
            });
        }
    }
    if dirs.iter().any(|d| d == Path::new("/")) {
        return Err(Error::HostRoot(short));
    }
    Ok(dirs)
}

pub fn export(layout: &Layout, a: ExportArgs) -> anyhow::Result<i32> {
    let c = crate::store::resolve(layout, &a.container)?;
    let short = a.container.clone();
    let dirs = container_layers(&c, &short)?;
    let store = Store::open(layout)?;
    // Shared: the image's layers stay while they are read.
    let _lock = store.lock_shared()?;
    let mut out = Output::open(a.output.as_deref(), "export")?;
    if let [only] = dirs.as_slice() {
        // One directory is already the whole tree: nothing to mount.
        diff::pack_tree(only, out.writer())
            .map_err(|e| Error::Export(short.clone(), format!("{e:#}")))?;
    } else {
        let mnt = ScratchDir::create(&store.tmp(), "export")?;
        export_merged(&short, &dirs, mnt.path(), out.fd())?;
    }
    out.finish()?;
    Ok(0)
}

/// Packs the overlay of `dirs` (top first) into the file open at `out`,
/// from a forked child in its own mount namespace.
fn export_merged(short: &str, dirs: &[PathBuf], mnt: &Path, out: RawFd) -> Result<()> {
    let threads = fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    if threads != 1 {
        return Err(Error::Export(
            short.to_string(),
            format!("cannot fork the export helper from {threads} threads"),
        ));
    }
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Fork(short.to_string(), e))?;
    // SAFETY: the process is single-threaded (checked just above), so the
    // child gets consistent copies of every lock and of the allocator's
    // state; it only makes syscalls, allocates and writes the tar, and
    // leaves with `_exit`, never returning into the parent's code.
    let fork = unsafe { nix::unistd::fork() };
    match fork.map_err(|e| Error::Fork(short.to_string(), e))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let code = match export_child(dirs, mnt, out) {
                Ok(()) => 0,
                Err(msg) => {
                    let mut w = File::from(wr);
                    let _ = w.write_all(msg.as_bytes());
                    1
                }
            };
            // SAFETY: _exit(2) ends the child at once, without running the
            // parent's atexit handlers or flushing its copied stdio buffers
            // (which would write the parent's output twice).
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            let _ = File::from(rd).read_to_string(&mut msg);
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other,
                }
            };
            use nix::sys::wait::WaitStatus;
            match status {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                Ok(WaitStatus::Exited(_, _)) if !msg.is_empty() => {
                    Err(Error::Export(short.to_string(), msg))
                }
                Ok(s) => Err(Error::Export(
                    short.to_string(),
                    format!("the export helper failed: {s:?}"),
                )),
                Err(e) => Err(Error::Export(
                    short.to_string(),
                    format!("wait for the export helper: {e}"),
                )),
            }
        }
    }
}

/// The export helper: a private mount namespace, the overlay mounted
/// read-only at `mnt`, the tree packed into `out`. Returns the error text
/// for the parent.
fn export_child(dirs: &[PathBuf], mnt: &Path, out: RawFd) -> std::result::Result<(), String> {
    let _ = nix::sys::prctl::set_name(c"hind-export");
    // Die with the CLI rather than keep writing for nobody.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // index=off: the upper dir may be the upper dir of the running
    // container's own overlay; with index=on the kernel refuses to use it
    // again (EBUSY), with it off it only warns.
    mount_private_overlay(dirs, None, true, "index=off", mnt)?;
    let dup = nix::unistd::dup(out).map_err(|e| format!("dup output fd: {e}"))?;
    // SAFETY: `dup` was just returned by dup(2) and is owned by nobody
    // else; the File closes it.
    let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    diff::pack_tree(mnt, &mut f).map_err(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(x) = src {
            s.push_str(&format!(": {x}"));
            src = x.source();
        }
        s
    })?;
    f.flush().map_err(|e| format!("write: {e}"))
}

/// For a forked helper (single-threaded, about to exit): unshares the
/// mount namespace, makes it private, and mounts an overlay of `lower` (top
/// first) and `upper`'s upper and work dirs, if any, at `mnt`, read-only
/// if `read_only` (always without `upper`); `opts` are added to the mount
/// options. The mount exists only in the helper's namespace, so it is
/// never visible on the host and needs no unmount; it lasts until the
/// namespace and the last fd open in it are gone. Shared by `export` and
/// `cp`. Returns the error text.
pub(crate) fn mount_private_overlay(
    lower: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    read_only: bool,
    opts: &str,
    mnt: &Path,
) -> std::result::Result<(), String> {
    use nix::mount::{mount, MsFlags};
    // unshare(2) CLONE_NEWNS: a copy of the mount table that dies with
    // this process, so the overlay is never visible on the host and
    // needs no unmount, whatever happens to us.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare the mount namespace: {e}"))?;
    // mount_namespaces(7): with shared propagation our mount would be
    // copied back into the host's namespace; private stops that.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make / private: {e}"))?;
    // The layers are given to the overlay as `/proc/self/fd/N`: short
    // options however deep the image (mount(2) copies one page of them)
    // and no escaping of `:` or `,` in paths. They are opened only now:
    // overlayfs clones each lower dir's mount, which must belong to the
    // mount namespace of the caller (EINVAL for an fd opened before the
    // unshare).
    let open = |d: &Path| {
        File::open(d)
            .map(OwnedFd::from)
            .map_err(|e| format!("open {}: {e}", d.display()))
    };
    let fds = lower
        .iter()
        .map(|d| open(d))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let lowerdir: Vec<String> = fds.iter().map(|f| f.as_raw_fd().to_string()).collect();
    let mut data = format!("lowerdir={}", lowerdir.join(":"));
    let mut flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID;
    let mut upper_fds = Vec::new();
    match upper {
        Some((upper, work)) => {
            upper_fds.push(open(upper)?);
            upper_fds.push(open(work)?);
            data.push_str(&format!(
                ",upperdir={},workdir={}",
                upper_fds[0].as_raw_fd(),
                upper_fds[1].as_raw_fd()
            ));
            if read_only {
                flags |= MsFlags::MS_RDONLY;
            }
        }
        None => flags |= MsFlags::MS_RDONLY,
    }
    if !opts.is_empty() {
        data.push(',');
        data.push_str(opts);
    }
    // The dirs are the fd numbers, relative to here.
    nix::unistd::chdir("/proc/self/fd").map_err(|e| format!("chdir /proc/self/fd: {e}"))?;
    mount(
        Some("overlay"),
        mnt,
        Some("overlay"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| format!("mount overlay on {}: {e}", mnt.display()))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised_and_checked() {
        assert_eq!(member_name(b"./a//b/").unwrap().as_deref(), Some("a/b"));
        assert_eq!(member_name(b"./").unwrap(), None);
        assert!(member_name(b"../x").is_err());
        assert!(member_name(b"a/../../x").is_err());
        assert!(member_name(b"/etc/passwd").is_err());
    }

    #[test]
    fn links_resolve_inside_the_archive_only() {
        assert_eq!(
            link_target("abc/layer.tar", b"../def/layer.tar", true).as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(link_target("a/b", b"x/y", false).as_deref(), Some("x/y"));
        assert_eq!(link_target("a", b"../../etc/passwd", true), None);
        assert_eq!(link_target("a", b"/etc/passwd", true), None);
    }

    #[test]
    fn media_type_from_magic() {
        assert_eq!(layer_media_type(&[0x1f, 0x8b, 8, 0]), MEDIA_LAYER_GZIP);
        assert_eq!(
            layer_media_type(&[0x28, 0xb5, 0x2f, 0xfd]),
            MEDIA_LAYER_ZSTD
        );
        assert_eq!(layer_media_type(b"etc/"), MEDIA_LAYER_TAR);
        assert_eq!(layer_media_type(b""), MEDIA_LAYER_TAR);
    }

    #[test]
    fn commit_config_keeps_unknown_fields() {
        let base = br#"{"architecture":"amd64","os":"linux","docker_version":"x","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:a"]},"history":[{"created_by":"base"}]}"#;
        let a = CommitArgs {
            message: Some("msg".into()),
            author: Some("me".into()),
            container: "c".into(),
            reference: None,
        };
        let out = committed_config(base, "sha256:b", "touch /x", &a).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["docker_version"], "x");
        assert_eq!(v["config"]["Cmd"][0], "sh");
        assert_eq!(v["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b"]));
        assert_eq!(v["history"][1]["comment"], "msg");
        assert_eq!(v["history"][1]["created_by"], "touch /x");
        assert_eq!(v["author"], "me");
    }
}
