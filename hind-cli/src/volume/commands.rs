//! `hind volume create|ls|inspect|rm|prune`, and the removal of a removed
//! container's anonymous volumes (`rm -v`, and `--rm` through the shim).

use std::collections::BTreeMap;
use std::io::Write;

use protocol::paths::Layout;
use serde_json::{json, Value};

use crate::cli::{
    VolumeCommand, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::format;

pub fn volume(layout: &Layout, c: VolumeCommand) -> anyhow::Result<i32> {
    match c {
        VolumeCommand::Create(a) => create(layout, a),
        VolumeCommand::Ls(a) => ls(layout, a),
        VolumeCommand::Inspect(a) => inspect(layout, a),
        VolumeCommand::Rm(a) => rm(layout, a),
        VolumeCommand::Prune(a) => prune(layout, a),
    }
}

fn create(layout: &Layout, a: VolumeCreateArgs) -> anyhow::Result<i32> {
    if a.driver != "local" {
        anyhow::bail!("volume driver {:?} is not supported (only local)", a.driver);
    }
    let name = match a.name {
        Some(n) => n,
        None => crate::container::new_id()?,
    };
    let labels: BTreeMap<String, String> = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let lock = super::lock(layout)?;
    super::create(layout, &lock, &name, &labels)?;
    println!("{name}");
    Ok(0)
}

/// `Labels` as `ls --format` shows them: `k=v,k2=v2`.
fn labels_text(v: &super::Volume) -> String {
    v.record
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ls(layout: &Layout, a: VolumeLsArgs) -> anyhow::Result<i32> {
    let vols = super::list(layout);
    let mut out = std::io::stdout().lock();
    if a.list.quiet {
        for v in &vols {
            writeln!(out, "{}", v.name())?;
        }
        return Ok(0);
    }
    let rows: Vec<Value> = vols
        .iter()
        .map(|v| {
            json!({
                "Name": v.name(),
                "Driver": "local",
                "Scope": "local",
                "Mountpoint": v.data(),
                "CreatedAt": v.record.created,
                "Labels": labels_text(v),
            })
        })
        .collect();
    if format::print_rows(&mut out, a.list.format.as_deref(), &rows)? {
        return Ok(0);
    }
    let mut table = vec![["DRIVER", "VOLUME NAME"].map(String::from).to_vec()];
    for v in &vols {
        table.push(vec!["local".into(), v.name().to_string()]);
    }
    write!(out, "{}", format::table(&table))?;
    Ok(0)
}

fn inspect(layout: &Layout, a: VolumeInspectArgs) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut failed = false;
    for n in &a.volumes {
        match super::get(layout, n) {
            Ok(v) => docs.push(v.document()),
            Err(e) => {
                eprintln!("hind: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match a.format.as_deref() {
        None | Some("json") => writeln!(out, "{}", serde_json::to_string_pretty(&docs)?)?,
        Some(tpl) => {
            for d in &docs {
                writeln!(out, "{}", format::render(tpl, d)?)?;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Docker refuses to remove a volume in use even with `-f`; `-f` only
/// makes a missing volume no error.
fn rm(layout: &Layout, a: VolumeRmArgs) -> anyhow::Result<i32> {
    let lock = super::lock(layout)?;
    let mut failed = false;
    for n in &a.volumes {
        match super::remove(layout, &lock, n) {
            Ok(()) => println!("{n}"),
            Err(super::Error::NoSuch(_)) if a.force => {}
            Err(e) => {
                eprintln!("hind: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Removes the anonymous volumes no container (running or stopped) uses,
/// or with `--all` every unused volume (Docker 23's rule: named volumes
/// hold data someone chose to keep).
fn prune(layout: &Layout, a: VolumePruneArgs) -> anyhow::Result<i32> {
    let lock = super::lock(layout)?;
    let used = super::usage(layout);
    let mut removed = Vec::new();
    let mut freed = 0;
    for v in super::list(layout) {
        if used.contains_key(v.name()) {
            continue;
        }
        if !a.all && !v.record.labels.contains_key(super::ANONYMOUS_LABEL) {
            continue;
        }
        let size = super::disk_usage(&v.dir);
        super::remove(layout, &lock, v.name())?;
        freed += size;
        removed.push(v.record.name);
    }
    let mut out = std::io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Volumes:")?;
        for n in &removed {
            writeln!(out, "{n}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        crate::image::commands::human_size(freed)
    )?;
    Ok(0)
}

/// Removes the anonymous volumes of a container that is gone (`rm -v`;
/// the shim runs `volume rm` for `--rm`). A volume another container took
/// up meanwhile stays, with a message.
pub fn remove_anonymous(layout: &Layout, record: &protocol::record::Record) {
    let names: Vec<&str> = record
        .mounts
        .iter()
        .filter(|m| m.anonymous)
        .filter_map(|m| m.name.as_deref())
        .collect();
    if names.is_empty() {
        return;
    }
    let lock = match super::lock(layout) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hind: {:#}", anyhow::Error::from(e));
            return;
        }
    };
    for n in names {
        match super::remove(layout, &lock, n) {
            Ok(()) | Err(super::Error::NoSuch(_)) => {}
            Err(e) => eprintln!("hind: {:#}", anyhow::Error::from(e)),
        }
    }
}
