# syntax=docker/dockerfile:1
# Switchyard janitor (one run per start; Railway cron starts it every 5 minutes).
#   docker build -f docker/janitor.Dockerfile -t switchyard-janitor .

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --package switchyard-janitor
COPY . .
RUN cargo build --release --locked --package switchyard-janitor --bin switchyard-janitor

FROM gcr.io/distroless/cc-debian12 AS runtime
COPY --from=build /src/target/release/switchyard-janitor /usr/local/bin/switchyard-janitor
USER 1001:1001
ENTRYPOINT ["/usr/local/bin/switchyard-janitor"]
