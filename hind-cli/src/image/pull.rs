//! `hind pull` and the pulls `hind run` starts. A reference resolves to a
//! manifest (through an index or manifest list, for the wanted platform);
//! the config is fetched and verified; the layers the store lacks are
//! streamed into it on a few threads, each extracted while its bytes
//! arrive and verified (digest, size, diff id) before anything is renamed
//! into place. The image record and its tag are written last, so a pull
//! that fails or is killed leaves no image behind, only scratch files in
//! the store's `tmp/` and complete, verified layers.

use std::io::{self, IsTerminal, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use protocol::paths::Layout;
use serde_json::Value;
use ureq::http::Response;
use ureq::Body;

use super::extract;
use super::reference::{is_digest, Reference};
use super::registry::{self, Client};
use super::store::{self, Expect, ImageRecord, LayerRef, Store};
use crate::cli::PullArgs;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The manifest types understood here, for `Accept`. Docker's schema 1 is
/// left out: registries convert for clients that do not ask for it.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Layer media types whose blob is a tar, gzip'd tar or zstd'd tar (the
/// store tells them apart by their magic bytes).
const LAYER_TYPES: [&str; 5] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];

/// Foreign (Windows base) and non-distributable layers live elsewhere than
/// the registry and come with licence terms: not fetched.
const FOREIGN_LAYER_TYPES: [&str; 4] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// The OCI distribution spec's limit for manifests a registry must accept.
const MAX_MANIFEST: u64 = 4 << 20;
/// Configs are small; one bigger than this is not a config.
const MAX_CONFIG: u64 = 32 << 20;
/// Layers downloaded at once: enough to fill a link with a few streams
/// without starving the extraction of CPU.
const PARALLEL: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Names the registry itself (and says to run `hind login` when that
    /// is what is missing).
    #[error(transparent)]
    Client(registry::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
    #[error("image {image}: not found in registry {registry}")]
    NotFound { image: String, registry: String },
    #[error("image {image}: pull access denied: the repository does not exist or needs `hind login {registry}`")]
    Denied { image: String, registry: String },
    #[error("image {image}: {what}")]
    Registry {
        image: String,
        what: String,
        #[source]
        source: Box<registry::Error>,
    },
    #[error("image {image}: read {what}")]
    Read {
        image: String,
        what: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error(
        "image {image}: manifest {reference}: content hashes to {actual}, expected {expected}"
    )]
    ManifestDigest {
        image: String,
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("image {image}: manifest {reference}: {why}")]
    BadManifest {
        image: String,
        reference: String,
        why: String,
    },
    #[error("image {image}: no manifest for platform {wanted} (available: {available})")]
    NoPlatform {
        image: String,
        wanted: String,
        available: String,
    },
    #[error("image {image}: built for {actual}, not for the requested {wanted}")]
    WrongPlatform {
        image: String,
        wanted: String,
        actual: String,
    },
    #[error("image {image}: config {digest}: {why}")]
    BadConfig {
        image: String,
        digest: String,
        why: String,
    },
    #[error("image {image}: layer {digest}: {why}")]
    BadLayer {
        image: String,
        digest: String,
        why: String,
    },
    #[error("image {image}: layer {digest}: digest mismatch: the content hashes to {actual}")]
    LayerDigest {
        image: String,
        digest: String,
        actual: String,
    },
    #[error("image {image}: layer {digest}: size mismatch: the manifest says {expected} bytes, got {actual}")]
    LayerSize {
        image: String,
        digest: String,
        expected: u64,
        actual: u64,
    },
    /// The store's error names the layer.
    #[error("image {image}")]
    Ingest {
        image: String,
        #[source]
        source: store::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `os/arch[/variant]`; the host's when None.
    pub platform: Option<String>,
    pub quiet: bool,
}

/// What a pull did, for the summary lines.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub record: ImageRecord,
    /// Digest of the manifest or index the reference resolved to.
    pub digest: String,
    /// The reference already named this image before the pull.
    pub up_to_date: bool,
}

// ---- platforms

/// `os/arch[/variant]` as in an index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Go's names for architectures (what images use) from the kernel's and
/// Rust's.
fn norm_arch(a: &str) -> String {
    match a.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" | "i686" | "x86" => "386".into(),
        "powerpc64le" => "ppc64le".into(),
        other => other.into(),
    }
}

/// arm64 images say `v8` or nothing, meaning the same.
fn norm_variant(arch: &str, v: Option<&str>) -> Option<String> {
    match v.map(str::to_ascii_lowercase) {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) if arch == "arm64" && v == "v8" => None,
        Some(v) => Some(v),
    }
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::BadPlatform(s.to_string()));
        }
        let architecture = norm_arch(parts[1]);
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            variant: norm_variant(&architecture, parts.get(2).copied()),
            architecture,
        })
    }

    /// Linux on this machine's architecture, any variant.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: norm_arch(std::env::consts::ARCH),
            variant: None,
        }
    }

    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let arch = norm_arch(arch);
        self.os.eq_ignore_ascii_case(os)
            && self.architecture == arch
            && (self.variant.is_none() || self.variant == norm_variant(&arch, variant))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn describe(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

/// The entry of `idx` for `want`: an exact variant first, then (when no
/// variant was asked for) the first entry of that os and architecture.
fn select<'i>(idx: &'i ImageIndex, want: &Platform) -> std::result::Result<&'i Descriptor, String> {
    let mut best: Option<&Descriptor> = None;
    for d in idx.manifests() {
        let Some(p) = d.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        if !want.matches(&os, &arch, p.variant().as_deref()) {
            continue;
        }
        let exact = norm_variant(&norm_arch(&arch), p.variant().as_deref()) == want.variant;
        if exact {
            return Ok(d);
        }
        best = best.or(Some(d));
    }
    best.ok_or_else(|| {
        let mut seen: Vec<String> = idx
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| {
                describe(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            })
            // Attestation manifests of buildx are "unknown/unknown".
            .filter(|s| !s.starts_with("unknown/"))
            .collect();
        seen.dedup();
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    })
}

// ---- progress

/// One bar per layer on a terminal, nothing otherwise.
struct Progress {
    multi: Option<MultiProgress>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates here are valid")
        .progress_chars("=> ")
}

const STYLE_LINE: &str = "{prefix}: {msg}";
const STYLE_BAR: &str = "{prefix}: {msg} [{bar:40}] {decimal_bytes}/{decimal_total_bytes}";

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    fn line(&self, s: &str) {
        if let Some(m) = &self.multi {
            let _ = m.println(s);
        }
    }

    /// A bar for the layer `digest`, labelled with its first 12 hex digits
    /// as Docker does.
    fn bar(&self, digest: &str, size: u64) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let short: String = store::hex(digest).chars().take(12).collect();
        m.add(
            ProgressBar::new(size)
                .with_style(style(STYLE_LINE))
                .with_prefix(short),
        )
    }
}

/// Counts what passes into the bar, and stops the stream when another
/// layer failed (the pull is lost anyway; no point finishing this one).
struct Watched<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
    abort: &'a AtomicBool,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other("pull cancelled: another layer failed"));
        }
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

// ---- the pull

/// A fetched manifest or index, verified against the digest it was asked
/// by (or announced with).
#[derive(Clone)]
struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: String,
    json: Value,
}

impl Fetched {
    fn is_index(&self) -> bool {
        self.media_type == MEDIA_OCI_INDEX || self.media_type == MEDIA_DOCKER_LIST
    }
}

/// One layer of the manifest, with what the config says it must unpack to.
struct Job {
    digest: String,
    size: u64,
    media_type: String,
    diff_id: String,
    chain_id: String,
    parent: Option<String>,
}

struct Puller<'a> {
    client: Client,
    store: &'a Store,
    r: &'a Reference,
    /// `r` in full, for errors.
    image: String,
}

impl Puller<'_> {
    fn registry_error(&self, what: &str, e: registry::Error) -> Error {
        match e {
            registry::Error::Denied(registry) => Error::Denied {
                image: self.image.clone(),
                registry,
            },
            e @ registry::Error::AuthRequired(_) => Error::Client(e),
            source => Error::Registry {
                image: self.image.clone(),
                what: what.to_string(),
                source: Box::new(source),
            },
        }
    }

    /// GETs `path`; anything but 200 is an error, 404 of a manifest
    /// meaning the image does not exist.
    fn get(
        &self,
        what: &str,
        path: &str,
        accept: Option<&str>,
        manifest: bool,
    ) -> Result<Response<Body>> {
        let resp = self
            .client
            .get(path, accept)
            .map_err(|e| self.registry_error(what, e))?;
        match resp.status().as_u16() {
            200 => Ok(resp),
            404 if manifest => Err(Error::NotFound {
                image: self.image.clone(),
                registry: self.client.registry().to_string(),
            }),
            403 => Err(Error::Denied {
                image: self.image.clone(),
                registry: self.client.registry().to_string(),
            }),
            _ => {
                Err(self
                    .registry_error(what, self.client.status_error(resp, &self.client.url(path))))
            }
        }
    }

    fn bad_manifest(&self, reference: &str, why: impl Into<String>) -> Error {
        Error::BadManifest {
            image: self.image.clone(),
            reference: reference.to_string(),
            why: why.into(),
        }
    }

    /// Fetches the manifest or index `reference` (a tag or digest). Its
    /// bytes must hash to `expect` (an index entry's digest), else to the
    /// digest it was asked by, else to what the registry announced in
    /// `Docker-Content-Digest`.
    fn manifest(&self, reference: &str, expect: Option<(&str, u64)>) -> Result<Fetched> {
        let what = format!("manifest {reference}");
        let path = format!("/v2/{}/manifests/{reference}", self.r.repository);
        let resp = self.get(&what, &path, Some(ACCEPT), true)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        };
        let announced = header("docker-content-digest").filter(|d| is_digest(d));
        let content_type = header("content-type").unwrap_or_default();
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|source| Error::Read {
                image: self.image.clone(),
                what,
                source: Box::new(source),
            })?;
        let digest = extract::sha256_digest(&bytes);
        let expected = expect
            .map(|(d, _)| d.to_string())
            .or_else(|| is_digest(reference).then(|| reference.to_string()))
            .or(announced);
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::ManifestDigest {
                    image: self.image.clone(),
                    reference: reference.to_string(),
                    expected: e,
                    actual: digest,
                });
            }
        }
        if let Some((_, size)) = expect {
            if bytes.len() as u64 != size {
                return Err(self.bad_manifest(
                    reference,
                    format!("{} bytes, the index says {size}", bytes.len()),
                ));
            }
        }
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.bad_manifest(reference, format!("not JSON: {e}")))?;
        if json.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
            return Err(self.bad_manifest(reference, "Docker schema 1 manifests are not supported"));
        }
        let known = |t: &str| {
            [
                MEDIA_OCI_INDEX,
                MEDIA_OCI_MANIFEST,
                MEDIA_DOCKER_LIST,
                MEDIA_DOCKER_MANIFEST,
            ]
            .contains(&t)
        };
        // The field inside the document is what was signed; registries
        // that serve `application/json` leave only the shape to go by.
        let media_type = match json.get("mediaType").and_then(Value::as_str) {
            Some(t) => t.to_string(),
            None if known(&content_type) => content_type,
            None if json.get("manifests").is_some() => MEDIA_OCI_INDEX.to_string(),
            None => MEDIA_OCI_MANIFEST.to_string(),
        };
        if !known(&media_type) {
            return Err(
                self.bad_manifest(reference, format!("unsupported media type {media_type}"))
            );
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest,
            json,
        })
    }

    /// The config blob: from the store if it is there (verified on read),
    /// else from the registry, verified and stored.
    fn config(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let digest = d.digest().to_string();
        let bad = |why: String| Error::BadConfig {
            image: self.image.clone(),
            digest: digest.clone(),
            why,
        };
        if !is_digest(&digest) {
            return Err(bad("only sha256 digests are supported".into()));
        }
        if d.size() > MAX_CONFIG {
            return Err(bad(format!("{} bytes is too large for a config", d.size())));
        }
        if self.store.has_blob(&digest) {
            if let Ok(b) = self.store.read_blob(&digest) {
                return Ok(b);
            }
        }
        let what = format!("config {digest}");
        let path = format!("/v2/{}/blobs/{digest}", self.r.repository);
        let resp = self.get(&what, &path, None, false)?;
        let bytes = resp
            .into_body()
            .with_config()
            .limit(d.size() + 1)
            .read_to_vec()
            .map_err(|source| Error::Read {
                image: self.image.clone(),
                what,
                source: Box::new(source),
            })?;
        let actual = extract::sha256_digest(&bytes);
        if actual != digest {
            return Err(bad(format!(
                "digest mismatch: the content hashes to {actual}"
            )));
        }
        if bytes.len() as u64 != d.size() {
            return Err(bad(format!(
                "size mismatch: the manifest says {} bytes, got {}",
                d.size(),
                bytes.len()
            )));
        }
        self.store.put_blob(&bytes, Some(&digest))?;
        Ok(bytes)
    }

    /// Streams one layer into the store.
    fn layer(&self, j: &Job, bar: &ProgressBar, abort: &AtomicBool) -> Result<()> {
        bar.set_style(style(STYLE_BAR));
        bar.set_message("Downloading");
        let what = format!("layer {}", j.digest);
        let path = format!("/v2/{}/blobs/{}", self.r.repository, j.digest);
        let resp = self.get(&what, &path, None, false)?;
        let body = resp.into_body().into_reader();
        // One byte more than announced is enough to know it is too much: a
        // registry cannot fill the disk by never ending a blob.
        let mut reader = Watched {
            inner: body.take(j.size + 1),
            bar,
            abort,
        };
        let expect = Expect {
            digest: Some(j.digest.clone()),
            size: Some(j.size),
            diff_id: Some(j.diff_id.clone()),
            parent: j.parent.clone(),
            label: Some(j.digest.clone()),
        };
        // Device nodes are refused: an image from a registry is not
        // trusted with host hardware.
        let opts = extract::Options::default();
        match self.store.ingest_layer(&mut reader, &expect, &opts) {
            Ok(_) => {
                bar.set_style(style(STYLE_LINE));
                bar.finish_with_message("Pull complete");
                Ok(())
            }
            Err(store::Error::BlobDigest { actual, .. }) => Err(Error::LayerDigest {
                image: self.image.clone(),
                digest: j.digest.clone(),
                actual,
            }),
            Err(store::Error::BlobSize {
                expected, actual, ..
            }) => Err(Error::LayerSize {
                image: self.image.clone(),
                digest: j.digest.clone(),
                expected,
                actual,
            }),
            Err(source) => Err(Error::Ingest {
                image: self.image.clone(),
                source,
            }),
        }
    }

    /// Fetches every layer the store lacks, `PARALLEL` at a time. The
    /// first failure stops the others and is the one reported.
    fn layers(&self, jobs: &[Job], progress: &Progress) -> Result<()> {
        let bars: Vec<ProgressBar> = jobs
            .iter()
            .map(|j| progress.bar(&j.digest, j.size))
            .collect();
        let mut todo = Vec::new();
        for (i, j) in jobs.iter().enumerate() {
            if self.store.layer_present(&j.chain_id, &j.digest) {
                bars[i].finish_with_message("Already exists");
            } else {
                bars[i].set_message("Waiting");
                todo.push(i);
            }
        }
        let next = AtomicUsize::new(0);
        let abort = AtomicBool::new(false);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..PARALLEL.min(todo.len()) {
                s.spawn(|| loop {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(e) = self.layer(&jobs[i], &bars[i], &abort) {
                        bars[i].abandon_with_message("Failed");
                        // Only the first failure counts: the others may be
                        // this one's cancellation.
                        if !abort.swap(true, Ordering::Relaxed) {
                            *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        }
                        break;
                    }
                });
            }
        });
        match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The layers of manifest `m` checked against config `cfg`.
    fn jobs(
        &self,
        m: &ImageManifest,
        cfg: &ImageConfiguration,
        config_digest: &str,
    ) -> Result<Vec<Job>> {
        let diff_ids = cfg.rootfs().diff_ids();
        if diff_ids.len() != m.layers().len() {
            return Err(Error::BadConfig {
                image: self.image.clone(),
                digest: config_digest.to_string(),
                why: format!(
                    "{} diff ids for the manifest's {} layers",
                    diff_ids.len(),
                    m.layers().len()
                ),
            });
        }
        if let Some(bad) = diff_ids.iter().find(|d| !is_digest(d)) {
            return Err(Error::BadConfig {
                image: self.image.clone(),
                digest: config_digest.to_string(),
                why: format!("invalid diff id {bad:?}"),
            });
        }
        let chains = store::chain_ids(diff_ids);
        let mut jobs = Vec::with_capacity(diff_ids.len());
        for (i, d) in m.layers().iter().enumerate() {
            let digest = d.digest().to_string();
            let media_type = d.media_type().to_string();
            let bad = |why: String| Error::BadLayer {
                image: self.image.clone(),
                digest: digest.clone(),
                why,
            };
            if FOREIGN_LAYER_TYPES.contains(&media_type.as_str()) {
                return Err(bad(format!(
                    "{media_type}: foreign and non-distributable layers are not supported"
                )));
            }
            if !LAYER_TYPES.contains(&media_type.as_str()) {
                return Err(bad(format!("unsupported media type {media_type}")));
            }
            if !is_digest(&digest) {
                return Err(bad("only sha256 digests are supported".into()));
            }
            jobs.push(Job {
                digest,
                size: d.size(),
                media_type,
                diff_id: diff_ids[i].clone(),
                chain_id: chains[i].clone(),
                parent: i.checked_sub(1).map(|p| chains[p].clone()),
            });
        }
        Ok(jobs)
    }
}

/// Pulls `r` into `store` and says what happened; prints only progress
/// (bars on a terminal unless `quiet`).
pub fn pull_image(layout: &Layout, store: &Store, r: &Reference, o: &Options) -> Result<Pulled> {
    let wanted = o.platform.as_deref().map(Platform::parse).transpose()?;
    let platform = wanted.clone().unwrap_or_else(Platform::host);
    // Held until the record is written: an `rmi` or `prune` must not
    // collect the layers this pull finds present or has just added.
    let _lock = store.lock_shared()?;
    let p = Puller {
        client: Client::new(layout, &r.registry).map_err(Error::Client)?,
        store,
        r,
        image: r.to_string(),
    };
    let progress = Progress::new(!o.quiet && io::stderr().is_terminal());
    progress.line(&format!(
        "{}: Pulling from {}",
        r.manifest_ref(),
        r.repository
    ));

    let top = p.manifest(r.manifest_ref(), None)?;
    let manifest = if top.is_index() {
        let idx: ImageIndex = serde_json::from_value(top.json.clone())
            .map_err(|e| p.bad_manifest(&top.digest, format!("invalid index: {e}")))?;
        let d = select(&idx, &platform).map_err(|available| Error::NoPlatform {
            image: p.image.clone(),
            wanted: platform.to_string(),
            available,
        })?;
        let digest = d.digest().to_string();
        if !is_digest(&digest) {
            return Err(p.bad_manifest(&digest, "only sha256 digests are supported"));
        }
        let m = p.manifest(&digest, Some((&digest, d.size())))?;
        if m.is_index() {
            return Err(p.bad_manifest(&digest, "an index inside an index is not supported"));
        }
        m
    } else {
        top.clone()
    };
    let m: ImageManifest = serde_json::from_value(manifest.json.clone())
        .map_err(|e| p.bad_manifest(&manifest.digest, format!("invalid manifest: {e}")))?;
    let config_digest = m.config().digest().to_string();
    let config_type = m.config().media_type().to_string();
    if config_type != MEDIA_OCI_CONFIG && config_type != MEDIA_DOCKER_CONFIG {
        return Err(p.bad_manifest(
            &manifest.digest,
            format!("not a container image (config media type {config_type})"),
        ));
    }
    let config = p.config(m.config())?;
    let cfg: ImageConfiguration =
        serde_json::from_slice(&config).map_err(|e| Error::BadConfig {
            image: p.image.clone(),
            digest: config_digest.clone(),
            why: e.to_string(),
        })?;
    if let Some(w) = &wanted {
        let (os, arch) = (cfg.os().to_string(), cfg.architecture().to_string());
        if !w.matches(&os, &arch, cfg.variant().as_deref()) {
            return Err(Error::WrongPlatform {
                image: p.image.clone(),
                wanted: w.to_string(),
                actual: describe(&os, &arch, cfg.variant().as_deref()),
            });
        }
    }
    let jobs = p.jobs(&m, &cfg, &config_digest)?;

    // A tag moves to the pulled image; a digest reference has no tag (the
    // tag of `name:tag@digest` is only decoration, as for Docker).
    let tag = (r.digest.is_none() && r.tag.is_some()).then(|| r.clone());
    let repo_digest = r.with_digest(&top.digest).to_string();
    let before = match &tag {
        Some(t) => store.read_refs()?.get(&t.to_string()).cloned(),
        None => store.lookup(&repo_digest)?.map(|i| i.id),
    };
    let up_to_date =
        before.as_deref() == Some(config_digest.as_str()) && store.image(&config_digest).is_ok();

    p.layers(&jobs, &progress)?;
    let refs: Vec<LayerRef> = jobs
        .iter()
        .map(|j| LayerRef {
            chain_id: j.chain_id.clone(),
            diff_id: j.diff_id.clone(),
            blob: j.digest.clone(),
            media_type: j.media_type.clone(),
            size: j.size,
        })
        .collect();
    let record = store.add_image(
        &config,
        Some((&manifest.bytes, &manifest.media_type)),
        &refs,
        std::slice::from_ref(&repo_digest),
        tag.as_slice(),
    )?;
    Ok(Pulled {
        record,
        digest: top.digest,
        up_to_date,
    })
}

/// Docker's two summary lines.
fn summary(r: &Reference, p: &Pulled) -> [String; 2] {
    let status = if p.up_to_date {
        format!("Status: Image is up to date for {}", r.familiar())
    } else {
        format!("Status: Downloaded newer image for {}", r.familiar())
    };
    [format!("Digest: {}", p.digest), status]
}

/// Pulls `r` into `store` and returns the stored image. Unless `quiet`,
/// the summary goes to stderr (this is the pull `hind run` makes, whose
/// stdout belongs to the container).
pub fn pull(layout: &Layout, store: &Store, r: &Reference, o: &Options) -> Result<ImageRecord> {
    let p = pull_image(layout, store, r, o)?;
    if !o.quiet {
        for l in summary(r, &p) {
            eprintln!("{l}");
        }
    }
    Ok(p.record)
}

/// `hind pull [--platform P] [-q] REF`: the summary and, last, the full
/// reference on stdout; with `-q` only the reference.
pub fn pull_cmd(layout: &Layout, a: PullArgs) -> anyhow::Result<i32> {
    let r = Reference::parse(&a.reference)?;
    let store = Store::open(layout)?;
    let o = Options {
        platform: a.platform,
        quiet: a.quiet,
    };
    let p = pull_image(layout, &store, &r, &o)?;
    if !a.quiet {
        for l in summary(&r, &p) {
            println!("{l}");
        }
    }
    println!("{r}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.variant, None);
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "aarch64", None));
        assert!(!p.matches("linux", "amd64", None));
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert!(p.matches("linux", "arm", Some("v7")));
        assert!(!p.matches("linux", "arm", Some("v6")));
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(!h.architecture.is_empty());
    }

    #[test]
    fn index_selection() {
        let entry = |arch: &str, variant: Option<&str>, n: char| {
            let mut p = serde_json::json!({"os": "linux", "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = v.into();
            }
            serde_json::json!({
                "mediaType": MEDIA_OCI_MANIFEST,
                "digest": format!("sha256:{}", n.to_string().repeat(64)),
                "size": 1,
                "platform": p,
            })
        };
        let idx: ImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [
                entry("amd64", None, 'a'),
                entry("arm", Some("v6"), 'b'),
                entry("arm", Some("v7"), 'c'),
                entry("arm64", Some("v8"), 'd'),
            ],
        }))
        .unwrap();
        let pick =
            |s: &str| select(&idx, &Platform::parse(s).unwrap()).map(|d| d.digest().to_string());
        assert!(pick("linux/amd64").unwrap().ends_with('a'));
        assert!(pick("linux/arm/v7").unwrap().ends_with('c'));
        assert!(pick("linux/arm").unwrap().ends_with('b'));
        assert!(pick("linux/arm64").unwrap().ends_with('d'));
        assert_eq!(
            pick("linux/s390x").unwrap_err(),
            "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8"
        );
    }

    #[test]
    fn progress_templates_are_valid() {
        for t in [STYLE_LINE, STYLE_BAR] {
            assert!(ProgressStyle::with_template(t).is_ok());
        }
    }
}
