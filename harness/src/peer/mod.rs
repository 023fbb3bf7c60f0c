//! Our side of the wire: a framed TCP client and UDP echo helper with every
//! wait bounded ([`client`]), frames and payloads built and matched
//! ([`frames`]), and the wire log a failed case carries ([`wirelog`]).

pub mod client;
pub mod frames;
pub mod wirelog;
