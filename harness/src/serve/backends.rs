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
