#!/bin/sh
# Starts PostgreSQL as weft's state database. The first start makes the cluster: its one
# role, weft, with the password in $WEFT_STATE_PASSWORD_FILE; over the network only TLS and
# that password (scram-sha-256) are taken, with the certificate and key in $WEFT_STATE_CERT
# and $WEFT_STATE_KEY (copied in for the postgres user at each start). Runs as root only to
# copy those in, then becomes postgres.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
: "${WEFT_STATE_PASSWORD_FILE:?the weft role's password file}"
: "${WEFT_STATE_CERT:?the server certificate}" "${WEFT_STATE_KEY:?its key}"

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# Its own on a fresh volume (a Kubernetes claim mounted at /var/lib/postgresql is root's).
install -d -o postgres -g postgres -m 0700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  install -o postgres -g postgres -m 0600 "$WEFT_STATE_PASSWORD_FILE" /tmp/weft-password
  as_postgres "$bin/initdb" -D "$data" -U weft --pwfile=/tmp/weft-password \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  rm -f /tmp/weft-password
  cat >"$data/pg_hba.conf" <<'HBA'
# The socket inside the container (health checks); the network: TLS and the password only.
local   all  all                 peer
hostssl all  all  0.0.0.0/0      scram-sha-256
hostssl all  all  ::/0           scram-sha-256
HBA
  cat >>"$data/postgresql.conf" <<'CONF'
listen_addresses = '*'
unix_socket_directories = '/tmp'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
CONF
fi
install -o postgres -g postgres -m 0644 "$WEFT_STATE_CERT" "$data/server.crt"
install -o postgres -g postgres -m 0600 "$WEFT_STATE_KEY" "$data/server.key"
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data"
