//! Output helpers: `--format` templates over a JSON document (`{{.A.B}}`,
//! `{{json .A}}`, `{{.}}`), and Docker's human durations ("5 seconds").

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("write the output")]
    Write(#[source] std::io::Error),
    #[error("template {0:?}: unclosed {{{{")]
    Unclosed(String),
    #[error("template {0:?}: cannot evaluate {1:?} (use .Field.Sub or json .Field)")]
    Bad(String, String),
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(plain).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// Prints `rows` as a list command's `--format` asks: `json` gives one
/// object per line, anything else is a template rendered per row. Returns
/// false, printing nothing, without `--format`: the caller prints its table.
pub fn print_rows(
    out: &mut impl std::io::Write,
    format: Option<&str>,
    rows: &[Value],
) -> Result<bool, Error> {
    let Some(format) = format else {
        return Ok(false);
    };
    for r in rows {
        let line = if format == "json" {
            r.to_string()
        } else {
            render(format, r)?
        };
        writeln!(out, "{line}").map_err(Error::Write)?;
    }
    Ok(true)
}

/// Renders `tpl` against `doc`, Go-template style for the subset users
/// write with Docker: field paths and `json`.
pub fn render(tpl: &str, doc: &Value) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| Error::Unclosed(tpl.to_string()))?;
        let expr = after[..end].trim().trim_matches('-').trim();
        let (json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        if !path.starts_with('.') {
            return Err(Error::Bad(tpl.to_string(), expr.to_string()));
        }
        let v = lookup(doc, path).unwrap_or(&Value::Null);
        if json {
            out.push_str(&v.to_string());
        } else {
            out.push_str(&plain(v));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\n", "\n").replace("\\t", "\t"))
}

/// Docker's `HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "Less than a second".into(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => plural(s / 60, "minute"),
        _ if s < 7200 => "About an hour".into(),
        _ if s < 48 * 3600 => plural(s / 3600, "hour"),
        _ if s < 14 * 86400 => plural(s / 86400, "day"),
        _ if s < 56 * 86400 => plural(s / (7 * 86400), "week"),
        _ if s < 730 * 86400 => plural(s / (30 * 86400), "month"),
        _ => plural(s / (365 * 86400), "year"),
    }
}

/// Time since an RFC 3339 timestamp, humanised; empty if unparsable.
pub fn since(ts: Option<&str>) -> Option<String> {
    let t = protocol::time::parse_rfc3339(ts?)?;
    Some(human_duration(t.elapsed().unwrap_or_default()))
}

/// Aligns rows in columns separated by three spaces, like Docker's tables.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates() {
        let d = json!({"State": {"ExitCode": 3, "Status": "exited"}, "Name": "/x", "A": [1, 2]});
        assert_eq!(render("{{.State.ExitCode}}", &d).unwrap(), "3");
        assert_eq!(
            render("{{ .Name }}:{{.State.Status}}", &d).unwrap(),
            "/x:exited"
        );
        assert_eq!(
            render("{{json .State}}", &d).unwrap(),
            r#"{"ExitCode":3,"Status":"exited"}"#
        );
        assert_eq!(render("{{.Missing}}", &d).unwrap(), "<no value>");
        assert!(render("{{.A", &d).is_err());
        assert!(render("{{nope}}", &d).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn tables_align() {
        let t = table(&[
            vec!["A".into(), "BB".into()],
            vec!["CCC".into(), "D".into()],
        ]);
        assert_eq!(t, "A     BB\nCCC   D\n");
    }
}
