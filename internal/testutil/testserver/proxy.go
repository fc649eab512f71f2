package testserver

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy on loopback in front of a server, injecting faults
// driven by a seed: a connection may be reset after a random number of
// bytes in either direction, or stalled for a few seconds at a random
// point. Faults counts what it injected.
type Proxy struct {
	Addr   string // 127.0.0.1:port, to dial instead of the server
	Faults atomic.Int64
	// P is the probability that a connection gets a fault (0 turns the
	// proxy into a plain one).
	P float64

	target string
	ln     net.Listener
	mu     sync.Mutex
	rnd    *rand.Rand
	wg     sync.WaitGroup
}

// StartProxy starts a proxy to target; it stops when the test ends.
func StartProxy(t testing.TB, target string, seed uint64, p float64) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &Proxy{Addr: ln.Addr().String(), P: p, target: target, ln: ln, rnd: rand.New(rand.NewPCG(seed, 7))}
	go px.serve()
	t.Cleanup(func() { ln.Close(); px.wg.Wait() })
	return px
}

// plan draws a connection's fault: after how many bytes of which
// direction, and whether it is a reset or a stall (and how long).
type plan struct {
	at    int64 // bytes into the direction; -1: no fault
	up    bool  // client to server
	stall time.Duration
}

func (px *Proxy) draw() plan {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.rnd.Float64() >= px.P {
		return plan{at: -1}
	}
	px.Faults.Add(1)
	p := plan{at: px.rnd.Int64N(64 << 10), up: px.rnd.IntN(2) == 0}
	if px.rnd.IntN(2) == 0 {
		p.stall = time.Duration(1+px.rnd.IntN(8)) * time.Second
	}
	return p
}

func (px *Proxy) serve() {
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		px.wg.Add(1)
		go func() {
			defer px.wg.Done()
			px.handle(c)
		}()
	}
}

func (px *Proxy) handle(c net.Conn) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", px.target, 10*time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	p := px.draw()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, up bool) {
		defer func() { done <- struct{}{} }()
		if p.at < 0 || p.up != up {
			io.Copy(dst, src)
		} else {
			if _, err := io.CopyN(dst, src, p.at); err != nil {
				return
			}
			if p.stall > 0 {
				time.Sleep(p.stall)
				io.Copy(dst, src)
			} else if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, not a clean close
			}
		}
		c.Close()
		s.Close()
	}
	go pipe(s, c, true)
	go pipe(c, s, false)
	<-done
	<-done
}
