//! The back-ends this build of sockbench can serve with.

use sockbench_core::Backend;

/// Every back-end, in the order reports list them.
pub fn all() -> Vec<Box<dyn Backend>> {
    vec![
        Box::new(sockbench_blocking::Blocking),
        Box::new(sockbench_threaded::Threaded),
        Box::new(sockbench_mio::Mio),
        Box::new(sockbench_tokio::Tokio),
        Box::new(sockbench_uring::Uring),
        Box::new(sockbench_percore::PerCore),
    ]
}

/// The names of every back-end.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|b| b.name()).collect()
}

/// The back-end called `name`.
pub fn find(name: &str) -> Option<Box<dyn Backend>> {
    all().into_iter().find(|b| b.name() == name)
}

/// Why the back-end called `name` cannot run on this machine, or `None`
/// when it can (or is not one of ours). Probed once per process and
/// remembered: a probe may open an io_uring.
pub fn unavailable(name: &str) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static SEEN: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    seen.entry(name.to_owned())
        .or_insert_with(|| find(name)?.probe().err().map(|why| why.to_string()))
        .clone()
}
