//! The one error type handlers return, and its one mapping to `tonic::Status`
//! with `google.rpc` details (ErrorInfo with a stable reason, BadRequest with
//! the offending field). Internal causes are logged, never sent to callers.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error this project returns.
pub const ERROR_DOMAIN: &str = "support.inbox-ticketing";

/// Longest quote of a caller's value in an error (bytes).
pub const MAX_QUOTE: usize = 64;
/// Longest error message; with the details it repeats, an error stays well
/// under 4 KiB of trailers (clients refuse more than 16 KiB of metadata).
pub const MAX_MESSAGE: usize = 512;
/// Longest field name, description or ErrorInfo value in the details.
const MAX_DETAIL: usize = 256;

/// `value` cut to at most `max` bytes at a character boundary, marked with
/// "…" when cut.
pub fn clip(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// A caller's value as an error may quote it: debug-quoted, at most a short
/// prefix.
pub fn quote(value: &str) -> String {
    format!("{:?}", clip(value, MAX_QUOTE))
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {description}")]
    InvalidArgument { field: String, description: String },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
        /// The resource that already exists, e.g. the ticket of a conversation (R2).
        existing_id: String,
    },
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    Aborted {
        reason: &'static str,
        message: String,
    },
    /// ABORTED with the details of what changed, e.g. the messages a reply
    /// crossed (R17).
    #[error("{message}")]
    AbortedWith {
        reason: &'static str,
        message: String,
        metadata: Vec<(String, String)>,
    },
    #[error("{message}")]
    OutOfRange {
        reason: &'static str,
        message: String,
        /// ErrorInfo metadata, e.g. the account and sequence a cursor expired at.
        metadata: Vec<(String, String)>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unavailable(String),
    /// The database could not be reached; the cause is logged, not sent.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// Another service's answer, passed on with its details intact.
    #[error("upstream: {}", .0.message())]
    Upstream(Box<Status>),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            description: description.into(),
        }
    }

    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    /// A stale etag: nothing was changed.
    pub fn stale_etag(kind: &'static str, id: &str) -> Self {
        Self::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!("{kind} {id} was changed by someone else; read it again"),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        // A unique key another transaction committed first (the same
        // request_id from a concurrent retry, say): nothing was applied, and
        // the same call again finds the winner's result.
        if crate::db::is_unavailable(&err) {
            return Self::DatabaseUnavailable(err.to_string());
        }
        if crate::db::is_unique_violation(&err) {
            return Self::Aborted {
                reason: "CONCURRENT_REQUEST",
                message: "a concurrent request changed the same thing first; retry".into(),
            };
        }
        Self::Internal(err.to_string())
    }
}

impl From<ApiError> for Status {
    /// Every string that may hold a caller's value is clipped here, whatever
    /// the site that built the error quoted.
    fn from(err: ApiError) -> Status {
        let info = |reason: &str, meta: Vec<(String, String)>| {
            ErrorDetails::with_error_info(
                reason,
                ERROR_DOMAIN,
                meta.into_iter()
                    .map(|(key, value)| (key, clip(&value, MAX_DETAIL)))
                    .collect::<std::collections::HashMap<_, _>>(),
            )
        };
        let err = match err {
            ApiError::InvalidArgument { field, description } => ApiError::InvalidArgument {
                field: clip(&field, MAX_DETAIL),
                description: clip(&description, MAX_DETAIL),
            },
            ApiError::NotFound { kind, id } => ApiError::NotFound {
                kind,
                id: clip(&id, MAX_QUOTE),
            },
            ApiError::AlreadyExists {
                reason,
                message,
                existing_id,
            } => ApiError::AlreadyExists {
                reason,
                message: clip(&message, MAX_MESSAGE),
                existing_id: clip(&existing_id, MAX_QUOTE),
            },
            ApiError::FailedPrecondition { reason, message } => ApiError::FailedPrecondition {
                reason,
                message: clip(&message, MAX_MESSAGE),
            },
            ApiError::Aborted { reason, message } => ApiError::Aborted {
                reason,
                message: clip(&message, MAX_MESSAGE),
            },
            ApiError::OutOfRange {
                reason,
                message,
                metadata,
            } => ApiError::OutOfRange {
                reason,
                message: clip(&message, MAX_MESSAGE),
                metadata,
            },
            ApiError::Unauthenticated(m) => ApiError::Unauthenticated(clip(&m, MAX_MESSAGE)),
            ApiError::PermissionDenied(m) => ApiError::PermissionDenied(clip(&m, MAX_MESSAGE)),
            ApiError::Unavailable(m) => ApiError::Unavailable(clip(&m, MAX_MESSAGE)),
            ApiError::Unimplemented(m) => ApiError::Unimplemented(clip(&m, MAX_MESSAGE)),
            other => other,
        };
        match err {
            ApiError::InvalidArgument { field, description } => {
                let mut details = ErrorDetails::with_bad_request_violation(&field, &description);
                details.set_error_info(
                    "INVALID_FIELD",
                    ERROR_DOMAIN,
                    [("field".to_owned(), field.clone())],
                );
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("{field}: {description}"),
                    details,
                )
            }
            ApiError::NotFound { kind, id } => Status::with_error_details(
                Code::NotFound,
                format!("{kind} {id} not found"),
                info(
                    "NOT_FOUND",
                    vec![("kind".into(), kind.into()), ("id".into(), id)],
                ),
            ),
            ApiError::AlreadyExists {
                reason,
                message,
                existing_id,
            } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                info(reason, vec![("existing_id".into(), existing_id)]),
            ),
            ApiError::FailedPrecondition { reason, message } => {
                Status::with_error_details(Code::FailedPrecondition, message, info(reason, vec![]))
            }
            ApiError::Aborted { reason, message } => {
                Status::with_error_details(Code::Aborted, message, info(reason, vec![]))
            }
            ApiError::AbortedWith {
                reason,
                message,
                metadata,
            } => Status::with_error_details(Code::Aborted, message, info(reason, metadata)),
            ApiError::OutOfRange {
                reason,
                message,
                metadata,
            } => Status::with_error_details(Code::OutOfRange, message, info(reason, metadata)),
            ApiError::Unauthenticated(message) => Status::unauthenticated(message),
            ApiError::PermissionDenied(message) => Status::permission_denied(message),
            ApiError::Unavailable(message) => Status::unavailable(message),
            ApiError::DatabaseUnavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Status::with_error_details(
                    Code::Unavailable,
                    "the database is unavailable; retry with backoff",
                    info("DATABASE_UNAVAILABLE", vec![]),
                )
            }
            ApiError::Unimplemented(message) => Status::unimplemented(message),
            // Another service's answer is passed on as it came unless it
            // is too large to stay under the bound; then without details.
            ApiError::Upstream(status) => {
                if status.message().len() <= MAX_MESSAGE
                    && status.details().len() <= 4 * MAX_MESSAGE
                {
                    *status
                } else {
                    Status::new(status.code(), clip(status.message(), MAX_MESSAGE))
                }
            }
            ApiError::Internal(cause) => {
                // The cause may hold SQL or paths: log it with an id the
                // caller can quote, and send only the id.
                let incident = uuid::Uuid::now_v7();
                tracing::error!(%incident, %cause, "internal error");
                Status::with_error_details(
                    Code::Internal,
                    format!("internal error (incident {incident})"),
                    info("INTERNAL", vec![("incident".into(), incident.to_string())]),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of an error on the wire: its message and its details.
    fn size(status: &Status) -> usize {
        status.message().len() + status.details().len()
    }

    #[test]
    fn an_error_quoting_a_huge_caller_value_stays_under_4_kib() {
        let huge = "p".repeat(10_000);
        let errors = [
            ApiError::invalid(
                format!("update_mask.paths[{huge}]"),
                format!("{huge} is bad"),
            ),
            ApiError::not_found("ticket", huge.clone()),
            ApiError::AlreadyExists {
                reason: "X",
                message: huge.clone(),
                existing_id: huge.clone(),
            },
            ApiError::precondition("X", huge.clone()),
            ApiError::OutOfRange {
                reason: "X",
                message: huge.clone(),
                metadata: vec![("k".into(), huge.clone())],
            },
            ApiError::PermissionDenied(huge.clone()),
            ApiError::Upstream(Box::new(Status::invalid_argument(huge.clone()))),
        ];
        for err in errors {
            let status = Status::from(err);
            assert!(size(&status) < 4096, "{} bytes", size(&status));
        }
        assert_eq!(quote("ab"), "\"ab\"");
        assert!(quote(&huge).len() < MAX_QUOTE + 8);
        // Cut at a character boundary.
        assert_eq!(clip("ééé", 3), "é…");
    }
}
