//! Calls to any RPC by its path with a body of raw bytes, and the list of
//! every RPC of both services from the descriptors reflection serves: for
//! tests that must cover every RPC, including ones added later, and send
//! bodies no generated client would.

use std::str::FromStr;

use prost::{
    Message,
    bytes::{Buf, BufMut},
};
use tonic::{
    Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    metadata::MetadataMap,
    transport::Channel,
};

/// One RPC: its path (`/package.Service/Method`) and whether it streams
/// its answer.
#[derive(Debug, Clone)]
pub struct Rpc {
    pub path: String,
    pub server_streaming: bool,
}

impl Rpc {
    /// The method name, e.g. `CreateTicket`.
    pub fn method(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Every RPC of `service` (e.g. `ticketing.v1.TicketingService`).
pub fn rpcs(service: &str) -> Vec<Rpc> {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut found = Vec::new();
    for file in &set.file {
        for described in &file.service {
            let name = format!("{}.{}", file.package(), described.name());
            if name != service {
                continue;
            }
            for method in &described.method {
                found.push(Rpc {
                    path: format!("/{name}/{}", method.name()),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    assert!(!found.is_empty(), "no service {service} in the descriptors");
    found
}

/// Bytes in, bytes out: no message type at all.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// Calls `rpc` with `body` as the request message and `metadata`; a
/// streaming answer counts as accepted once it starts.
pub async fn call(
    channel: &Channel,
    rpc: &Rpc,
    body: Vec<u8>,
    metadata: &MetadataMap,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let path = PathAndQuery::from_str(&rpc.path).expect("an RPC path");
    let mut request = Request::new(body);
    *request.metadata_mut() = metadata.clone();
    if rpc.server_streaming {
        grpc.server_streaming(request, path, RawCodec)
            .await
            .map(|_| ())
    } else {
        grpc.unary(request, path, RawCodec).await.map(|_| ())
    }
}
