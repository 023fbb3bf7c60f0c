//! UDP measurement: a sequenced, paced probe ([`seq`]) and a seeded
//! impairment relay ([`relay`]) whose record predicts exactly what the
//! probe must measure.

pub mod batch;
pub mod netem;
pub mod relay;
pub mod seq;
