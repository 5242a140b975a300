# precis serve in a container (CPU). Build and run:
#   docker build -t precis .
#   docker run --rm -p 8080:8080 -v precis-models:/models -e PRECIS_API_KEY=change-me precis
# The model (--model, default t5-small) downloads into /models on first start; mount a volume
# there, or bake it in with `RUN precis ... ` / COPY of a model folder and --model /models/NAME.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# Compiled in: the preset catalogue and NLTK's Punkt parameters (precis eval).
COPY models ./models
COPY data ./data
RUN cargo build --release --locked --bin precis

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /models precis \
    && mkdir -p /models && chown precis /models
COPY --from=build /src/target/release/precis /usr/local/bin/precis
USER precis
ENV HF_HOME=/models
EXPOSE 8080
# 0.0.0.0 inside the container only: publish the port to choose who may reach it.
ENTRYPOINT ["precis", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--model", "t5-small"]
