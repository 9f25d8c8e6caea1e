#!/bin/sh
# Make a Docker engine reachable for `--backend docker`.
#
# If one answers already, say so and stop. Otherwise, as root: install Debian's docker.io when
# dockerd is missing, start dockerd in the background (its log in $CHAOSLAB_DOCKERD_LOG), and
# wait for its socket. Not root: print what to do instead. Safe to run again.
# As root it also installs debootstrap, which builds the labs' base image without a registry
# (not needed when CHAOSLAB_BASE_IMAGE names an image you can pull), and docker-compose, for
# people who read docker-compose.yml.
set -eu

LOG="${CHAOSLAB_DOCKERD_LOG:-/var/log/chaoslab-dockerd.log}"
SOCKET="${CHAOSLAB_DOCKER_SOCKET:-/var/run/docker.sock}"
WAIT="${CHAOSLAB_DOCKERD_WAIT:-60}"

say() { printf 'docker-engine: %s\n' "$*"; }
die() { printf 'docker-engine: %s\n' "$*" >&2; exit 1; }

engine_answers() {
    # The socket answering /_ping is enough; the docker CLI may not be installed.
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 3 --unix-socket "$SOCKET" http://docker/_ping >/dev/null 2>&1
    elif command -v docker >/dev/null 2>&1; then
        docker -H "unix://$SOCKET" info >/dev/null 2>&1
    else
        python3 - "$SOCKET" <<'EOF' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
sys.exit(0 if b" 200 " in s.recv(64) else 1)
EOF
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "$@" >/dev/null; then
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends "$@" >/dev/null \
            || die "apt-get install $* failed; see the output above."
    fi
}

need_debootstrap() {
    [ "$(id -u)" -eq 0 ] && [ -z "${CHAOSLAB_BASE_IMAGE:-}" ] \
        && ! command -v debootstrap >/dev/null 2>&1
}

need_compose() {
    [ "$(id -u)" -eq 0 ] && ! command -v docker-compose >/dev/null 2>&1 \
        && ! docker compose version >/dev/null 2>&1
}

install_compose() {
    # Only for people (and the tests) reading docker-compose.yml; the harness uses the SDK.
    if need_compose; then
        say "installing Debian's docker-compose (apt-get) for docker-compose.yml ..."
        apt_install docker-compose
    fi
}

if [ -z "${DOCKER_HOST:-}" ] && engine_answers; then
    if need_debootstrap; then
        say "installing debootstrap (apt-get) for the base image ..."
        apt_install debootstrap
    fi
    install_compose
    say "a Docker engine is running ($SOCKET)."
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST is set; this script only manages a local engine. Start the
engine behind DOCKER_HOST, or unset it and run this script again."
fi
if [ "$(id -u)" -ne 0 ]; then
    die "no Docker engine answers on $SOCKET and you are not root.
  Fix: start Docker (e.g. 'sudo systemctl start docker', or Docker Desktop), or run
  'sudo scripts/docker-engine.sh', or use '--backend process' (no Docker needed)."
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "installing Debian's docker.io (apt-get) ..."
    apt_install docker.io
fi
if need_debootstrap; then
    say "installing debootstrap (apt-get) for the base image ..."
    apt_install debootstrap
fi

# A service manager may own dockerd; ask it first, then fall back to starting it by hand.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker >/dev/null 2>&1 || true
fi

running() {
    # A killed process can linger as a zombie until its parent reaps it: that one is gone.
    state=$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != "Z" ]
}

dockerd_alive() {
    for pid in $(pgrep -x dockerd 2>/dev/null); do
        if running "$pid"; then
            return 0
        fi
    done
    return 1
}

start_dockerd() {
    # Stale pid files of a killed dockerd, or of the containerd it ran, stop the next start.
    # Stale also when their pid now belongs to another process (pids are reused: a kernel
    # thread held a dead dockerd's pid once), so the program's name must match too.
    for entry in "/var/run/docker.pid dockerd" "/var/run/docker/containerd/containerd.pid containerd"; do
        pidfile=${entry% *}
        program=${entry#* }
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if ! running "$pid" || [ "$(ps -o comm= -p "$pid" 2>/dev/null)" != "$program" ]; then
                rm -f "$pidfile"
            fi
        fi
    done
    mkdir -p "$(dirname "$LOG")"
    say "starting dockerd (log: $LOG) ..."
    # setsid + nohup: the engine outlives this shell and the terminal that ran it.
    setsid nohup dockerd -H "unix://$SOCKET" >>"$LOG" 2>&1 </dev/null &
}

if ! engine_answers; then
    started=0
    if dockerd_alive; then
        say "dockerd is running but $SOCKET does not answer yet; waiting."
    else
        start_dockerd
        started=1
    fi
    waited=0
    until engine_answers; do
        if [ "$waited" -ge "$WAIT" ]; then
            tail -n 20 "$LOG" >&2 2>/dev/null || true
            die "dockerd did not answer on $SOCKET within ${WAIT}s; its log is above ($LOG)."
        fi
        if ! dockerd_alive; then
            if [ "$started" -eq 0 ]; then
                # The dockerd we were waiting for died (or was a dying one): start our own.
                start_dockerd
                started=1
            else
                tail -n 20 "$LOG" >&2 2>/dev/null || true
                die "dockerd exited; its log is above ($LOG)."
            fi
        fi
        sleep 1
        waited=$((waited + 1))
    done
fi
install_compose
say "the Docker engine is running ($SOCKET)."
