# HAProxy + keepalived balancer for the Redis Enterprise compose environment.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy keepalived procps \
    && rm -rf /var/lib/apt/lists/*
COPY check_haproxy.sh lb-entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/check_haproxy.sh /usr/local/bin/lb-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/lb-entrypoint.sh"]
