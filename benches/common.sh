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
