# syntax=docker/dockerfile:1
# Both service images from one build. Build one with:
#   docker build --target ticketing -t inbox-ticketing/ticketing:0.1.0 .
#   docker build --target inbox -t inbox-ticketing/inbox:0.1.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Images are built for release: link-time optimisation across crates, one
# codegen unit, symbols stripped (set here, not in Cargo.toml, so local
# release builds stay quick). BuildKit cache mounts keep the downloaded
# crates and compiled dependencies between builds, so a code change
# rebuilds only the workspace's own crates.
ENV CARGO_PROFILE_RELEASE_LTO=thin \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ticketing -p inbox --bins \
 && mkdir -p /out \
 && cp target/release/ticketing target/release/inbox /out/

# A small runtime: the binaries link only glibc (rustls, no OpenSSL).
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 app \
 && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin app
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
