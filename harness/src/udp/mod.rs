//! UDP measurement: a sequenced, paced sender and its receiver.

pub mod seq;
