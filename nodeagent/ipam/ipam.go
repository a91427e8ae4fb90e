package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrExhausted is returned when every usable address of the range is taken.
var ErrExhausted = errors.New("ipam: no free address")

// ErrOwner is returned for an owner id that cannot be stored.
var ErrOwner = errors.New("ipam: invalid owner")

const (
	lastFile  = "last_reserved_ip"
	lockFile  = "lock"
	rangeFile = "range"
)

// Allocator reserves addresses of one prefix for owners (pod UIDs). Its
// methods are safe for concurrent use, and several processes may share one
// directory: each operation holds an exclusive flock on it.
type Allocator struct {
	dir    string
	prefix netip.Prefix
	mu     sync.Mutex
}

// New returns an allocator for the IPv4 prefix podCIDR with its state in
// dir. It does no I/O; the directory is created on first use. A directory
// that held another range keeps its files, but only addresses inside
// podCIDR count.
func New(dir string, podCIDR netip.Prefix) (*Allocator, error) {
	if dir == "" {
		return nil, errors.New("ipam: empty state directory")
	}
	if !podCIDR.IsValid() || !podCIDR.Addr().Is4() {
		return nil, fmt.Errorf("ipam: pod CIDR %s: want an IPv4 prefix", podCIDR)
	}
	if podCIDR.Bits() > 30 {
		return nil, fmt.Errorf("ipam: pod CIDR %s: too small (want /30 or larger)", podCIDR)
	}
	return &Allocator{dir: dir, prefix: podCIDR.Masked()}, nil
}

// Prefix is the range addresses come from.
func (a *Allocator) Prefix() netip.Prefix { return a.prefix }

// Gateway is the first address of the range, kept for the node bridge.
func (a *Allocator) Gateway() netip.Addr { return a.prefix.Addr().Next() }

// Allocate reserves an address for owner and returns it. It is
// idempotent: an owner that already holds an address gets the same one
// back. New addresses are handed out round-robin after the last one
// reserved, so a released address is not reused at once.
func (a *Allocator) Allocate(owner string) (netip.Addr, error) {
	if err := checkOwner(owner); err != nil {
		return netip.Addr{}, err
	}
	var out netip.Addr
	err := a.locked(func() error {
		held, err := a.scan()
		if err != nil {
			return err
		}
		for ip, o := range held {
			if o == owner {
				out = ip
				return nil
			}
		}
		start := a.first()
		if b, err := os.ReadFile(filepath.Join(a.dir, lastFile)); err == nil {
			if last, err := netip.ParseAddr(strings.TrimSpace(string(b))); err == nil && a.usable(last) {
				start = a.next(last)
			}
		}
		ip := start
		for {
			if _, taken := held[ip]; !taken {
				if err := a.reserve(ip, owner); err != nil {
					return err
				}
				out = ip
				return writeAtomic(filepath.Join(a.dir, lastFile), []byte(ip.String()))
			}
			ip = a.next(ip)
			if ip == start {
				return fmt.Errorf("%w in %s", ErrExhausted, a.prefix)
			}
		}
	})
	return out, err
}

// Release frees every address owner holds. Releasing an owner that holds
// none is not an error.
func (a *Allocator) Release(owner string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	return a.locked(func() error {
		held, err := a.scan()
		if err != nil {
			return err
		}
		for ip, o := range held {
			if o == owner {
				if err := os.Remove(filepath.Join(a.dir, ip.String())); err != nil && !os.IsNotExist(err) {
					return fmt.Errorf("ipam: release %s: %w", ip, err)
				}
			}
		}
		return nil
	})
}

// Lookup returns the address owner holds, if any.
func (a *Allocator) Lookup(owner string) (netip.Addr, bool, error) {
	all, err := a.List()
	if err != nil {
		return netip.Addr{}, false, err
	}
	for ip, o := range all {
		if o == owner {
			return ip, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// List returns every reserved address of the range with its owner.
func (a *Allocator) List() (map[netip.Addr]string, error) {
	var out map[netip.Addr]string
	err := a.locked(func() error {
		var err error
		out, err = a.scan()
		return err
	})
	return out, err
}

// locked runs f holding the in-process mutex and the directory's flock.
func (a *Allocator) locked(f func() error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return fmt.Errorf("ipam: create state dir: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(a.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("ipam: open lock: %w", err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("ipam: lock state dir: %w", err)
	}
	defer unix.Flock(int(lf.Fd()), unix.LOCK_UN)
	if err := writeAtomic(filepath.Join(a.dir, rangeFile), []byte(a.prefix.String())); err != nil {
		return err
	}
	return f()
}

// scan reads the reservations inside the range.
func (a *Allocator) scan() (map[netip.Addr]string, error) {
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, fmt.Errorf("ipam: read state dir: %w", err)
	}
	held := make(map[netip.Addr]string, len(ents))
	for _, e := range ents {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || !a.prefix.Contains(ip) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.dir, e.Name()))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("ipam: read reservation %s: %w", ip, err)
		}
		held[ip] = strings.TrimSpace(string(b))
	}
	return held, nil
}

func (a *Allocator) reserve(ip netip.Addr, owner string) error {
	f, err := os.OpenFile(filepath.Join(a.dir, ip.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("ipam: reserve %s: %w", ip, err)
	}
	if _, err := f.WriteString(owner); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("ipam: reserve %s: %w", ip, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("ipam: reserve %s: %w", ip, err)
	}
	return nil
}

// first is the first address handed out: the one after the gateway.
func (a *Allocator) first() netip.Addr { return a.Gateway().Next() }

// usable reports whether ip may be handed out.
func (a *Allocator) usable(ip netip.Addr) bool {
	return a.prefix.Contains(ip) && ip != a.prefix.Addr() && ip != a.Gateway() && ip != a.broadcast()
}

func (a *Allocator) broadcast() netip.Addr {
	b := a.prefix.Addr().As4()
	host := uint32(1)<<(32-a.prefix.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// next is the usable address after ip, wrapping around the range.
func (a *Allocator) next(ip netip.Addr) netip.Addr {
	n := ip.Next()
	if !a.usable(n) {
		return a.first()
	}
	return n
}

func checkOwner(owner string) error {
	if owner == "" || strings.ContainsAny(owner, "\n\x00") {
		return fmt.Errorf("%w %q", ErrOwner, owner)
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("ipam: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ipam: write %s: %w", filepath.Base(path), err)
	}
	return nil
}
