//! The catalogue: every case, by category.

mod faults;
mod forms;
mod framing;
mod lifecycle;
mod limits;
mod malformed;
mod segmentation;
mod udp;
mod upload;

use super::case::Case;

/// Every case, in id order.
pub fn catalogue() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(framing::cases());
    all.extend(segmentation::cases());
    all.extend(forms::segmentation());
    all.extend(upload::cases());
    all.extend(forms::upload());
    all.extend(malformed::cases());
    all.extend(limits::cases());
    all.extend(faults::cases());
    all.extend(udp::cases());
    all.extend(lifecycle::cases());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_dotted_and_in_order() {
        let all = catalogue();
        assert!(all.len() > 60, "only {} cases", all.len());
        let mut seen = std::collections::HashSet::new();
        let mut last = (0, 0);
        for c in &all {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(seen.insert(c.name), "duplicate name {}", c.name);
            let (a, b) = c.id.split_once('.').expect("dotted id");
            let key = (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap());
            assert!(key > last, "{} out of order", c.id);
            last = key;
            assert!(c.rule.starts_with('§'), "{} quotes no rule", c.id);
            assert!((1..=8).contains(&c.category()));
        }
    }
}
