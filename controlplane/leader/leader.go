// Package leader runs singleton loops (scheduler, controllers, compaction)
// on exactly one weir server at a time, elected through etcd's concurrency
// API. Every server campaigns; the winner runs the loops until its etcd
// session lease expires or it stops, then another takes over within the
// lease TTL. It owns the election key prefix and nothing else.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Prefix is the etcd key prefix of the election.
const Prefix = "/weir/leader/"

// Elector campaigns for leadership and runs work while it leads. Safe for
// concurrent use.
type Elector struct {
	cli      *clientv3.Client
	identity string
	ttl      int
	log      *slog.Logger
	leading  atomic.Bool
}

// New builds an elector; identity names this server in the election and
// ttl (seconds, ≥ 1) bounds how long a dead leader blocks the others.
func New(cli *clientv3.Client, identity string, ttl int, log *slog.Logger) (*Elector, error) {
	if identity == "" {
		return nil, errors.New("leader: empty identity")
	}
	if ttl < 1 {
		return nil, fmt.Errorf("leader: ttl %d must be at least 1 second", ttl)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Elector{cli: cli, identity: identity, ttl: ttl, log: log}, nil
}

// Leading reports whether this server leads now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Leader returns the identity of the current leader ("" if none).
func (e *Elector) Leader(ctx context.Context) (string, error) {
	resp, err := e.cli.Get(ctx, Prefix, clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Run campaigns until ctx ends. Each time it wins it calls work with a
// context that is cancelled when leadership is lost; work should return
// promptly then. Run returns nil when ctx ends.
func (e *Elector) Run(ctx context.Context, work func(ctx context.Context)) error {
	for ctx.Err() == nil {
		if err := e.term(ctx, work); err != nil && ctx.Err() == nil {
			e.log.Warn("leader election term ended", slog.Any("error", err))
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// term is one session: campaign, lead until the session dies, resign.
func (e *Elector) term(ctx context.Context, work func(ctx context.Context)) error {
	sess, err := concurrency.NewSession(e.cli, concurrency.WithTTL(e.ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open election session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, Prefix)
	if err := el.Campaign(ctx, e.identity); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	e.log.Info("became leader", slog.String("identity", e.identity))
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.leading.Store(true)
	go func() {
		defer close(done)
		work(wctx)
	}()
	select {
	case <-sess.Done():
		e.log.Warn("lost leadership: session expired", slog.String("identity", e.identity))
	case <-ctx.Done():
	case <-done:
	}
	e.leading.Store(false)
	cancel()
	<-done
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx)
	return nil
}
