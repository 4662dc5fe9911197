# Shared by the benchmark scripts (sourced, not run).

# A free loopback port below 32768: apt-cacher-ng 3.7.4 cannot use higher ones.
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
PY
}

# start_nginx HTTP_LINES: one nginx worker pinned to $SERVER_CPU, its files
# in $WORK/nginx, with HTTP_LINES (the servers and their settings) in its
# http block. Sets NGINX_PID and adds it to PIDS.
start_nginx() {
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
$1
}
CONF
  taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx/stderr" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

# The daemon to measure, on stdout: $DEBCACHE when set (another checkout's
# binary, say), else this checkout's release build, built first.
debcache_bin() {
  if [ -n "${DEBCACHE:-}" ]; then
    [ -x "$DEBCACHE" ] || { echo "DEBCACHE=$DEBCACHE is not an executable file" >&2; return 1; }
    realpath "$DEBCACHE"
  else
    cargo build --release --quiet >&2
    echo "$PWD/target/release/debcache"
  fi
}

# wait_port PORT PID LOGFILE NAME: until PORT accepts, or fail showing LOGFILE.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "$4 did not start (port $1); its output:" >&2; cat "$3" >&2 || true; exit 1
}
