# Toxiproxy from the static binary `make setup` built (CGO disabled), so no base image is needed.
FROM scratch
COPY toxiproxy-server /toxiproxy-server
EXPOSE 8474
LABEL chaoslab.image=toxiproxy
ENTRYPOINT ["/toxiproxy-server"]
CMD ["-host=0.0.0.0"]
