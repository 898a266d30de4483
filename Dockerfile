# syntax=docker/dockerfile:1
# Both service images from one build. Build one with:
#   docker build --target ticketing -t inbox-ticketing/ticketing:0.1.0 .
#   docker build --target inbox -t inbox-ticketing/inbox:0.1.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Images carry the `dist` profile (Cargo.toml): release with link-time
# optimisation across crates, one codegen unit and symbols stripped. BuildKit
# cache mounts keep the downloaded crates and compiled dependencies between
# builds, so a code change rebuilds only the workspace's own crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked -p ticketing -p inbox --bins \
 && mkdir -p /out \
 && cp target/dist/ticketing target/dist/inbox /out/

# Distroless "cc": glibc, libgcc, CA certificates and nothing else (no shell,
# no package manager), running as the built-in nonroot user 65532. The
# binaries need no more: rustls, no OpenSSL (`ldd` lists libc, libm and
# libgcc_s only). Probes are gRPC probes, so nothing needs a shell.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532

FROM runtime AS ticketing
COPY --from=build /out/ticketing /usr/local/bin/ticketing
EXPOSE 50052
ENTRYPOINT ["/usr/local/bin/ticketing"]
CMD ["serve"]

FROM runtime AS inbox
COPY --from=build /out/inbox /usr/local/bin/inbox
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/inbox"]
CMD ["serve"]
