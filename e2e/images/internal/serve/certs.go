// The certificate, key, client-CA bundle and CRLs the server presents and trusts, read from files
// the way a pod sees a mounted TLS Secret and trust-bundle ConfigMap (ca.crt, ca.crl). Kubelet updates such volumes by
// swapping a `..data` symlink, so change is detected by content, never by a link's mtime.
package serve

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"lockstep.dev/e2e/images/internal/crl"
)

// material is one consistent load of the files; a connection uses one material start to end.
type material struct {
	cert     tls.Certificate
	clientCA *x509.CertPool // nil when no --ca
	serial   string
	notAfter time.Time
	digest   [32]byte
	revoked  crl.Revoked // serials on the CRLs; empty when no --crl or no CRL published yet
}

type files struct{ cert, key, ca, crl string }

func (f files) read() (certPEM, keyPEM, caPEM, crlPEM []byte, digest [32]byte, err error) {
	if certPEM, err = os.ReadFile(f.cert); err != nil {
		return
	}
	if keyPEM, err = os.ReadFile(f.key); err != nil {
		return
	}
	if f.ca != "" {
		if caPEM, err = os.ReadFile(f.ca); err != nil {
			return
		}
	}
	if f.crl != "" {
		// The bundle publishes ca.crl only once something was revoked: a missing file is no CRL.
		if crlPEM, err = os.ReadFile(f.crl); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return
			}
			crlPEM, err = nil, nil
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{certPEM, keyPEM, caPEM, crlPEM} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	copy(digest[:], h.Sum(nil))
	return
}

func (f files) load() (*material, error) {
	certPEM, keyPEM, caPEM, crlPEM, digest, err := f.read()
	if err != nil {
		return nil, err
	}
	return parse(certPEM, keyPEM, caPEM, crlPEM, digest)
}

func parse(certPEM, keyPEM, caPEM, crlPEM []byte, digest [32]byte) (*material, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate/key: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	m := &material{cert: cert, serial: leaf.SerialNumber.Text(16), notAfter: leaf.NotAfter, digest: digest}
	if caPEM != nil {
		m.clientCA = x509.NewCertPool()
		if !m.clientCA.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("ca: no PEM certificates found")
		}
	}
	if crlPEM != nil {
		// A CRL counts only when one of the trusted roots signed it: anyone who could write the
		// file could otherwise revoke (or, by a forged list, seem to clear) any certificate.
		if m.revoked, err = crl.Parse(crlPEM, caPEM); err != nil {
			return nil, fmt.Errorf("crl: %w", err)
		}
	}
	return m, nil
}

// changed reports whether the files' content differs from what m was loaded from.
func (f files) changed(m *material) (bool, error) {
	_, _, _, _, digest, err := f.read()
	if err != nil {
		return false, err
	}
	return !bytes.Equal(digest[:], m.digest[:]), nil
}
