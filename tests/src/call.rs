//! Requests with the caller identity that development mode reads.

use kit::identity::{ACCOUNT_HEADER, SERVICE_HEADER, USER_HEADER};
use tonic::Request;

/// A request from a user of an account.
pub fn as_user<T>(account_id: &str, user_id: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(ACCOUNT_HEADER, account_id.parse().expect("account header"));
    metadata.insert(USER_HEADER, user_id.parse().expect("user header"));
    request
}

/// A request from an internal service, optionally on behalf of an account.
pub fn as_service<T>(service: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(SERVICE_HEADER, service.parse().expect("service header"));
    request
}

/// A request from an internal service acting for an account.
pub fn as_service_for<T>(service: &str, account_id: &str, message: T) -> Request<T> {
    let mut request = as_service(service, message);
    request
        .metadata_mut()
        .insert(ACCOUNT_HEADER, account_id.parse().expect("account header"));
    request
}
