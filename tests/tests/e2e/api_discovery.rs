//! Health and reflection on each port: what probes, grpcurl and other
//! clients use to find and check the services.

use e2e::*;
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The serving status a health check of `service` answers.
pub(crate) async fn health(addr: std::net::SocketAddr, service: &str) -> i32 {
    HealthClient::new(e2e::channel(addr).await)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

async fn reflected_services(addr: std::net::SocketAddr) -> (Vec<String>, Vec<String>) {
    use tonic_reflection::pb::{v1, v1alpha};
    let channel = e2e::channel(addr).await;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut v1_stream = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let v1_names = match v1_stream
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    };
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut alpha_stream = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let alpha_names = match alpha_stream
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    {
        Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    };
    (v1_names, alpha_names)
}

/// Whether reflection v1alpha, the version grpcurl asks, can describe
/// `symbol`.
async fn describes(addr: std::net::SocketAddr, symbol: &str) -> bool {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let answer = ServerReflectionClient::new(e2e::channel(addr).await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner()
        .next()
        .await
        .expect("answer")
        .expect("ok");
    matches!(
        answer.message_response,
        Some(MessageResponse::FileDescriptorResponse(_))
    )
}

/// SPEC §6: health and reflection v1 and v1alpha on each port, listing only
/// the service that port answers (the inbox's descriptors import
/// ticketing's, which must not make the inbox's port advertise it), and
/// describing the `google.rpc` error details so that grpcurl can print them.
#[tokio::test]
async fn both_services_serve_health_and_reflection_v1_and_v1alpha() {
    let stack = Stack::start().await;
    for (addr, service, elsewhere) in [
        (
            stack.ticketing_addr,
            "ticketing.v1.TicketingService",
            "inbox.v1.InboxService",
        ),
        (
            stack.inbox_addr,
            "inbox.v1.InboxService",
            "ticketing.v1.TicketingService",
        ),
    ] {
        assert_eq!(health(addr, "").await, ServingStatus::Serving as i32);
        assert_eq!(health(addr, service).await, ServingStatus::Serving as i32);
        let (v1, v1alpha) = reflected_services(addr).await;
        for names in [&v1, &v1alpha] {
            assert!(names.iter().any(|n| n == service), "{names:?}");
            assert!(!names.iter().any(|n| n == elsewhere), "{names:?}");
            assert!(
                names.iter().any(|n| n == "grpc.health.v1.Health"),
                "{names:?}"
            );
        }
        for detail in [
            "google.rpc.ErrorInfo",
            "google.rpc.BadRequest",
            "google.rpc.PreconditionFailure",
            "google.rpc.ResourceInfo",
        ] {
            assert!(describes(addr, detail).await, "{service}: {detail}");
        }
    }
    stack.stop().await;
}
