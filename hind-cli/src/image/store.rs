//! The image store under `<root>/images`:
//!
//! ```text
//! blobs/sha256/<hex>        manifests, configs and layer blobs, by digest
//! layers/<chain hex>/diff/  a layer extracted once, shared by every image
//! layers/<chain hex>/layer.json
//! db/<config hex>.json      one record per image (its id is its config digest)
//! refs.json                 name:tag -> image id
//! tmp/                      scratch space for downloads and extractions
//! ```
//!
//! Everything is written in `tmp/` and renamed into place only once it is
//! complete and verified, so an interrupted pull or load never leaves
//! something that looks finished: a layer dir exists only with its
//! `layer.json`, and an image record only once all its layers do. Writers
//! (pull, load, commit, run) hold `lock` shared for their whole run;
//! deleters (rmi, prune) hold it exclusive, so a layer that was just
//! extracted cannot be collected before the record that uses it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};
use protocol::paths::Layout;
use serde::{Deserialize, Serialize};

use super::extract::{self, DigestReader, DigestWriter};
use super::reference::{is_digest, Reference};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
    #[error("write {0}")]
    Write(PathBuf, #[source] io::Error),
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("remove {0}")]
    Remove(PathBuf, #[source] io::Error),
    #[error("lock {0}")]
    Lock(#[from] protocol::lockfile::Error),
    #[error("parse {0}: {1}")]
    Parse(PathBuf, String),
    #[error("blob {digest}: digest mismatch: the content hashes to {actual}")]
    BlobDigest { digest: String, actual: String },
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    BlobSize {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "layer {layer}: uncompressed content hashes to {actual}, the image config says {expected}"
    )]
    DiffId {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("layer {0}")]
    Extract(String, #[source] extract::Error),
    #[error("layer {0}: read")]
    Stream(String, #[source] io::Error),
    #[error("image {0}: missing layer {1}")]
    MissingLayer(String, String),
    #[error("image config {0}: {1}")]
    Config(String, String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a layer in an image record points at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRef {
    pub chain_id: String,
    pub diff_id: String,
    /// The blob as distributed (compressed or not); `save` writes it back.
    pub blob: String,
    pub media_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// Digest of the manifest blob stored for this image.
    pub manifest: String,
    pub manifest_media_type: String,
    /// `registry/repo@sha256:...` of the manifest as pulled.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Bottom layer first.
    pub layers: Vec<LayerRef>,
    /// The config's `created`, if any.
    pub created: Option<String>,
    /// When it entered this store.
    pub added: String,
    /// Bytes of the unpacked layers.
    pub size: u64,
}

impl ImageRecord {
    /// `sha256:` and 12 hex digits shortened as `docker images` does.
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

/// Written next to a layer's `diff/` before the layer is renamed into place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerMeta {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    /// Bytes of regular files in the layer.
    pub size: u64,
}

/// What the caller knows of a layer before ingesting it; everything given
/// is verified against the stream.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub diff_id: Option<String>,
    /// The chain id of the layer below, None for the bottom one.
    pub parent: Option<String>,
    /// How the layer is named in errors (its digest if unset).
    pub label: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Ingested {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub chain_id: String,
}

pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// chain_id(L0) = diff_id(L0); chain_id(Ln) = sha256(chain_id(Ln-1) + " " + diff_id(Ln)),
/// as the OCI image spec defines it.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => extract::sha256_digest(format!("{p} {diff_id}").as_bytes()),
    }
}

pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = chain_id(out.last().map(String::as_str), d);
        out.push(c);
    }
    out
}

/// `<pid>-<nanos>-<n>`: unique scratch names whose pid
/// `sweep_dead_scratch` reads back to tell a dead writer's files.
pub(crate) fn unique_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::Create(p.to_path_buf(), e))
}

/// A held flock on the store; released on drop.
pub struct StoreLock {
    _lock: Flock<File>,
}

fn flock(path: &Path, arg: FlockArg) -> Result<StoreLock> {
    let lock = protocol::lockfile::flock(path, arg)?.ok_or_else(|| {
        protocol::lockfile::Error::Lock(path.to_path_buf(), nix::errno::Errno::EWOULDBLOCK)
    })?;
    Ok(StoreLock { _lock: lock })
}

/// Reads from `inner` and writes everything read into `sink` as well.
struct Tee<'a, R> {
    inner: R,
    sink: &'a mut DigestWriter<io::BufWriter<File>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Removes a scratch path on drop unless disarmed.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

fn fsync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Write(p.to_path_buf(), e))
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens the store of `layout`, making its directories (0700: image
    /// content may hold secrets and setuid files) on first use.
    pub fn open(layout: &Layout) -> Result<Store> {
        let dir = layout.images();
        for sub in ["blobs/sha256", "layers", "db", "tmp"] {
            mkdir(&dir.join(sub))?;
        }
        Ok(Store { dir })
    }

    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Held by everything that adds to the store or starts a container
    /// from it. Taking it also clears scratch files of writers that died
    /// (a killed pull), so they do not wait for `image prune`.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        let l = flock(&self.dir.join("lock"), FlockArg::LockShared)?;
        self.sweep_dead_scratch();
        Ok(l)
    }

    /// Removes `tmp/<kind>-<pid>-...` entries whose pid is gone. A live
    /// writer's files are never touched: its pid exists.
    fn sweep_dead_scratch(&self) {
        let Ok(rd) = fs::read_dir(self.tmp()) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.split('-').nth(1))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                .map_or_else(|e| e == nix::errno::Errno::EPERM, |()| true);
            if !alive {
                let p = e.path();
                let _ = if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }

    /// Held by everything that deletes from the store.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        flock(&self.dir.join("lock"), FlockArg::LockExclusive)
    }

    fn refs_lock(&self) -> Result<StoreLock> {
        flock(&self.dir.join("refs.lock"), FlockArg::LockExclusive)
    }

    // ---- blobs

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(hex(digest))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a small blob (a manifest or config) and checks its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        let data = fs::read(&p).map_err(|e| Error::Read(p.clone(), e))?;
        let actual = extract::sha256_digest(&data);
        if actual != digest {
            return Err(Error::BlobDigest {
                digest: digest.to_string(),
                actual,
            });
        }
        Ok(data)
    }

    /// Stores `data` (verified against `expect` if given) and returns its
    /// digest.
    pub fn put_blob(&self, data: &[u8], expect: Option<&str>) -> Result<String> {
        let digest = extract::sha256_digest(data);
        if let Some(e) = expect {
            if e != digest {
                return Err(Error::BlobDigest {
                    digest: e.to_string(),
                    actual: digest,
                });
            }
        }
        let dest = self.blob_path(&digest);
        if dest.is_file() {
            return Ok(digest);
        }
        let tmp = self.tmp().join(format!("blob-{}", unique_suffix()));
        let mut guard = Scratch(Some(tmp.clone()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::Create(tmp.clone(), e))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::Write(tmp.clone(), e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::Write(dest.clone(), e))?;
        guard.0 = None;
        fsync_dir(dest.parent().expect("blob dir"))?;
        Ok(digest)
    }

    // ---- layers

    pub fn layer_root(&self, chain_id: &str) -> PathBuf {
        self.dir.join("layers").join(hex(chain_id))
    }

    /// The extracted files of a layer: an overlay lower dir.
    pub fn layer_dir(&self, chain_id: &str) -> PathBuf {
        self.layer_root(chain_id).join("diff")
    }

    pub fn has_layer(&self, chain_id: &str) -> bool {
        self.layer_root(chain_id).join("layer.json").is_file()
    }

    pub fn layer_meta(&self, chain_id: &str) -> Result<LayerMeta> {
        let p = self.layer_root(chain_id).join("layer.json");
        let data = fs::read(&p).map_err(|e| Error::Read(p.clone(), e))?;
        serde_json::from_slice(&data).map_err(|e| Error::Parse(p, e.to_string()))
    }

    /// Streams a layer blob (gzip, zstd or plain tar) into the store: the
    /// blob is kept as it came, the tar is extracted as it arrives, and
    /// both digests are checked at the end. Nothing is renamed into place
    /// unless everything matched; on any error the scratch files are gone.
    pub fn ingest_layer(
        &self,
        r: &mut (dyn Read + Send),
        expect: &Expect,
        opts: &extract::Options,
    ) -> Result<Ingested> {
        let label = expect
            .label
            .clone()
            .or_else(|| expect.digest.clone())
            .unwrap_or_else(|| "(unnamed)".into());
        let suffix = unique_suffix();
        let blob_tmp = self.tmp().join(format!("blob-{suffix}"));
        let layer_tmp = self.tmp().join(format!("layer-{suffix}"));
        let _blob_guard = Scratch(Some(blob_tmp.clone()));
        let mut layer_guard = Scratch(Some(layer_tmp.clone()));
        let diff = layer_tmp.join("diff");
        // The layer's own dir is root's alone like the rest of the store;
        // `diff` is the image's root dir and gets its mode from the layer.
        for (dir, mode, recursive) in [(&layer_tmp, 0o700, true), (&diff, 0o755, false)] {
            fs::DirBuilder::new()
                .recursive(recursive)
                .mode(mode)
                .create(dir)
                .map_err(|e| Error::Create(dir.clone(), e))?;
        }

        let blob_file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&blob_tmp)
            .map_err(|e| Error::Create(blob_tmp.clone(), e))?;
        let mut blob = DigestWriter::new(io::BufWriter::with_capacity(1 << 20, blob_file));
        let stats;
        let mut diff_id = None;
        {
            let tee = Tee {
                inner: &mut *r,
                sink: &mut blob,
            };
            let (kind, tar) = extract::decompress_kind(Box::new(tee))
                .map_err(|e| Error::Extract(label.clone(), e))?;
            if kind == extract::Compression::None {
                // The blob is the tar: its digest, taken below, is the diff
                // id, and hashing the same bytes twice would be wasted.
                let mut tar = tar;
                stats = extract::unpack(&mut tar, &diff, opts)
                    .map_err(|e| Error::Extract(label.clone(), e))?;
            } else {
                let mut tar = DigestReader::new(tar);
                stats = extract::unpack(&mut tar, &diff, opts)
                    .map_err(|e| Error::Extract(label.clone(), e))?;
                // The tar ends before its stream does (padding, the
                // compressor's trailer): the digests cover every byte.
                io::copy(&mut tar, &mut io::sink()).map_err(|e| Error::Stream(label.clone(), e))?;
                diff_id = Some(tar.digest());
                let mut decoder = tar.into_inner();
                io::copy(&mut decoder, &mut io::sink())
                    .map_err(|e| Error::Stream(label.clone(), e))?;
            }
        }
        // Whatever the decompressor left unread belongs to the blob too.
        io::copy(r, &mut blob).map_err(|e| Error::Stream(label.clone(), e))?;
        let digest = blob.digest();
        let size = blob.count();
        let diff_id = diff_id.unwrap_or_else(|| digest.clone());
        if let Some(d) = &expect.digest {
            if *d != digest {
                return Err(Error::BlobDigest {
                    digest: d.clone(),
                    actual: digest,
                });
            }
        }
        if let Some(s) = expect.size {
            if s != size {
                return Err(Error::BlobSize {
                    digest: label,
                    expected: s,
                    actual: size,
                });
            }
        }
        if let Some(d) = &expect.diff_id {
            if *d != diff_id {
                return Err(Error::DiffId {
                    layer: label,
                    expected: d.clone(),
                    actual: diff_id,
                });
            }
        }
        let mut bw = blob.into_inner();
        bw.flush().map_err(|e| Error::Write(blob_tmp.clone(), e))?;
        let f = bw
            .into_inner()
            .map_err(|e| Error::Write(blob_tmp.clone(), e.into_error()))?;
        f.sync_all()
            .map_err(|e| Error::Write(blob_tmp.clone(), e))?;
        drop(f);

        let chain = chain_id(expect.parent.as_deref(), &diff_id);
        let meta = LayerMeta {
            chain_id: chain.clone(),
            diff_id: diff_id.clone(),
            parent: expect.parent.clone(),
            size: stats.bytes,
        };
        let meta_path = layer_tmp.join("layer.json");
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&meta_path)
            .and_then(|mut f| {
                f.write_all(&serde_json::to_vec_pretty(&meta).expect("meta serializes"))
            })
            .map_err(|e| Error::Write(meta_path.clone(), e))?;
        // One syncfs instead of an fsync per file: the layer's data must be
        // on disk before its name says it is complete.
        let dirfd = File::open(&layer_tmp).map_err(|e| Error::Read(layer_tmp.clone(), e))?;
        nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dirfd))
            .map_err(|e| Error::Write(layer_tmp.clone(), e.into()))?;

        let blob_dest = self.blob_path(&digest);
        if !blob_dest.is_file() {
            fs::rename(&blob_tmp, &blob_dest).map_err(|e| Error::Write(blob_dest.clone(), e))?;
        }
        let dest = self.layer_root(&chain);
        if !self.has_layer(&chain) {
            // A dir without layer.json is a leftover of a crash before the
            // rename finished being durable; ours replaces it.
            if dest.exists() {
                let _ = fs::remove_dir_all(&dest);
            }
            match fs::rename(&layer_tmp, &dest) {
                Ok(()) => layer_guard.0 = None,
                // Someone else finished the same layer first: theirs is
                // just as good, ours is dropped with the guard.
                Err(_) if self.has_layer(&chain) => {}
                Err(e) => return Err(Error::Write(dest, e)),
            }
        }
        fsync_dir(&self.dir.join("layers"))?;
        Ok(Ingested {
            digest,
            size,
            diff_id,
            chain_id: chain,
        })
    }

    /// Records a layer that already exists (same chain id) for a blob we
    /// also already hold: used when a pull finds everything present.
    pub fn layer_present(&self, chain_id: &str, blob: &str) -> bool {
        self.has_layer(chain_id) && self.has_blob(blob)
    }

    // ---- images

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join("db").join(format!("{}.json", hex(id)))
    }

    /// Writes the image record for `config` (whose layers must all be in
    /// the store) and points `tags` at it. `manifest` is the manifest blob
    /// as distributed; without one an OCI manifest is made from `layers`.
    pub fn add_image(
        &self,
        config: &[u8],
        manifest: Option<(&[u8], &str)>,
        layers: &[LayerRef],
        repo_digests: &[String],
        tags: &[Reference],
    ) -> Result<ImageRecord> {
        let id = self.put_blob(config, None)?;
        let cfg: serde_json::Value =
            serde_json::from_slice(config).map_err(|e| Error::Config(id.clone(), e.to_string()))?;
        let (manifest_digest, media_type) = match manifest {
            Some((m, t)) => (self.put_blob(m, None)?, t.to_string()),
            None => {
                let m = oci_manifest(&id, config.len() as u64, layers);
                (
                    self.put_blob(&m, None)?,
                    "application/vnd.oci.image.manifest.v1+json".to_string(),
                )
            }
        };
        let mut size = 0;
        for l in layers {
            if !self.has_layer(&l.chain_id) {
                return Err(Error::MissingLayer(id.clone(), l.chain_id.clone()));
            }
            size += self.layer_meta(&l.chain_id).map(|m| m.size).unwrap_or(0);
        }
        let _refs = self.refs_lock()?;
        let mut rec = ImageRecord {
            id: id.clone(),
            manifest: manifest_digest,
            manifest_media_type: media_type,
            repo_digests: repo_digests.to_vec(),
            layers: layers.to_vec(),
            created: cfg
                .get("created")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            added: protocol::time::rfc3339(std::time::SystemTime::now()),
            size,
        };
        if let Ok(old) = self.image(&id) {
            // The same image again: keep what is known of where it came from.
            for d in old.repo_digests {
                if !rec.repo_digests.contains(&d) {
                    rec.repo_digests.push(d);
                }
            }
            rec.added = old.added;
        }
        self.write_record(&rec)?;
        if !tags.is_empty() {
            let mut refs = self.read_refs()?;
            for t in tags {
                refs.insert(t.to_string(), id.clone());
            }
            self.write_refs(&refs)?;
        }
        Ok(rec)
    }

    fn write_record(&self, rec: &ImageRecord) -> Result<()> {
        let p = self.record_path(&rec.id);
        protocol::record::write_atomic(
            &p,
            &serde_json::to_vec_pretty(rec).expect("record serializes"),
        )
        .map_err(|e| Error::Write(p, io::Error::other(e.to_string())))
    }

    pub fn image(&self, id: &str) -> Result<ImageRecord> {
        let p = self.record_path(id);
        let data = fs::read(&p).map_err(|e| Error::Read(p.clone(), e))?;
        serde_json::from_slice(&data).map_err(|e| Error::Parse(p, e.to_string()))
    }

    /// Every image record, oldest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let db = self.dir.join("db");
        let mut out = Vec::new();
        let rd = match fs::read_dir(&db) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::Read(db, e)),
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(h) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Ok(r) = self.image(&format!("sha256:{h}")) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.added.cmp(&b.added).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `name:tag` (full form) -> image id.
    pub fn read_refs(&self) -> Result<BTreeMap<String, String>> {
        let p = self.dir.join("refs.json");
        match fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| Error::Parse(p, e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Read(p, e)),
        }
    }

    fn write_refs(&self, refs: &BTreeMap<String, String>) -> Result<()> {
        let p = self.dir.join("refs.json");
        protocol::record::write_atomic(
            &p,
            &serde_json::to_vec_pretty(refs).expect("refs serialize"),
        )
        .map_err(|e| Error::Write(p, io::Error::other(e.to_string())))
    }

    /// Tags of image `id`, in full form.
    pub fn tags_of(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .read_refs()?
            .into_iter()
            .filter(|(_, v)| v == id)
            .map(|(k, _)| k)
            .collect())
    }

    pub fn tag(&self, id: &str, r: &Reference) -> Result<()> {
        let _l = self.refs_lock()?;
        let mut refs = self.read_refs()?;
        refs.insert(r.to_string(), id.to_string());
        self.write_refs(&refs)
    }

    /// Removes a tag; returns the id it pointed at.
    pub fn untag(&self, r: &Reference) -> Result<Option<String>> {
        let _l = self.refs_lock()?;
        let mut refs = self.read_refs()?;
        let old = refs.remove(&r.to_string());
        if old.is_some() {
            self.write_refs(&refs)?;
        }
        Ok(old)
    }

    /// Finds an image by reference, `name@digest`, full id or id prefix.
    pub fn lookup(&self, s: &str) -> Result<Option<ImageRecord>> {
        let hexish =
            |x: &str| !x.is_empty() && x.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_digest(s) {
            return Ok(self.image(s).ok());
        }
        if let Ok(r) = Reference::parse(s) {
            if let Some(d) = &r.digest {
                let want = format!("{}@{d}", r.name());
                return Ok(self.images()?.into_iter().find(|i| {
                    i.repo_digests.contains(&want) || (i.manifest == *d && r.tag.is_none())
                }));
            }
            if let Some(id) = self.read_refs()?.get(&r.to_string()) {
                return Ok(self.image(id).ok());
            }
        }
        // An id prefix, as Docker accepts (`s` had no tag, so `latest` was
        // only assumed).
        let prefix = s.strip_prefix("sha256:").unwrap_or(s);
        if hexish(prefix) && prefix.len() >= 4 {
            let matches: Vec<ImageRecord> = self
                .images()?
                .into_iter()
                .filter(|i| hex(&i.id).starts_with(prefix))
                .collect();
            if matches.len() == 1 {
                return Ok(matches.into_iter().next());
            }
        }
        Ok(None)
    }

    pub fn config(&self, rec: &ImageRecord) -> Result<Vec<u8>> {
        self.read_blob(&rec.id)
    }

    /// Overlay lower dirs of an image, top layer first.
    pub fn lower_dirs(&self, rec: &ImageRecord) -> Result<Vec<PathBuf>> {
        let mut out = Vec::with_capacity(rec.layers.len());
        for l in rec.layers.iter().rev() {
            if !self.has_layer(&l.chain_id) {
                return Err(Error::MissingLayer(rec.id.clone(), l.chain_id.clone()));
            }
            out.push(self.layer_dir(&l.chain_id));
        }
        Ok(out)
    }

    /// Deletes an image record (the caller holds the exclusive lock and
    /// has removed its tags). Its layers and blobs go with [`Store::gc`].
    pub fn delete_image(&self, id: &str) -> Result<()> {
        let p = self.record_path(id);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Remove(p, e)),
        }
    }

    /// Removes layers and blobs no image record refers to and everything
    /// in `tmp/`; the caller holds the exclusive lock, so no pull or load
    /// is between writing a layer and writing its record. Returns the
    /// bytes freed.
    pub fn gc(&self) -> Result<u64> {
        let images = self.images()?;
        let mut layers = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        for i in &images {
            blobs.insert(hex(&i.id).to_string());
            blobs.insert(hex(&i.manifest).to_string());
            for l in &i.layers {
                layers.insert(hex(&l.chain_id).to_string());
                blobs.insert(hex(&l.blob).to_string());
            }
        }
        let mut freed = 0u64;
        let sweep = |dir: PathBuf, keep: &BTreeSet<String>, freed: &mut u64| -> Result<()> {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::Read(dir, e)),
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) {
                    continue;
                }
                let p = e.path();
                *freed += du(&p);
                let r = if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(|err| Error::Remove(p, err))?;
            }
            Ok(())
        };
        sweep(self.dir.join("layers"), &layers, &mut freed)?;
        sweep(self.dir.join("blobs/sha256"), &blobs, &mut freed)?;
        sweep(self.tmp(), &BTreeSet::new(), &mut freed)?;
        Ok(freed)
    }
}

/// Disk use of a tree, without following symlinks.
pub fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = md.blocks() * 512;
    if md.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                n += du(&e.path());
            }
        }
    }
    n
}

/// An OCI image manifest for a config and layers we hold.
pub fn oci_manifest(config: &str, config_size: u64, layers: &[LayerRef]) -> Vec<u8> {
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": config_size,
        },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type,
            "digest": l.blob,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&m).expect("manifest serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], extract::sha256_digest(format!("{a} {b}").as_bytes()));
    }
}
