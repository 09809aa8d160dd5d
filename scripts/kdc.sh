#!/usr/bin/env bash
# A throwaway MIT Kerberos realm on loopback for the Negotiate/Kerberos tests, entirely under
# target/kdc: no system service, no file outside the build directory.
#
#   scripts/kdc.sh start    creates the realm (once), starts krb5kdc on a free loopback port,
#                           writes the keytabs and a ticket cache, and prints the environment
#                           the tests read (also written to target/kdc/env)
#   scripts/kdc.sh stop     stops that krb5kdc
#
# Principals (realm CONTOSO.TEST): sync-admin (the service account, keytab
# target/kdc/sync-admin.keytab, ticket cache target/kdc/ccache) and HTTP/localhost (the EWS
# emulator's service principal, keytab target/kdc/http.keytab).
#
# Needs Debian's krb5-kdc, krb5-admin-server and krb5-user (scripts/test-all.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(pwd)/target/kdc
realm=CONTOSO.TEST
host=localhost

missing=()
for tool in kdb5_util kadmin.local krb5kdc kinit; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "kdc.sh: missing ${missing[*]}: apt-get install krb5-kdc krb5-admin-server krb5-user" >&2
  exit 1
fi
export PATH=$PATH:/usr/sbin

stop() {
  if [ -f "$dir/krb5kdc.pid" ]; then
    kill "$(cat "$dir/krb5kdc.pid")" 2>/dev/null || true
    rm -f "$dir/krb5kdc.pid"
  fi
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

stop
mkdir -p "$dir"
# A free loopback port, asked of the kernel.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat >"$dir/krb5.conf" <<EOF
[libdefaults]
    default_realm = $realm
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    ignore_acceptor_hostname = false
    udp_preference_limit = 1
[realms]
    $realm = {
        kdc = 127.0.0.1:$port
    }
[domain_realm]
    $host = $realm
    .contoso.test = $realm
EOF

cat >"$dir/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$port
    kdc_tcp_listen = 127.0.0.1:$port
[realms]
    $realm = {
        database_name = $dir/principal
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        max_life = 10h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }
[logging]
    kdc = FILE:$dir/krb5kdc.log
EOF
: >"$dir/kadm5.acl"

export KRB5_CONFIG=$dir/krb5.conf KRB5_KDC_PROFILE=$dir/kdc.conf

if [ ! -f "$dir/principal" ]; then
  kdb5_util create -s -r "$realm" -P "kdc-master-$(date +%s%N)" >/dev/null
  kadmin.local -q "addprinc -randkey sync-admin@$realm" >/dev/null
  kadmin.local -q "addprinc -randkey HTTP/$host@$realm" >/dev/null
  kadmin.local -q "ktadd -k $dir/sync-admin.keytab sync-admin@$realm" >/dev/null
  kadmin.local -q "ktadd -k $dir/http.keytab HTTP/$host@$realm" >/dev/null
fi

krb5kdc -P "$dir/krb5kdc.pid" -r "$realm"
# krb5kdc forks into the background; wait until it answers.
for _ in $(seq 50); do
  if kinit -k -t "$dir/sync-admin.keytab" -c "FILE:$dir/ccache" "sync-admin@$realm" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
kinit -k -t "$dir/sync-admin.keytab" -c "FILE:$dir/ccache" "sync-admin@$realm"

cat >"$dir/env" <<EOF
export KRB5_CONFIG=$dir/krb5.conf
export KRB5CCNAME=FILE:$dir/ccache
export KRB5_CLIENT_KTNAME=FILE:$dir/sync-admin.keytab
export KRB5_KTNAME=FILE:$dir/http.keytab
export KRB5RCACHEDIR=$dir
export EXCHANGE_SYNC_TEST_KDC=$realm
EOF
cat "$dir/env"
