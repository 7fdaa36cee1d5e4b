# mrgate: build on Debian 12 with Debian's packages, run as an unprivileged user.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libarchive-dev libcivetweb-dev libcurl4-openssl-dev libjson-c-dev libpq-dev \
      libsodium-dev libssl-dev zlib1g-dev python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY core core
COPY server server
COPY sql sql
COPY tests tests
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)" --target mrgate

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libarchive13 libcivetweb1 libcurl4 libjson-c5 libpq5 libsodium23 libssl3 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/mrgate --create-home mrgate
COPY --from=build /src/build/mrgate /usr/local/bin/mrgate
# CivetWeb's TLS with OpenSSL 3 needs this shim (server/sslcompat/ssl_compat.c)
COPY --from=build /src/build/sslcompat/libssl.so /usr/local/lib/mrgate/libssl.so
COPY web /usr/share/mrgate/web
USER mrgate
ENV LD_LIBRARY_PATH=/usr/local/lib/mrgate \
    MRGATE_LISTEN=0.0.0.0:8080 \
    MRGATE_WEB_ROOT=/usr/share/mrgate/web \
    MRGATE_SECRET_KEY_FILE=/var/lib/mrgate/secret.key
EXPOSE 8080
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["/usr/local/bin/mrgate"]
CMD ["serve"]
