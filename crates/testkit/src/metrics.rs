//! Reading the router's Prometheus text in tests.

/// The value of the unlabelled sample `name` (`name 12`), if present.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_is_its_exact_name() {
        let text = "# HELP a_total x\na_total 3\na_total_bytes 9\nb{x=\"1\"} 2\n";
        assert_eq!(super::sample(text, "a_total"), Some(3.0));
        assert_eq!(super::sample(text, "a_total_bytes"), Some(9.0));
        assert_eq!(super::sample(text, "a"), None);
        assert_eq!(super::sample(text, "c"), None);
    }
}
