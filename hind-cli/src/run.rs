//! `hind run`: resolve the image, create the container's bundle and record,
//! start its shim, and either attach in the foreground or print the id.

use std::io::Write;

use anyhow::Context;
use protocol::paths::Layout;
use protocol::record;

use crate::attach;
use crate::bundle;
use crate::cli::RunArgs;
use crate::container::{self, NewContainer};
use crate::image;
use crate::net;
use crate::quota;
use crate::shim;
use crate::volume;

pub fn run(layout: &Layout, a: RunArgs) -> anyhow::Result<i32> {
    if a.rm && a.restart != record::RestartPolicy::No {
        anyhow::bail!("conflicting options: --restart and --rm");
    }
    // Docker's last --storage-opt size= wins; the filesystem is checked
    // before anything is pulled or made.
    let quota = a.storage_opt.last().cloned();
    if quota.is_some() {
        if a.no_overlay {
            anyhow::bail!("--storage-opt size limits the overlay's upper dir: it cannot be used with --no-overlay");
        }
        quota::check(layout)?;
    }
    let policy = match a.pull.as_str() {
        "always" => image::PullPolicy::Always,
        "never" => image::PullPolicy::Never,
        _ => image::PullPolicy::Missing,
    };
    // Flags that name files and paths are checked before anything is
    // pulled or made.
    let mut env = crate::envfile::read_all(&a.env_file)?;
    env.extend(a.env.iter().cloned());
    let mut mounts = volume::mounts::plan(layout, &a.volume, &a.mount, &a.tmpfs)?;
    // Then what other containers' mounts add (--volumes-from) and, once
    // the image is known, its VOLUMEs, each where nothing is mounted yet;
    // the whole set is planned again so parents still come first.
    let mut volume_specs = a.volume.clone();
    let from = volume::mounts::volumes_from(layout, &mounts, &a.volumes_from)?;
    if !from.is_empty() {
        volume_specs.extend(from);
        mounts = volume::mounts::plan(layout, &volume_specs, &a.mount, &a.tmpfs)?;
    }
    // Held until the container's record names its image, so that no rmi
    // or prune deletes the layers in between.
    let _store_lock = if image::uses_store(&a.image) {
        Some(image::store::Store::open(layout)?.lock_shared()?)
    } else {
        None
    };
    let image = image::resolve(layout, &a.image, policy, a.platform.as_deref())?;
    let extra = image
        .config()
        .map(|c| volume::mounts::image_volumes(&mounts, &c.volumes))
        .unwrap_or_default();
    if !extra.is_empty() {
        volume_specs.extend(extra);
        mounts = volume::mounts::plan(layout, &volume_specs, &a.mount, &a.tmpfs)?;
    }
    let command = match image.config() {
        Some(c) => c.command(a.entrypoint.as_deref(), &a.command),
        None => match a.entrypoint.as_deref() {
            Some(e) if !e.is_empty() => std::iter::once(e.to_string())
                .chain(a.command.iter().cloned())
                .collect(),
            _ => a.command.clone(),
        },
    };
    let stop_signal = match a
        .stop_signal
        .as_deref()
        .or_else(|| image.config().and_then(|c| c.stop_signal.as_deref()))
    {
        Some(s) => Some(
            crate::lifecycle::parse_signal(s)
                .with_context(|| format!("invalid stop signal {s:?}"))?,
        ),
        None => None,
    };
    let id = container::new_id()?;
    let net = net::plan(
        layout,
        &id,
        &net::Flags {
            network: &a.network,
            publish: &a.publish,
            publish_all: a.publish_all,
            expose: &a.expose,
            ip: a.ip.as_deref(),
            dns: &a.dns,
            dns_search: &a.dns_search,
            dns_option: &a.dns_option,
            add_host: &a.add_host,
            hostname: a.hostname.as_deref(),
            aliases: &a.network_alias,
        },
        image
            .config()
            .map(|c| c.exposed_ports.as_slice())
            .unwrap_or_default(),
    )?;
    let opts = bundle::Options {
        command: command.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: Some(net.record.hostname.clone()),
        tty: a.tty,
        console_size: if a.tty { attach::window_size() } else { None },
        memory: a.memory,
        cpus: a.cpus,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        no_overlay: a.no_overlay,
        cgroup_parent: a.cgroup_parent.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        auto_remove: a.rm,
        devices: a.device.clone(),
        device_cgroup_rules: a.device_cgroup_rule.clone(),
        group_add: a.group_add.clone(),
        security: crate::seccomp::SecurityOpts::from_flags(&a.security_opt),
        network: Some(bundle::NetworkOptions {
            namespace: net.namespace.clone(),
            files: net.mounts(),
        }),
        mounts: mounts.mounts.clone(),
        copy_up: mounts.copy_up.clone(),
        read_only: a.read_only,
    };
    // Built (and so validated) before a name is claimed or a dir made.
    let spec = bundle::build(&id, &layout.container(&id), &image, &opts)?;
    // The volumes lock is held from here until the record listing them
    // exists, so no `volume rm` or `prune` takes them away in between.
    let mut volumes = volume::mounts::prepare(layout, &mounts)?;
    let created = container::create(
        layout,
        NewContainer {
            name: a.name.as_deref(),
            image_root: &image.root_dir(),
            image: &a.image,
            image_id: image.id().map(str::to_string),
            command,
            stop_signal,
            auto_remove: a.rm,
            tty: a.tty,
            open_stdin: a.interactive,
            restart: a.restart,
            log: a.log_options(),
            network: Some(net.record.clone()),
            quota,
            mounts: mounts.records.clone(),
            security: record::SecurityRecord {
                privileged: a.privileged,
                cap_add: a.cap_add.clone(),
                cap_drop: a.cap_drop.clone(),
                security_opt: a.security_opt.iter().map(|o| o.to_string()).collect(),
                devices: a.device.clone(),
                device_cgroup_rules: a.device_cgroup_rule.clone(),
                group_add: a.group_add.clone(),
                volumes_from: a.volumes_from.clone(),
            },
        },
        &id,
        &spec,
    )
    .inspect_err(|_| volumes.undo(layout))?;
    volumes.release();

    let forget = |e: anyhow::Error| -> anyhow::Error {
        let _ = net::release(layout, &created.id);
        let _ = record::remove_files(layout, &created.id, &created.name);
        if let Some(p) = created.project_id {
            let _ = quota::release(layout, &created.id, p);
        }
        volume::remove_unused(layout, &volumes.created);
        e
    };
    net::attach(layout, &created.id).map_err(|e| forget(e.into()))?;
    let mut sock = shim::spawn(layout, &created.id).map_err(|e| forget(e.into()))?;
    if let Err(e) = attach::wait_started(&mut sock) {
        // The shim undid what it had made; the rest is ours to undo.
        return Err(forget(e.into()));
    }
    if a.detach {
        drop(sock);
        let mut out = std::io::stdout();
        writeln!(out, "{}", created.id).context("write the container id")?;
        return Ok(0);
    }
    Ok(attach::relay(sock, a.tty, a.interactive)?)
}
