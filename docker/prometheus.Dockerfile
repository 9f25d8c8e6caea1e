# Prometheus for docker-compose.yml's observability profiles: the services' base image (it has
# the C library Debian's build links to) with the prometheus and promtool chaoslab fetched.
ARG BASE
FROM ${BASE}
COPY prometheus promtool /opt/prometheus/
LABEL chaoslab.image=prometheus
ENTRYPOINT ["/opt/prometheus/prometheus"]
