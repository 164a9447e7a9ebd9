# syntax=docker/dockerfile:1
# Switchyard router. Build from the repository root:
#   docker build -f docker/router.Dockerfile -t switchyard-router .

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# Dependencies only: this layer is reused until Cargo.toml/Cargo.lock change.
FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --package switchyard-router
COPY . .
RUN cargo build --release --locked --package switchyard-router --bin switchyard-router

# Runtime: glibc, CA certificates and the binary; nothing else.
FROM gcr.io/distroless/cc-debian12 AS runtime
COPY --from=build /src/target/release/switchyard-router /usr/local/bin/switchyard-router
USER 1001:1001
ENV PORT=8000
EXPOSE 8000 9091
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/switchyard-router", "--health-check"]
ENTRYPOINT ["/usr/local/bin/switchyard-router"]
