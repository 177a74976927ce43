//! Parsing of the flag values users type: sizes (`64m`), CPU counts
//! (`0.5`) and cpu lists (`0-1,3`), with Docker's rules and limits.

use std::collections::BTreeSet;

/// Docker refuses memory limits below this (6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Parses a byte size: a number with an optional unit b, k, m, g, t, p
/// (binary multiples, case-insensitive, an optional trailing `b`).
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ if unit == "b" => 1.0,
        _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(format!("invalid size {s:?}: too large"));
    }
    Ok(v as i64)
}

/// `--memory`: a size of at least [`MIN_MEMORY`].
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let v = parse_size(s)?;
    if v < MIN_MEMORY {
        return Err(format!("{s:?} is below the minimum memory limit of 6MB"));
    }
    Ok(v)
}

/// `--cpus`: a positive decimal number of CPUs.
pub fn parse_cpus(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid number of CPUs {s:?}"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("invalid number of CPUs {s:?}: must be above 0"));
    }
    Ok(v)
}

/// Parses a cpu list like `0-2,5` into its members.
pub fn parse_cpu_list(s: &str) -> Result<BTreeSet<u32>, String> {
    let mut set = BTreeSet::new();
    for part in s.trim().split(',') {
        let bad = || format!("invalid cpu list {s:?}");
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a > b || b - a > 65536 {
            return Err(bad());
        }
        set.extend(a..=b);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("abc").is_err());
        assert!(parse_size("12x").is_err());
        assert!(parse_memory("1m").is_err());
    }

    #[test]
    fn cpus_and_lists() {
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("x").is_err());
        assert_eq!(
            parse_cpu_list("0-2,5")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 5]
        );
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }
}
