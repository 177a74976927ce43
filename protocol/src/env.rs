//! Environment lists (`K=V` strings) as the OCI spec carries them.

/// Sets each `K=V` of `entries` in `base`, replacing an earlier `K`.
pub fn merge(base: &mut Vec<String>, entries: &[String]) {
    for e in entries {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        base.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key));
        base.push(e.clone());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn later_entries_win() {
        let mut e = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        super::merge(&mut e, &["A=2".into(), "B=x=y".into()]);
        assert_eq!(e, vec!["PATH=/bin", "A=2", "B=x=y"]);
    }
}
