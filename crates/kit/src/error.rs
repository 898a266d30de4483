//! The one error type handlers return, and its one mapping to `tonic::Status`
//! with `google.rpc` details (ErrorInfo with a stable reason, BadRequest with
//! the offending field). Internal causes are logged, never sent to callers.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error this project returns.
pub const ERROR_DOMAIN: &str = "support.inbox-ticketing";

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
    fn from(err: ApiError) -> Status {
        let info = |reason: &str, meta: Vec<(String, String)>| {
            ErrorDetails::with_error_info(
                reason,
                ERROR_DOMAIN,
                meta.into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
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
            ApiError::Upstream(status) => *status,
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
