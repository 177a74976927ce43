//! A container's user mounts as `hind inspect` shows them, in Docker's
//! shape: `.Mounts` (binds, volumes and `--mount` tmpfs mounts), and
//! `HostConfig.Binds` (the `-v` binds and named volumes) and
//! `HostConfig.Tmpfs` (the `--tmpfs` mounts).

use protocol::record::Record;
use serde_json::{json, Map, Value};

/// `.Mounts`: one object per bind, volume and `--mount type=tmpfs`.
pub fn mounts(r: &Record) -> Value {
    let v: Vec<Value> = r
        .mounts
        .iter()
        .filter(|m| m.flag != "tmpfs")
        .map(|m| {
            let mut o = json!({
                "Type": m.kind,
                "Source": m.source,
                "Destination": m.destination,
                "Mode": m.mode,
                "RW": m.rw,
                "Propagation": m.propagation,
            });
            if let Some(name) = &m.name {
                o["Name"] = json!(name);
                o["Driver"] = json!("local");
            }
            o
        })
        .collect();
    Value::Array(v)
}

/// `HostConfig.Binds`: `-v` binds and named volumes as Docker records
/// them (`SRC:DEST[:MODE]`); anonymous volumes are not binds. `null`
/// when there are none, as in Docker.
pub fn binds(r: &Record) -> Value {
    let v: Vec<String> = r
        .mounts
        .iter()
        .filter(|m| m.flag == "volume" && !m.anonymous)
        .map(|m| {
            let src = m.name.as_deref().unwrap_or(&m.source);
            match m.mode.as_str() {
                "" => format!("{src}:{}", m.destination),
                mode => format!("{src}:{}:{mode}", m.destination),
            }
        })
        .collect();
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// `HostConfig.Tmpfs`: destination -> options of each `--tmpfs`; `null`
/// when there are none.
pub fn tmpfs(r: &Record) -> Value {
    let m: Map<String, Value> = r
        .mounts
        .iter()
        .filter(|m| m.flag == "tmpfs")
        .map(|m| {
            let mut opts = m.options.clone();
            if !m.rw {
                opts = if opts.is_empty() {
                    "ro".into()
                } else {
                    format!("ro,{opts}")
                };
            }
            (m.destination.clone(), json!(opts))
        })
        .collect();
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}
