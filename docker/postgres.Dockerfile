# PostgreSQL for docker-compose.yml's database profiles: the services' base image (Debian 12, as
# the host) with the host's PostgreSQL at its own paths, the libraries it links to, and the
# template data folder each start copies (the docker backend mounts all of these instead).
ARG BASE
FROM ${BASE}
COPY install/ /
COPY lib/ /opt/chaoslab-postgres/lib/
COPY template/ /opt/chaoslab-postgres/template/
ENV LD_LIBRARY_PATH=/opt/chaoslab-postgres/lib
USER 65534:65534
LABEL chaoslab.image=postgres
