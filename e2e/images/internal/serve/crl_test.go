package serve_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lockstep.dev/e2e/images/internal/probe"
	"lockstep.dev/e2e/images/internal/serve"
	"lockstep.dev/e2e/images/internal/testpki"
)

func crlOf(t *testing.T, ca *testpki.CA, serials ...string) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		n, ok := new(big.Int).SetString(s, 16)
		if !ok {
			t.Fatalf("serial %q", s)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func TestRevocationHonoured(t *testing.T) {
	f := start(t, func(c *serve.Config) {
		c.ClientAuth = "require"
		c.CRLFile = filepath.Join(filepath.Dir(c.CAFile), "ca.crl")
	})
	ca, leaf, vol, logs := f.ca, f.leaf, f.vol, f.logs
	stolen := ca.Client(t, "b", "spiffe://test/ns/x/sa/b")
	fresh := ca.Client(t, "b", "spiffe://test/ns/x/sa/b")
	as := func(l testpki.Leaf) probe.Result {
		return f.probe(t, func(c *probe.Config) {
			c.CertFile = testpki.WriteFile(t, "c.crt", l.CertPEM)
			c.KeyFile = testpki.WriteFile(t, "c.key", l.KeyPEM)
		})
	}
	if r := as(stolen); !r.OK {
		t.Fatalf("no CRL file yet: the client should be accepted: %+v", r)
	}
	// ca.crl appears in the volume (the bundle's key, published on the first revocation).
	vol.Update(t, map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": ca.PEM, "ca.crl": crlOf(t, ca, stolen.Serial)})
	deadline := time.Now().Add(5 * time.Second)
	for as(stolen).OK {
		if time.Now().After(deadline) {
			t.Fatal("the revoked client certificate is still accepted 5 s after the CRL changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := as(fresh); !r.OK {
		t.Fatalf("a certificate not on the CRL must still be accepted: %+v", r)
	}
	if !strings.Contains(logs.String(), `"msg":"revoked_peer"`) {
		t.Errorf("no revoked_peer logged:\n%s", logs)
	}
	// A CRL no trusted root signed is not taken (the old material stays, revocation included).
	other := testpki.NewCA(t, "other-ca")
	vol.Update(t, map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": ca.PEM, "ca.crl": crlOf(t, other)})
	time.Sleep(200 * time.Millisecond)
	if as(stolen).OK {
		t.Fatal("a forged CRL cleared a revocation")
	}
	if !strings.Contains(logs.String(), "signed by none of the trusted roots") {
		t.Errorf("the forged CRL was not reported:\n%s", logs)
	}
}

func TestProbeRefusesRevokedServer(t *testing.T) {
	f := start(t, nil)
	crlFile := testpki.WriteFile(t, "ca.crl", crlOf(t, f.ca))
	if r := f.probe(t, func(c *probe.Config) { c.CRLFile = crlFile }); !r.OK {
		t.Fatalf("a server not on the CRL must be accepted: %+v", r)
	}
	if r := f.probe(t, func(c *probe.Config) { c.CRLFile = filepath.Join(t.TempDir(), "absent.crl") }); !r.OK {
		t.Fatalf("a missing CRL file is no CRL: %+v", r)
	}
	revoked := testpki.WriteFile(t, "revoked.crl", crlOf(t, f.ca, f.leaf.Serial))
	r := f.probe(t, func(c *probe.Config) { c.CRLFile = revoked })
	if r.OK || !strings.Contains(r.Error, "revoked") {
		t.Fatalf("a revoked server certificate must be refused: %+v", r)
	}
}
