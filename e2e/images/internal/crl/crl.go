// Package crl reads the CRLs the operator publishes next to the trust bundle (ca.crl) for the
// e2e workload's server and probe: each CRL counts only when a trusted root signed it.
package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// ErrRevoked fails a handshake whose peer certificate is listed.
var ErrRevoked = errors.New("peer certificate is revoked")

// Revoked maps a CRL issuer (raw subject) to the serials it lists.
type Revoked map[string]map[string]bool

// Has reports whether cert is on a CRL of its issuer.
func (r Revoked) Has(cert *x509.Certificate) bool {
	return r[string(cert.RawIssuer)][cert.SerialNumber.Text(16)]
}

// Parse reads PEM CRLs, each checked against the PEM roots in caPEM.
func Parse(crlPEM, caPEM []byte) (Revoked, error) {
	var roots []*x509.Certificate
	for rest := caPEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		roots = append(roots, cert)
	}
	out := Revoked{}
	for rest := crlPEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		list, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, err
		}
		signer := signerOf(list, roots)
		if signer == nil {
			return nil, fmt.Errorf("a CRL (number %v) is signed by none of the trusted roots", list.Number)
		}
		serials := out[string(list.RawIssuer)]
		if serials == nil {
			serials = map[string]bool{}
			out[string(list.RawIssuer)] = serials
		}
		for _, entry := range list.RevokedCertificateEntries {
			serials[new(big.Int).Set(entry.SerialNumber).Text(16)] = true
		}
	}
	return out, nil
}

// signerOf checks the signature with each root's key and the issuer name. Not CheckSignatureFrom:
// it also demands the crlSign key usage, which roots issued before Lockstep signed CRLs lack
// (docs/revocation.md); a root's key signing the list is what makes it authoritative here.
func signerOf(list *x509.RevocationList, roots []*x509.Certificate) *x509.Certificate {
	for _, root := range roots {
		if bytes.Equal(root.RawSubject, list.RawIssuer) && root.CheckSignature(list.SignatureAlgorithm, list.RawTBSRevocationList, list.Signature) == nil {
			return root
		}
	}
	return nil
}
