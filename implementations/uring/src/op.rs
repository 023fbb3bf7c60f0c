//! What a completion is for: the operation's kind and the connection or
//! slot it belongs to, packed into the entry's `user_data`.

/// An operation in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The listener's multishot accept.
    Accept,
    /// The read of the shutdown eventfd.
    Wake,
    /// A receive on connection `key`.
    Recv(usize),
    /// A send on connection `key`.
    Send(usize),
    /// UDP slot `i`'s `recvmsg`.
    UdpRecv(usize),
    /// UDP slot `i`'s `sendmsg`.
    UdpSend(usize),
    /// A cancellation request (its own completion says nothing needed).
    Cancel,
}

impl Op {
    /// Packs the kind into the top byte and the index below it.
    pub fn encode(self) -> u64 {
        let (kind, index) = match self {
            Op::Accept => (1, 0),
            Op::Wake => (2, 0),
            Op::Recv(k) => (3, k),
            Op::Send(k) => (4, k),
            Op::UdpRecv(i) => (5, i),
            Op::UdpSend(i) => (6, i),
            Op::Cancel => (7, 0),
        };
        (kind << 56) | (index as u64 & ((1 << 56) - 1))
    }

    /// The operation `encode` packed; `None` for a value it never makes.
    pub fn decode(data: u64) -> Option<Op> {
        let index = (data & ((1 << 56) - 1)) as usize;
        Some(match data >> 56 {
            1 => Op::Accept,
            2 => Op::Wake,
            3 => Op::Recv(index),
            4 => Op::Send(index),
            5 => Op::UdpRecv(index),
            6 => Op::UdpSend(index),
            7 => Op::Cancel,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_survives_the_round_trip_through_user_data() {
        let ops = [
            Op::Accept,
            Op::Wake,
            Op::Recv(0),
            Op::Recv(123_456),
            Op::Send(7),
            Op::UdpRecv(15),
            Op::UdpSend(3),
            Op::Cancel,
        ];
        for op in ops {
            assert_eq!(Op::decode(op.encode()), Some(op));
        }
        assert_eq!(Op::decode(0), None, "a zeroed user_data is none of ours");
    }
}
