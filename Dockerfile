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
# curl: the HEALTHCHECK below (dash has no /dev/tcp; with TLS on it must speak HTTPS)
RUN apt-get update && apt-get install -y --no-install-recommends \
      libarchive13 libcivetweb1 libcurl4 libjson-c5 libpq5 libsodium23 libssl3 ca-certificates curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/mrgate --create-home mrgate
COPY --from=build /src/build/mrgate /usr/local/bin/mrgate
# CivetWeb dlopens libssl.so and libcrypto.so (unversioned, libssl-dev's names) for TLS; these compat libraries carry
# those names (server/sslcompat/); mrgate finds them through its RUNPATH $ORIGIN/../lib/mrgate, no LD_LIBRARY_PATH
COPY --from=build /src/build/sslcompat/libssl.so /src/build/sslcompat/libcrypto.so /usr/local/lib/mrgate/
COPY web /usr/share/mrgate/web
USER mrgate
ENV MRGATE_LISTEN=0.0.0.0:8080 \
    MRGATE_WEB_ROOT=/usr/share/mrgate/web \
    MRGATE_SECRET_KEY_FILE=/var/lib/mrgate/secret.key
EXPOSE 8080
# GET /healthz on the port of MRGATE_LISTEN, over HTTPS when MRGATE_TLS_CERT is set (the certificate is for the
# public name, so it is not verified on 127.0.0.1); POSIX sh (dash)
HEALTHCHECK CMD ["/bin/sh", "-c", "s=http; [ -z \"$MRGATE_TLS_CERT\" ] || s=https; exec curl -fsSk -o /dev/null --max-time 5 \"$s://127.0.0.1:${MRGATE_LISTEN##*:}/healthz\""]
ENTRYPOINT ["/usr/local/bin/mrgate"]
CMD ["serve"]
