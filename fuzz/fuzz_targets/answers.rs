//! What every fuzz target checks of the answers the servers would give: a
//! body that does not decode is INVALID_ARGUMENT, and a refusal is never
//! INTERNAL and stays under 4 KiB.

use tonic::{Code, Status};

/// `bytes` as an `M`, or `None` after checking that the servers refuse
/// them as the caller's mistake.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Option<M> {
    match M::decode(bytes) {
        Ok(message) => Some(message),
        Err(err) => {
            // What tonic's prost codec answers, as the servers' refusals
            // layer sees it.
            let from_tonic = Status::internal(err.to_string());
            let answer = kit::refusals::replacement(&from_tonic).unwrap_or(from_tonic);
            assert_eq!(answer.code(), Code::InvalidArgument, "{answer:?}");
            None
        }
    }
}

/// The value, or `None` after checking the refusal's status.
pub fn check<T>(result: Result<T, kit::ApiError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            let status = Status::from(err);
            assert_ne!(status.code(), Code::Internal, "{status:?}");
            let size = status.message().len() + status.details().len();
            assert!(size < 4096, "an error of {size} bytes: {status:?}");
            None
        }
    }
}
