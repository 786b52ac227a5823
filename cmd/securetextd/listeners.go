package main

import (
	"net"
	"sync"
)

// listen opens a listener that Main owns: Close closes it, whether or not
// a server's Serve has taken it yet.
func (m *Main) listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	o := &ownedListener{Listener: l}
	m.listeners = append(m.listeners, o)
	return o, nil
}

// closeListeners closes every listener Run opened: each server's Serve
// then returns, having started or not.
func (m *Main) closeListeners() {
	for _, l := range m.listeners {
		l.Close()
	}
	m.listeners = nil
}

// ownedListener may be closed by Main and again by the server that
// serves it; only the first Close closes the socket, and the others
// return nil, so that a server's Shutdown does not report Main's close as
// its own failure.
type ownedListener struct {
	net.Listener
	once sync.Once
}

func (l *ownedListener) Close() error {
	var err error
	l.once.Do(func() { err = l.Listener.Close() })
	return err
}
