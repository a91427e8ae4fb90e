// Package storage keeps API objects in etcd: one key per object, the etcd
// ModRevision as the object's resourceVersion, compare-and-swap updates and
// allocation claims written in the same transaction as the object that owns
// them. It knows nothing about object schemas; values are opaque bytes.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors returned by Store; check them with errors.Is.
var (
	ErrNotFound  = errors.New("storage: not found")
	ErrExists    = errors.New("storage: already exists")
	ErrConflict  = errors.New("storage: resource version conflict")
	ErrCompacted = errors.New("storage: revision compacted")
	ErrFuture    = errors.New("storage: revision not yet reached")
)

// ClaimTakenError says an allocation key another object already holds.
type ClaimTakenError struct {
	Claim string
	Owner string // the key of the object that holds the claim
}

func (e *ClaimTakenError) Error() string {
	return fmt.Sprintf("storage: %s is held by %s", e.Claim, e.Owner)
}

// KV is one stored object.
type KV struct {
	Key   string
	Value []byte
	// Rev is the key's ModRevision: the object's resourceVersion.
	Rev int64
}

// Store reads and writes objects in etcd. It is safe for concurrent use.
type Store struct {
	cli     *clientv3.Client
	latency *prometheus.HistogramVec // by operation; may be nil
}

// New returns a Store over cli. latency, if not nil, observes every etcd
// round trip by operation (label "operation").
func New(cli *clientv3.Client, latency *prometheus.HistogramVec) *Store {
	return &Store{cli: cli, latency: latency}
}

// Client is the underlying etcd client, for watches and elections.
func (s *Store) Client() *clientv3.Client { return s.cli }

func (s *Store) observe(op string, start time.Time) {
	if s.latency != nil {
		s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

// Get reads one object.
func (s *Store) Get(ctx context.Context, key string) (KV, error) {
	defer s.observe("get", time.Now())
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return KV{}, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	kv := resp.Kvs[0]
	return KV{Key: string(kv.Key), Value: kv.Value, Rev: kv.ModRevision}, nil
}

// List reads every object under prefix, consistently, and returns the store
// revision of the read so a watch can resume from it without a gap.
func (s *Store) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	defer s.observe("list", time.Now())
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = KV{Key: string(kv.Key), Value: kv.Value, Rev: kv.ModRevision}
	}
	return out, resp.Header.Revision, nil
}

// Revision returns the store's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, "/registry/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// CheckRevision reports ErrCompacted when rev is older than the store's
// compaction point and ErrFuture when it is newer than the current revision.
func (s *Store) CheckRevision(ctx context.Context, prefix string, rev int64) error {
	_, err := s.cli.Get(ctx, prefix, clientv3.WithRev(rev), clientv3.WithCountOnly(), clientv3.WithLimit(1))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpctypes.ErrCompacted):
		return ErrCompacted
	case errors.Is(err, rpctypes.ErrFutureRev):
		return ErrFuture
	default:
		return fmt.Errorf("check revision %d: %w", rev, err)
	}
}

// Compact discards history before rev.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	defer s.observe("compact", time.Now())
	if _, err := s.cli.Compact(ctx, rev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("compact to %d: %w", rev, err)
	}
	return nil
}

// Claims are allocation keys (a ClusterIP, a NodePort, a pod CIDR) written or
// removed in the same transaction as the object that owns them, so an
// allocation is never given twice and never outlives its owner.
type Claims struct {
	// Take lists keys that must not exist; each is created holding the
	// object's key.
	Take []string
	// Release lists keys deleted with the write.
	Release []string
	// Require lists keys that must exist (the object's namespace), checked
	// in the same transaction so a create never lands in a deleted namespace.
	Require []string
}

// MissingError says a required key (see Claims.Require) does not exist.
type MissingError struct{ Key string }

func (e *MissingError) Error() string { return fmt.Sprintf("storage: %s does not exist", e.Key) }

// Create writes a new object; ErrExists if the key is there, a
// *ClaimTakenError if a claim is held. Nothing is written on error.
func (s *Store) Create(ctx context.Context, key string, value []byte, c Claims) (int64, error) {
	defer s.observe("create", time.Now())
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	return s.txn(ctx, key, true, cmps, clientv3.OpPut(key, string(value)), c)
}

// Update replaces an object whose ModRevision is rev (ErrConflict otherwise,
// ErrNotFound if it is gone).
func (s *Store) Update(ctx context.Context, key string, value []byte, rev int64, c Claims) (int64, error) {
	defer s.observe("update", time.Now())
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}
	return s.txn(ctx, key, false, cmps, clientv3.OpPut(key, string(value)), c)
}

// Delete removes an object whose ModRevision is rev (any revision if rev is
// 0) and releases its claims. It returns the revision of the delete.
func (s *Store) Delete(ctx context.Context, key string, rev int64, c Claims) (int64, error) {
	defer s.observe("delete", time.Now())
	var cmps []clientv3.Cmp
	if rev > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	} else {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), ">", 0))
	}
	return s.txn(ctx, key, false, cmps, clientv3.OpDelete(key), c)
}

func (s *Store) txn(ctx context.Context, key string, create bool, cmps []clientv3.Cmp, op clientv3.Op, c Claims) (int64, error) {
	ops := []clientv3.Op{op}
	for _, k := range c.Take {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		ops = append(ops, clientv3.OpPut(k, key))
	}
	for _, k := range c.Release {
		ops = append(ops, clientv3.OpDelete(k))
	}
	for _, k := range c.Require {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), ">", 0))
	}
	// On failure read back the key and the claims to say precisely why.
	elseOps := []clientv3.Op{clientv3.OpGet(key)}
	for _, k := range c.Take {
		elseOps = append(elseOps, clientv3.OpGet(k))
	}
	for _, k := range c.Require {
		elseOps = append(elseOps, clientv3.OpGet(k, clientv3.WithCountOnly()))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(elseOps...).Commit()
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	for i, k := range c.Take {
		if r := resp.Responses[i+1].GetResponseRange(); r != nil && len(r.Kvs) > 0 && string(r.Kvs[0].Value) != key {
			return 0, &ClaimTakenError{Claim: k, Owner: string(r.Kvs[0].Value)}
		}
	}
	for i, k := range c.Require {
		if r := resp.Responses[1+len(c.Take)+i].GetResponseRange(); r != nil && r.Count == 0 {
			return 0, &MissingError{Key: k}
		}
	}
	cur := resp.Responses[0].GetResponseRange()
	exists := cur != nil && len(cur.Kvs) > 0
	switch {
	case create && exists:
		return 0, ErrExists
	case !create && !exists:
		return 0, ErrNotFound
	case !create:
		return 0, ErrConflict
	}
	// The object side held, so a claim failed; it may be ours already.
	return 0, fmt.Errorf("write %s: a claim is already held by this object", key)
}
