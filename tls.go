package main

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"

	"github.com/bff-project/bff/config"
)

// certLoader holds the TLS certificate and swaps it on reload, so
// connections in flight keep theirs and new ones get the new one.
type certLoader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertLoader(certFile, keyFile string) (*certLoader, error) {
	c := &certLoader{certFile: certFile, keyFile: keyFile}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the pair as tls.LoadX509KeyPair would, each file bounded as
// every file the configuration names is (config.ReadNamedFile).
func (c *certLoader) load() error {
	certPEM, err := config.ReadNamedFile(c.certFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	keyPEM, err := config.ReadNamedFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.cert.Store(&cert)
	return nil
}

func (c *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}
