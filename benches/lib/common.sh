# Helpers of the benchmark scripts (benches/*.sh source this file): processes, ports, packages
# and the binary under test. A script that uses `stop` keeps the processes it started in
# STARTED=(NAME:PID ...); its own cleanup trap decides what else to stop or remove. Uses the
# caller's ROOT and WORK.

# alive PID: the process exists and is not a zombie.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}

# stop_pid NAME PID: SIGTERM, wait up to 10 s, then SIGKILL. With a NAME, only while PID is
# still that program (a reused PID is left alone); NAME "" skips that check.
stop_pid() {
  local name=$1 pid=$2 exe
  [[ $pid =~ ^[0-9]+$ ]] && ((pid > 1)) || return 0
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  if [[ -n $name ]]; then
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    [[ $(basename "${exe% (deleted)}") == "$name" ]] || return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    echo "   ${name:-process} (pid $pid) did not stop on SIGTERM, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# stop NAME PID: stop one process this script started and drop it from STARTED.
stop() {
  stop_pid "$1" "$2"
  local keep=() entry
  for entry in ${STARTED[@]+"${STARTED[@]}"}; do [[ $entry == "$1:$2" ]] || keep+=("$entry"); done
  STARTED=(${keep[@]+"${keep[@]}"})
}

# free_ports N: N distinct ports that are free for both UDP and TCP on 127.0.0.1.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
ports = []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
        if port not in ports:
            ports.append(port)
    except OSError:
        pass
    finally:
        u.close()
        t.close()
print(" ".join(map(str, ports)))
PY
}

# install_missing PKG...: installs the Debian packages named (none: nothing), logging to
# $WORK/apt.log; stops the script when apt-get fails.
install_missing() {
  (($#)) || return 0
  echo "== installing $*"
  if ! { timeout 300 apt-get update && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "$@"; } >"$WORK/apt.log" 2>&1; then
    tail -n 30 "$WORK/apt.log" >&2
    echo "could not install $*" >&2
    exit 2
  fi
}

# gslbd_under_test BUILD [CARGO ARGS...]: with BUILD=1 first builds target/release/gslbd
# (`cargo build --release --bin gslbd ARGS`, e.g. --features xdp); then runs a copy of $GSLBD
# from $WORK/bin, so that a rebuild while the benchmark runs does not change the binary under
# test. Sets GSLBD (the copy), GSLBD_SRC and GSLBD_VERSION (version, commit or binary, build
# time).
gslbd_under_test() {
  local build=$1 source
  shift
  if ((build)); then
    echo "== building gslbd (cargo build --release $*)"
    if ! (cd "$ROOT" && timeout 2400 cargo build --release --bin gslbd "$@") >"$WORK/build.log" 2>&1; then
      tail -n 40 "$WORK/build.log" >&2
      echo "build failed" >&2
      exit 2
    fi
  fi
  [[ -x $GSLBD ]] || { echo "$GSLBD is missing (build it, or drop --no-build)" >&2; exit 2; }
  mkdir -p "$WORK/bin"
  cp "$GSLBD" "$WORK/bin/gslbd"
  GSLBD_SRC=$GSLBD
  GSLBD=$WORK/bin/gslbd
  if [[ $GSLBD_SRC -ef $ROOT/target/release/gslbd ]]; then   # built from this tree
    source="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ', uncommitted changes in src')"
  else
    source="binary $GSLBD_SRC"
  fi
  GSLBD_VERSION="$("$GSLBD" --version | awk '{print $2}') ($source, built $(date -r "$GSLBD_SRC" '+%F %T'))"
}
