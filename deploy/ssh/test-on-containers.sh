#!/usr/bin/env bash
# Tries weft-cluster on containers that run sshd (no systemd: the plain-process path):
# `up` on one coordinator and two workers, `status`, a job checked against a local
# pipeline, `rolling-restart`, then `down`; then the same hosts as an HA cluster (two
# coordinators on PostgreSQL in a container of its own, one worker): `up`, `status` naming
# one leader, a job, the leader killed with SIGKILL, a job on its successor,
# `rolling-restart`, `down`. Called by deploy/fault-suite.py.
#
#   deploy/ssh/test-on-containers.sh WEFT-BINARY INPUT-DIR DATA-DIR
#
# DATA-DIR (holding INPUT-DIR) is mounted at the same path in every container.
set -euo pipefail
unset WEFT_PORT WEFT_WORKER_PORT WEFT_COORDINATOR_FLAGS WEFT_WORKER_FLAGS WEFT_COORDINATOR
here="$(cd "$(dirname "$0")" && pwd)"
weft="$1"
input="$2"
data="$3"
base="${WEFT_BASE:-weft-base:bookworm}"
image="weft-sshd-host:test"
name="weftssh$$"
work="$(mktemp -d)"

cleanup() {
  docker rm -f "$name-0" "$name-1" "$name-2" "$name-pg" >/dev/null 2>&1 || true
  docker network rm "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! docker image inspect "$image" >/dev/null 2>&1; then
  cat >"$work/Dockerfile" <<EOF
FROM $base
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server procps >/dev/null \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
CMD ["/usr/sbin/sshd", "-D", "-e"]
EOF
  docker build --quiet --tag "$image" "$work" >/dev/null
fi

ssh-keygen -q -t ed25519 -N '' -f "$work/key"
docker network create "$name" >/dev/null
hosts="$work/hosts"
: >"$hosts"
for i in 0 1 2; do
  docker run -d --name "$name-$i" --hostname "$name-$i" --network "$name" \
    -v "$data:$data" -v "$work/key.pub:/root/.ssh/authorized_keys:ro" "$image" >/dev/null
  ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$name\").IPAddress}}" "$name-$i")"
  echo "root@$ip" >>"$hosts"
done
export WEFT_SSH_OPTS="-i $work/key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
export WEFT_BINARY="$weft" WEFT_SLOTS=2 WEFT_SECRETS="$work/secrets" WEFT_DATA_ROOT="$data"
for host in $(cat "$hosts"); do
  for _ in $(seq 1 50); do
    # shellcheck disable=SC2086
    ssh $WEFT_SSH_OPTS -o BatchMode=yes "$host" true 2>/dev/null && break
    sleep 0.2
  done
done

started=$SECONDS
"$here/weft-cluster" up "$hosts" >"$work/up.log" || { cat "$work/up.log" >&2; exit 1; }
"$here/weft-cluster" status "$hosts" >"$work/status.log" || { cat "$work/status.log" >&2; exit 1; }
healthy="$(grep -c ' healthy' "$work/status.log")"
[ "$healthy" -eq 3 ] || { cat "$work/status.log" >&2; exit 1; }

cat "$input"/* | tr -cs 'A-Za-z' '\n' | grep -v '^$' | LC_ALL=C sort | uniq -c | awk '{ print $2 "\t" $1 }' | LC_ALL=C sort >"$work/want"
words="$(wc -l <"$work/want")"
# A streaming wordcount on the cluster at $1 (coordinator URLs) into $2, checked against the
# local pipeline's.
job() {
  local coordinator="$1" out="$2"
  "$weft" submit --coordinator "$coordinator" --tls-dir "$WEFT_SECRETS" --token-file "$WEFT_SECRETS/admin.token" \
    --input "$input" --output "$out" --reduce-tasks 2 \
    --mapper "tr -cs 'A-Za-z' '\\n' | awk 'length(\$0) > 0 { print \$0 \"\\t1\" }'" \
    --reducer "awk -F'\\t' '{ s[\$1] += \$2 } END { for (k in s) print k \"\\t\" s[k] }'" --wait >/dev/null 2>"$work/job.log" \
    || { cat "$work/job.log" >&2; exit 1; }
  [ -f "$out/_SUCCESS" ] || { echo "no _SUCCESS in $out" >&2; exit 1; }
  LC_ALL=C sort "$out"/part-* >"$work/got"
  cmp -s "$work/got" "$work/want" || { echo "the job's output differs from the local pipeline's" >&2; diff "$work/got" "$work/want" | head >&2; exit 1; }
}
job "https://$(head -n 1 "$hosts" | cut -d@ -f2):7070" "$data/ssh-out"

"$here/weft-cluster" rolling-restart "$hosts" >"$work/restart.log" || { cat "$work/restart.log" >&2; exit 1; }
"$here/weft-cluster" down "$hosts" >/dev/null
if "$here/weft-cluster" status "$hosts" >/dev/null 2>&1; then
  echo "status reports healthy hosts after down" >&2
  exit 1
fi
single=$((SECONDS - started))

# The same hosts as an HA cluster: two coordinators on PostgreSQL, the third host a worker.
started=$SECONDS
"$here/../postgres/build.sh" >/dev/null
pg="$name-pg"
"$weft" certs --dir "$work/pg" --server "$pg" 2>/dev/null
od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$work/pg/password" && echo >>"$work/pg/password"
docker run -d --name "$pg" --hostname "$pg" --network "$name" -v "$work/pg:/secrets:ro" \
  -e WEFT_STATE_PASSWORD_FILE=/secrets/password -e "WEFT_STATE_CERT=/secrets/$pg.pem" -e "WEFT_STATE_KEY=/secrets/$pg.key" \
  weft-postgres:latest >/dev/null
for _ in $(seq 1 150); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$pg")" = healthy ] && break
  sleep 0.2
done
ha_hosts="$work/ha-hosts"
mapfile -t addresses <"$hosts"
printf 'coordinator %s\ncoordinator %s\n%s\n' "${addresses[@]}" >"$ha_hosts"
export WEFT_SECRETS="$work/ha-secrets" WEFT_STATE="postgres://weft@$pg/postgres" \
  WEFT_STATE_PASSWORD_FILE="$work/pg/password" WEFT_STATE_CA="$work/pg/ca.pem" WEFT_COORDINATOR_FLAGS="--leader-lease 3"
"$here/weft-cluster" up "$ha_hosts" >"$work/up.log" || { cat "$work/up.log" >&2; docker logs "$pg" >&2; exit 1; }
"$here/weft-cluster" status "$ha_hosts" >"$work/status.log" || { cat "$work/status.log" >&2; exit 1; }
[ "$(grep -c ' healthy' "$work/status.log")" -eq 3 ] && [ "$(grep -c '(leader)' "$work/status.log")" -eq 1 ] \
  || { echo "not 3 healthy hosts with one leader:" >&2; cat "$work/status.log" >&2; exit 1; }
both="https://$(echo "${addresses[0]}" | cut -d@ -f2):7070,https://$(echo "${addresses[1]}" | cut -d@ -f2):7070"
job "$both" "$data/ssh-ha-out-1"
leader="$(grep '(leader)' "$work/status.log" | cut -d' ' -f1)"
# shellcheck disable=SC2086
ssh $WEFT_SSH_OPTS -o BatchMode=yes "$leader" 'pkill -KILL -f "weft coordinator"'
job "$both" "$data/ssh-ha-out-2"
"$here/weft-cluster" rolling-restart "$ha_hosts" >"$work/restart.log" || { cat "$work/restart.log" >&2; exit 1; }
"$here/weft-cluster" status "$ha_hosts" >"$work/status.log" || { cat "$work/status.log" >&2; exit 1; }
[ "$(grep -c '(leader)' "$work/status.log")" -eq 1 ] || { cat "$work/status.log" >&2; exit 1; }
"$here/weft-cluster" down "$ha_hosts" >/dev/null
echo "weft-cluster up on 3 sshd containers: 3 hosts healthy; a job over ssh-deployed workers: $words words exact; rolling-restart healthy; down stopped every host ($single s). As an HA cluster (2 coordinators on PostgreSQL, 1 worker): one leader; a job exact; the leader killed with SIGKILL, a job exact on its successor; rolling-restart healthy with one leader ($((SECONDS - started)) s)"
