package serve_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"lockstep.dev/e2e/images/internal/testpki"
)

func poolOf(ca *testpki.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func mustPair(t *testing.T, l testpki.Leaf) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
