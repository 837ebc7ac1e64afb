"""Feast's online read path for bench/features/online_anchor.py.

Writes --feast-entities entities x 100 Float64 features with Feast's own
online_write_batch into its SqliteOnlineStore (a file under --dir) and its
RedisOnlineStore (db 1 of the benchmark's Redis), then times online_read of 1
and 10 random entities, the call Feast's feature servers make per request.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

N_FEATURES = 100


def run_feast(args, results: dict, measure) -> str:
    import feast
    from feast import Entity, FeatureView, Field, FileSource
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
    from feast.protos.feast.types.Value_pb2 import Value as ValueProto
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    d = Path(args.dir) / "feast"
    d.mkdir(parents=True, exist_ok=True)
    customer = Entity(name="customer", join_keys=["customer_id"])
    fv = FeatureView(
        name="bench",
        entities=[customer],
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(N_FEATURES)],
        source=FileSource(path=str(d / "unused.parquet"), timestamp_field="event_timestamp"),
        online=True,
    )
    n = args.feast_entities
    rng = random.Random(11)
    now = datetime.now(timezone.utc)

    def key(i):
        return EntityKeyProto(join_keys=["customer_id"], entity_values=[ValueProto(int64_val=i)])

    def rows(lo, hi):
        return [
            (key(i), {f"f{j}": ValueProto(double_val=rng.random()) for j in range(N_FEATURES)}, now, None)
            for i in range(lo, hi)
        ]

    notes = [f"feast {feast.__version__}, {n} entities x {N_FEATURES} features"]
    stores = []
    sqlite_path = d / f"online-{n}.db"
    cfg = RepoConfig(
        project="kilnbench",
        registry=str(d / "registry.db"),
        provider="local",
        online_store=SqliteOnlineStoreConfig(path=str(sqlite_path)),
        entity_key_serialization_version=3,
    )
    stores.append(("feast-sqlite", SqliteOnlineStore(), cfg, not sqlite_path.exists()))
    if args.redis:
        u = urlparse(args.redis)
        rcfg = RepoConfig(
            project="kilnbench",
            registry=str(d / "registry.db"),
            provider="local",
            online_store=RedisOnlineStoreConfig(connection_string=f"{u.hostname}:{u.port},db=1", skip_dedup=True),
            entity_key_serialization_version=3,
        )
        rs = RedisOnlineStore()
        client = rs._get_client(rcfg.online_store)
        fresh = client.dbsize() < n
        if fresh:
            client.flushdb()
        stores.append(("feast-redis", rs, rcfg, fresh))
    for name, st, c, fresh in stores:
        if fresh:
            st.update(c, tables_to_delete=[], tables_to_keep=[fv], entities_to_delete=[], entities_to_keep=[customer], partial=False)
            t0 = time.time()
            for lo in range(0, n, 5000):
                st.online_write_batch(c, fv, rows(lo, min(lo + 5000, n)), None)
            el = time.time() - t0
            notes.append(f"{name} load {el:.1f}s ({n / el:.0f} entities/s)")
        for k in (1, 10):

            def read(keys, st=st, c=c):
                out = st.online_read(c, fv, keys)
                return out if out[-1][1] is not None and len(out[-1][1]) == N_FEATURES else None

            results[f"{name}/keys={k}"] = measure(read, lambda k=k: [key(rng.randrange(n)) for _ in range(k)], args.iters)
    return "; ".join(notes)
