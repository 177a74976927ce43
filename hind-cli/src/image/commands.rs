//! `hind images`, `rmi`, `tag`, `image prune` and `image inspect`: the
//! commands that only read or rearrange what the store holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context;
use protocol::paths::Layout;
use serde_json::{json, Value};

use super::reference::Reference;
use super::store::{ImageRecord, Store};
use crate::cli::{ImageInspectArgs, ImagePruneArgs, ImagesArgs, RmiArgs, TagArgs};
use crate::format;

/// Image ids used by containers (any state), with one user each for
/// error messages.
fn in_use(layout: &Layout) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for c in crate::store::list(layout) {
        if let Some(id) = &c.record.image_id {
            m.entry(id.clone())
                .or_insert_with(|| c.id[..12].to_string());
        }
    }
    m
}

/// Finds an image or fails naming it.
pub fn find(store: &Store, s: &str) -> anyhow::Result<ImageRecord> {
    store
        .lookup(s)?
        .ok_or_else(|| anyhow::anyhow!("no such image: {s}"))
}

/// Bytes as Docker prints them: 4.26MB, 1.2GB (powers of 1000).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

fn split_tag(full: &str) -> (String, String) {
    match Reference::parse(full) {
        Ok(r) => (r.familiar_name(), r.tag.unwrap_or_else(|| "<none>".into())),
        Err(_) => (full.to_string(), "<none>".into()),
    }
}

fn rows(store: &Store, a: &ImagesArgs) -> anyhow::Result<Vec<Value>> {
    let refs = store.read_refs()?;
    let mut tags: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (r, id) in &refs {
        tags.entry(id.as_str()).or_default().push(r.as_str());
    }
    let filter = a
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .context("images: invalid reference filter")?;
    let explicit_tag = a.reference.as_deref().is_some_and(|r| {
        let last = r.rsplit('/').next().unwrap_or(r);
        last.contains(':')
    });
    let mut out = Vec::new();
    let mut images = store.images()?;
    images.reverse(); // newest first, as Docker lists them
    for img in images {
        let names: Vec<(String, String)> = match tags.get(img.id.as_str()) {
            Some(t) => t.iter().map(|f| split_tag(f)).collect(),
            None => vec![("<none>".into(), "<none>".into())],
        };
        for (repo, tag) in names {
            if let Some(f) = &filter {
                if repo != f.familiar_name() {
                    continue;
                }
                if explicit_tag && Some(&tag) != f.tag.as_ref() {
                    continue;
                }
            }
            let digest = img
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
                .unwrap_or_else(|| "<none>".into());
            let id = if a.list.no_trunc {
                img.id.clone()
            } else {
                img.short_id().to_string()
            };
            out.push(json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id,
                "Digest": digest,
                "CreatedAt": img.created.clone().unwrap_or_default(),
                "CreatedSince": format::since(img.created.as_deref())
                    .map(|s| format!("{s} ago"))
                    .unwrap_or_else(|| "N/A".into()),
                "Size": human_size(img.size),
                "VirtualSize": human_size(img.size),
                "Containers": "N/A",
            }));
        }
    }
    Ok(out)
}

pub fn images(layout: &Layout, a: ImagesArgs) -> anyhow::Result<i32> {
    let store = Store::open(layout)?;
    let rows = rows(&store, &a)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.list.quiet {
        let mut seen = BTreeSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default();
            if seen.insert(id.to_string()) {
                writeln!(out, "{id}")?;
            }
        }
        return Ok(0);
    }
    if format::print_rows(&mut out, a.list.format.as_deref(), &rows)? {
        return Ok(0);
    }
    let mut head = vec!["REPOSITORY", "TAG"];
    if a.digests {
        head.push("DIGEST");
    }
    head.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut table = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in &rows {
        let f = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let mut row = vec![f("Repository"), f("Tag")];
        if a.digests {
            row.push(f("Digest"));
        }
        row.extend([f("ID"), f("CreatedSince"), f("Size")]);
        table.push(row);
    }
    write!(out, "{}", format::table(&table))?;
    Ok(0)
}

pub fn tag(layout: &Layout, a: TagArgs) -> anyhow::Result<i32> {
    let store = Store::open(layout)?;
    let img = find(&store, &a.source)?;
    let target = Reference::parse(&a.target)?;
    if target.digest.is_some() {
        anyhow::bail!("tag {}: a tag cannot have a digest", a.target);
    }
    store.tag(&img.id, &target)?;
    Ok(0)
}

/// Removes one image argument; prints Docker's `Untagged:`/`Deleted:` lines.
fn rmi_one(
    store: &Store,
    arg: &str,
    force: bool,
    used: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let img = find(store, arg)?;
    let tags = store.tags_of(&img.id)?;
    // Given by a tag while other tags remain: only that tag goes.
    let by_tag = Reference::parse(arg)
        .ok()
        .filter(|r| r.digest.is_none() && tags.contains(&r.to_string()));
    if let Some(r) = &by_tag {
        if tags.len() > 1 {
            store.untag(r)?;
            writeln!(out, "Untagged: {}", r.familiar())?;
            return Ok(());
        }
    }
    if let Some(c) = used.get(&img.id) {
        if !force {
            anyhow::bail!(
                "unable to remove image {arg}: container {c} is using it (remove the container first, or use -f)"
            );
        }
        // Forced: the names go now, the content once no container uses it.
        for t in &tags {
            store.untag(&Reference::parse(t)?)?;
            writeln!(out, "Untagged: {}", Reference::parse(t)?.familiar())?;
        }
        return Ok(());
    }
    if by_tag.is_none() && tags.len() > 1 && !force {
        anyhow::bail!(
            "unable to remove image {arg}: it is referenced by {} tags (remove them by name, or use -f)",
            tags.len()
        );
    }
    for t in &tags {
        let r = Reference::parse(t)?;
        store.untag(&r)?;
        writeln!(out, "Untagged: {}", r.familiar())?;
    }
    store.delete_image(&img.id)?;
    writeln!(out, "Deleted: {}", img.id)?;
    Ok(())
}

pub fn rmi(layout: &Layout, a: RmiArgs) -> anyhow::Result<i32> {
    let store = Store::open(layout)?;
    let _lock = store.lock_exclusive()?;
    let used = in_use(layout);
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for i in &a.images {
        if let Err(e) = rmi_one(&store, i, a.force, &used, &mut out) {
            eprintln!("hind: {e:#}");
            failed += 1;
        }
    }
    store.gc()?;
    Ok(if failed > 0 { 1 } else { 0 })
}

pub fn prune(layout: &Layout, a: ImagePruneArgs) -> anyhow::Result<i32> {
    let store = Store::open(layout)?;
    let _lock = store.lock_exclusive()?;
    let used = in_use(layout);
    let refs = store.read_refs()?;
    let tagged: BTreeSet<&String> = refs.values().collect();
    let mut out = std::io::stdout().lock();
    let mut deleted = Vec::new();
    for img in store.images()? {
        if used.contains_key(&img.id) || (!a.all && tagged.contains(&img.id)) {
            continue;
        }
        for (r, id) in &refs {
            if *id == img.id {
                store.untag(&Reference::parse(r)?)?;
                deleted.push(format!("untagged: {}", Reference::parse(r)?.familiar()));
            }
        }
        store.delete_image(&img.id)?;
        deleted.push(format!("deleted: {}", img.id));
    }
    let freed = store.gc()?;
    if !deleted.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for d in deleted {
            writeln!(out, "{d}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(freed))?;
    Ok(0)
}

/// The `docker image inspect` document of an image.
pub fn document(store: &Store, img: &ImageRecord) -> anyhow::Result<Value> {
    let cfg: Value = serde_json::from_slice(&store.config(img)?)?;
    let tags: Vec<String> = store
        .tags_of(&img.id)?
        .iter()
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.familiar())
                .unwrap_or(t.clone())
        })
        .collect();
    Ok(json!({
        "Id": img.id,
        "RepoTags": tags,
        "RepoDigests": img.repo_digests,
        "Created": img.created,
        "Size": img.size,
        "Architecture": cfg.get("architecture"),
        "Os": cfg.get("os"),
        "Config": cfg.get("config"),
        "RootFS": {
            "Type": "layers",
            "Layers": img.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "Manifest": img.manifest,
        "Layers": img.layers.iter().map(|l| json!({
            "Digest": l.blob, "MediaType": l.media_type, "Size": l.size,
            "ChainID": l.chain_id,
            "Dir": store.layer_dir(&l.chain_id),
        })).collect::<Vec<_>>(),
    }))
}

pub fn inspect(layout: &Layout, a: ImageInspectArgs) -> anyhow::Result<i32> {
    let store = Store::open(layout)?;
    let mut docs = Vec::new();
    for i in &a.images {
        docs.push(document(&store, &find(&store, i)?)?);
    }
    let mut out = std::io::stdout().lock();
    match a.format.as_deref() {
        None | Some("json") => {
            writeln!(out, "{}", serde_json::to_string_pretty(&docs)?)?;
        }
        Some(tpl) => {
            for d in &docs {
                writeln!(out, "{}", format::render(tpl, d)?)?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}
