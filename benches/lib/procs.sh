# Process and port helpers of the benchmark scripts (benches/*.sh source this file). A script
# that uses `stop` keeps the processes it started in STARTED=(NAME:PID ...); its own cleanup
# trap decides what else to stop or remove.

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
