//! Generated gRPC code for both services, and the encoded descriptor set that
//! server reflection serves.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod ticketing {
    pub mod v1 {
        tonic::include_proto!("ticketing.v1");
    }
}

pub mod inbox {
    pub mod v1 {
        tonic::include_proto!("inbox.v1");
    }
}

/// Every file of `proto/` and its imports, for reflection v1 and v1alpha.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptors");
