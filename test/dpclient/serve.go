package dpclient

import (
	"bufio"
	"fmt"
	"net"
	"testing"

	"weir.dev/weir/test/netns"
)

// Serve runs a backend named name in netns ns (the test's own if "") on
// addr for TCP and UDP: every line or datagram is answered with
// "<name> <client address as seen>". It stops in t.Cleanup.
func Serve(t testing.TB, ns, name, addr string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	open := func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Fatalf("backend %s listen tcp %s: %v", name, addr, err)
		}
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			t.Fatalf("backend %s listen udp %s: %v", name, addr, err)
		}
	}
	if ns == "" {
		open()
	} else {
		netns.Do(t, ns, open)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr()); err != nil {
						return
					}
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", name, from)), from)
		}
	}()
}
