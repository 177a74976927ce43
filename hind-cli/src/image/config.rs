//! The parts of an image's config (OCI image-spec config.md, which Docker's
//! v2 config matches) that `run` applies: Entrypoint, Cmd, Env,
//! WorkingDir, User, StopSignal, ExposedPorts and Volumes.

use oci_spec::image::ImageConfiguration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image config {0}: {1}")]
    Parse(String, String),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    /// `80/tcp`, `53/udp`: what `-P` publishes.
    pub exposed_ports: Vec<String>,
    /// Container paths that get an anonymous volume unless a mount is
    /// given there (Dockerfile `VOLUME`).
    pub volumes: Vec<String>,
    pub os: String,
    pub architecture: String,
}

impl ImageConfig {
    /// Parses a config blob; `id` names it in errors.
    pub fn parse(id: &str, data: &[u8]) -> Result<ImageConfig> {
        let c: ImageConfiguration = serde_json::from_slice(data)
            .map_err(|e| Error::Parse(id.to_string(), e.to_string()))?;
        let mut out = ImageConfig {
            os: c.os().to_string(),
            architecture: c.architecture().to_string(),
            ..Default::default()
        };
        if let Some(cfg) = c.config() {
            out.entrypoint = cfg.entrypoint().clone().unwrap_or_default();
            out.cmd = cfg.cmd().clone().unwrap_or_default();
            out.env = cfg.env().clone().unwrap_or_default();
            out.working_dir = cfg.working_dir().clone().filter(|w| !w.is_empty());
            out.user = cfg.user().clone().filter(|u| !u.is_empty());
            out.stop_signal = cfg.stop_signal().clone().filter(|s| !s.is_empty());
            out.exposed_ports = cfg.exposed_ports().clone().unwrap_or_default();
            out.volumes = cfg.volumes().clone().unwrap_or_default();
        }
        Ok(out)
    }

    /// Docker's rule: `--entrypoint` replaces the image's entrypoint and
    /// drops its Cmd; arguments after the image replace Cmd.
    pub fn command(&self, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
        let (ep, default_cmd): (Vec<String>, &[String]) = match entrypoint {
            Some("") => (Vec::new(), &[]),
            Some(e) => (vec![e.to_string()], &[]),
            None => (self.entrypoint.clone(), &self.cmd),
        };
        let mut out = ep;
        if args.is_empty() {
            out.extend(default_cmd.iter().cloned());
        } else {
            out.extend(args.iter().cloned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_and_cmd_combine_like_docker() {
        let c = ImageConfig {
            entrypoint: vec!["/ep".into()],
            cmd: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(c.command(None, &[]), ["/ep", "a"]);
        assert_eq!(c.command(None, &["b".into()]), ["/ep", "b"]);
        assert_eq!(c.command(Some("/x"), &[]), ["/x"]);
        assert_eq!(c.command(Some("/x"), &["y".into()]), ["/x", "y"]);
        assert_eq!(c.command(Some(""), &["sh".into()]), ["sh"]);
    }

    #[test]
    fn parses_a_docker_config() {
        let data = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Entrypoint":null,"Cmd":["sh"],"WorkingDir":"/w","User":"nobody","StopSignal":"SIGINT","ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = ImageConfig::parse("x", data).unwrap();
        assert_eq!(c.cmd, ["sh"]);
        assert_eq!(c.env, ["PATH=/bin", "A=1"]);
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.exposed_ports, ["80/tcp"]);
    }
}
