#!/bin/sh
# End to end through a throwaway kiln server (SQLite + folder, 127.0.0.1): push the
# files bench/features/pit.py generated, apply an Entity and a FeatureView,
# time kiln feature training-set (checkout, join, hash, store, record).
#   bench/features/pit_server.sh DIR [KILN]
set -eu
DIR=$1; KILN=${2:-bin/kiln}
W=$(mktemp -d /tmp/kiln-pit-srv-XXXXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
GPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$KILN server --addr 127.0.0.1:$PORT --grpc-addr 127.0.0.1:$GPORT --db sqlite://$W/kiln.db --artifacts file://$W/artifacts > $W/server.log 2>&1 &
SPID=$!
trap 'kill $SPID; wait $SPID 2>/dev/null; rm -rf $W' EXIT
export KILN_URL=http://127.0.0.1:$PORT KILN_CACHE_DIR=$W/cache
for i in $(seq 1 100); do curl -sf $KILN_URL/health >/dev/null && break; sleep 0.1; done
$KILN data add pit-features $DIR/features.parquet >/dev/null
$KILN data add pit-entities $DIR/entities.parquet >/dev/null
cat > $W/f.yaml <<Y
apiVersion: kiln.dev/v1
kind: Entity
metadata: {name: customer}
spec: {join_keys: [customer_id]}
---
apiVersion: kiln.dev/v1
kind: FeatureView
metadata: {name: stats}
spec:
  entities: [customer]
  source: {dataset: pit-features@1}
  timestamp_field: event_timestamp
  created_timestamp_field: created
  ttl: 7d
  online: false
  features: [{name: f_float, type: float64}, {name: f_int, type: int64}, {name: f_cnt, type: int64}]
Y
$KILN apply -f $W/f.yaml >/dev/null
/usr/bin/time -f "training-set wall %e s" $KILN feature training-set --entities pit-entities@1 --features stats:f_float,stats:f_int,stats:f_cnt --output pit-train
grep '"training set"\|msg=.training set' $W/server.log | tail -1
