// Package dataset versions data the way DVC does, without DVC's slowness:
// content-addressed files, manifests for folders, remotes, a stat cache,
// parallel hashing and transfers, checkouts, diffs, deterministic splits,
// and the metadata (names, versions, tags, validation results, lineage)
// kept in the metadata database.
//
// # Content
//
// A file's digest is its BLAKE3-256 hash (Digest; the same as b3sum's). A
// version's content is a Manifest: its files' relative, slash-separated
// paths (validated by ValidatePath: no "..", no absolute path, no NUL),
// sizes, digests and executable bits, sorted by path. The manifest's
// canonical JSON encoding (Encode; DecodeManifest accepts only that form)
// hashes to the version digest, so equal trees have equal digests.
//
// Objects and manifests live in a Remote. BucketRemote keeps them in the
// artifact store under a prefix of their own:
//
//	datasets/objects/<d[0:2]>/<d[2:]>
//	datasets/packs/<p>.pack, <p>.idx   (small objects of a batch; see PackPrefix)
//	datasets/manifests/<digest>.json
//
// so identical content is stored once across versions and datasets. Cache
// is the same layout in a local folder. Every Remote verifies what it is
// given (Put fails with ErrDigestMismatch and stores nothing), and every
// reader verifies what it gets.
//
// # Local work (kiln data add / push / pull / checkout)
//
//	src, _ := dataset.OpenSource(ctx, "./data", blob.Options{}) // or "s3://bucket/prefix"
//	cache, _ := dataset.OpenStatCache(filepath.Join(userCacheDir, "kiln", "statcache"))
//	m, _, _ := dataset.Hash(ctx, src, dataset.HashOptions{StatCache: cache, Progress: bars})
//	cache.Save()
//	dataset.Push(ctx, src, m, remote, dataset.TransferOptions{Progress: bars})
//	store.CreateVersion(ctx, dataset.NewVersion{Dataset: "sales", Manifest: m, Source: src.URI()})
//
//	dataset.Pull(ctx, remote, localCache, v.Digest, "./data", dataset.TransferOptions{}, dataset.CheckoutOptions{Clean: true})
//
// Hash reads files with a pool of GOMAXPROCS workers and 1 MiB reads, and
// skips files whose path, size, modification time and inode the StatCache
// knows. Push asks the remote which objects it lacks (Has, in batches) and
// uploads only those, several at once, then the manifest. Checkout writes
// only the files that are missing or differ, each through a temporary
// file renamed into place, and with CheckoutOptions.Clean removes what the
// manifest does not list. Progress is reported through the Progress
// interface; the package prints nothing.
//
// # Metadata
//
// Store keeps datasets (unique names, see ValidateName), their numbered
// versions, tags and descriptions, validation results, and lineage links
// from versions to MLflow runs (RunLink, with the MLflow dataset input
// that linked them) and to registered model versions (ModelLink), on
// SQLite or PostgreSQL. Versions are immutable: the database refuses any
// change of their content columns; only descriptions, tags, and the table
// schema and profile derived from the content can be set. Creating a
// version whose digest equals the latest one's returns that version
// instead. Errors carry errdefs kinds (not found, already exists,
// invalid argument, invalid state).
//
// # Diffs and splits
//
// DiffManifests lists the files added, removed and changed between two
// versions; Diff.ChangedTables picks out the table files whose rows and
// schemas a caller may compare with package table.
//
// Split (with SplitTable beneath it, for a local file) cuts a tabular version (CSV, Parquet or JSON Lines, read with
// package table) into seeded parts — random, stratified, by time or by
// group, see SplitMethod — and records each part as a version of its own
// dataset ("<name>-train" …) with the source as parent and the SplitSpec,
// so a test set stays untouched and repeating a split creates nothing new.
package dataset
