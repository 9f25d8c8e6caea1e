# Jaeger for docker-compose.yml's tracing profiles: the static binary chaoslab built from its Go
# module, alone (the docker backend mounts the binary into the base image instead).
FROM scratch
COPY jaeger /jaeger
LABEL chaoslab.image=jaeger
ENTRYPOINT ["/jaeger"]
