#!/bin/sh
# radosgw.sh - a throwaway single-node Ceph cluster with a RADOS Gateway (S3) on
# 127.0.0.1, for the S3 and R2 tests.
#
#   radosgw.sh start DIR PORT [ACCESS_KEY SECRET_KEY]   -> ready when it returns 0
#   radosgw.sh stop DIR
#   radosgw.sh user DIR UID ACCESS SECRET | suspend DIR UID
#
# One ceph-mon, one memstore OSD (data lives in memory), no authentication inside
# the cluster, msgr2 only, everything bound to 127.0.0.1. Needs the Debian packages
# radosgw ceph-mon ceph-osd. Logs are in DIR/log.
set -eu

cmd=${1:?usage: radosgw.sh start|stop DIR [PORT KEY SECRET]}
dir=${2:?directory}

ceph_stop() {
	# radosgw first, then the OSD, then the mon.
	for n in rgw osd mon; do
		f="$dir/run/$n.pid"
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if kill "$pid" 2>/dev/null; then
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			kill -9 "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
}

if [ "$cmd" = stop ]; then
	ceph_stop
	exit 0
fi
# radosgw.sh user DIR UID ACCESS SECRET / radosgw.sh suspend DIR UID: a second user,
# and revoking one (for the "key revoked on a live mount" test).
if [ "$cmd" = user ]; then
	radosgw-admin -c "$dir/ceph.conf" -n client.rgw user create --uid "$3" \
		--display-name "$3" --access-key "$4" --secret-key "$5" >/dev/null
	exit $?
fi
if [ "$cmd" = suspend ]; then
	radosgw-admin -c "$dir/ceph.conf" -n client.rgw user suspend --uid "$3" >/dev/null
	exit $?
fi
[ "$cmd" = start ] || { echo "radosgw.sh: unknown command $cmd" >&2; exit 2; }

port=${3:?port}
akey=${4:-lexfsTESTACCESSKEY01}
skey=${5:-lexfsTESTsecretKEY0123456789abcdefghijkl}
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
	command -v $b >/dev/null || {
		echo "radosgw.sh: $b missing: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd" >&2
		exit 1
	}
done

# Ports: the mon and the daemons' msgr2 range sit just above the S3 port.
monport=$((port + 1))
pmin=$((port + 2))
pmax=$((port + 40))
rm -rf "$dir"
mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/rgw"
fsid=$(cat /proc/sys/kernel/random/uuid)
conf="$dir/ceph.conf"
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$monport
mon_initial_members = a
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_mon_client_mode = crc secure
ms_bind_port_min = $pmin
ms_bind_port_max = $pmax
ms_bind_ipv6 = false
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
log_to_stderr = false
err_to_stderr = false
keyring = /dev/null
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
paxos_propose_interval = 0.01
mon_data = $dir/mon/\$cluster-\$id
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = 3221225472
osd_max_object_size = 1073741824
mon_osd_full_ratio = 0.98
osd_heartbeat_grace = 60
rgw_frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw_data = $dir/rgw
rgw_gc_obj_min_wait = 0
rgw_gc_processor_period = 5
rgw_enable_usage_log = false
rgw_dns_name = localhost
rgw_zone = default
rgw_max_chunk_size = 4194304
# Server-side encryption for the SSE tests. SSE-C keys travel in request headers:
# radosgw refuses them over plain HTTP unless told (the tests run on loopback).
# SSE-KMS with the "testing" backend takes its keys from this list (key id = name).
rgw_crypt_require_ssl = false
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = testkey-1=bGV4ZnMtdGVzdC1rbXMta2V5LW51bWJlci1vbmUtMDE=
CONF

monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$monport]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mkfs-mon.out" 2>&1
ceph-mon -c "$conf" -i a --pid-file "$dir/run/mon.pid"

C="ceph -c $conf --connect-timeout 20"
osd=$($C osd create)
mkdir -p "$dir/osd/ceph-$osd"
ceph-osd -c "$conf" -i "$osd" --mkfs >"$dir/log/mkfs-osd.out" 2>&1
ceph-osd -c "$conf" -i "$osd" --pid-file "$dir/run/osd.pid"

for p in .rgw.root default.rgw.log default.rgw.control default.rgw.meta \
	default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
	$C osd pool create "$p" 8 8 >/dev/null 2>&1
	$C osd pool set "$p" size 1 --yes-i-really-mean-it >/dev/null 2>&1 || true
	$C osd pool application enable "$p" rgw >/dev/null 2>&1 || true
done

radosgw -c "$conf" -n client.rgw --pid-file "$dir/run/rgw.pid" >"$dir/log/rgw.out" 2>&1

i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null)" = 200 ]; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then
		echo "radosgw.sh: no HTTP 200 from 127.0.0.1:$port after 60 s; see $dir/log" >&2
		ceph_stop
		exit 1
	fi
	sleep 0.1
done

radosgw-admin -c "$conf" -n client.rgw user create --uid lexfs --display-name lexfs \
	--access-key "$akey" --secret-key "$skey" >"$dir/log/user.json" 2>"$dir/log/user.err" || {
	echo "radosgw.sh: user create failed; see $dir/log/user.err" >&2
	ceph_stop
	exit 1
}
echo "radosgw ready on http://127.0.0.1:$port"
