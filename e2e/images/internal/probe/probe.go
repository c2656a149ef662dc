// Package probe is `tlsapp probe`: a client that proves a server accepted it. An HTTPS attempt
// counts only after a complete HTTP response was read: under TLS 1.3 the client's handshake
// finishes before the server has checked the client certificate, and a rejection arrives later
// as an alert, so stopping at the handshake would count rejected clients as accepted.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"lockstep.dev/e2e/images/internal/crl"
)

type Config struct {
	URL        string
	CertFile   string // optional client certificate
	KeyFile    string
	CAFile     string // roots for the server certificate
	CRLFile    string // PEM CRLs signed by those roots: a listed server certificate is refused
	ServerName string // defaults to the URL's host
	Timeout    time.Duration
	Plaintext  bool // plain HTTP (an https:// URL is spoken to without TLS)
	TCPOnly    bool // only open a TCP connection
	// TLSTweak lets tests adjust the client's TLS configuration (e.g. offer only CBC suites).
	TLSTweak func(*tls.Config)
}

// Result is one attempt, printed as one JSON line.
type Result struct {
	Attempt      int    `json:"attempt"`
	OK           bool   `json:"ok"`
	Error        string `json:"error,omitempty"`
	Status       int    `json:"status,omitempty"`
	ServedSerial string `json:"servedSerial,omitempty"`
	TLS          string `json:"tls,omitempty"`
	Host         string `json:"host,omitempty"`    // the server's hostname, from its answer
	Message      string `json:"message,omitempty"` // the server's application message (tlsapp serve --message-file)
	MS           int64  `json:"ms"`
	Time         string `json:"time"`
}

// Attempt makes one fresh connection (never reused, so each sees the server's current
// certificate) and reports whether the server answered 200 with a complete body.
func Attempt(ctx context.Context, cfg Config) Result {
	start := time.Now()
	r := Result{Time: start.UTC().Format(time.RFC3339Nano)}
	err := attempt(ctx, cfg, &r)
	r.MS = time.Since(start).Milliseconds()
	if err != nil {
		r.Error = err.Error()
	} else {
		r.OK = true
	}
	return r
}

func attempt(ctx context.Context, cfg Config, r *Result) error {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return err
	}
	if cfg.TCPOnly {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
		if err != nil {
			return err
		}
		return c.Close()
	}
	tr := &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	if cfg.Plaintext {
		u.Scheme = "http"
	} else {
		if u.Scheme != "https" {
			return fmt.Errorf("url %s: want https:// (or --plaintext)", cfg.URL)
		}
		tc, err := clientTLS(cfg, u)
		if err != nil {
			return err
		}
		tr.TLSClientConfig = tc
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return unwrapURLError(err)
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	if resp.TLS != nil {
		r.TLS = strings.TrimPrefix(tls.VersionName(resp.TLS.Version), "TLS ")
		if len(resp.TLS.PeerCertificates) > 0 {
			r.ServedSerial = resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
		}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, firstLine(body))
	}
	var answer struct {
		Host    string `json:"host"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &answer) == nil {
		r.Host, r.Message = answer.Host, answer.Message
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// clientTLS reads the files on every attempt, so a long-running probe follows a rotated
// client certificate or trust bundle.
func clientTLS(cfg Config, u *url.URL) (*tls.Config, error) {
	c := &tls.Config{ServerName: cfg.ServerName, NextProtos: []string{"http/1.1"}}
	if c.ServerName == "" {
		c.ServerName = u.Hostname()
	}
	if cfg.CAFile == "" {
		return nil, errors.New("--ca is required for https")
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no PEM certificates", cfg.CAFile)
	}
	if cfg.CRLFile != "" {
		// The client side of revocation: a server whose certificate is on a trusted CRL is refused.
		// A missing file is no CRL (the bundle publishes ca.crl only once something was revoked).
		crlPEM, err := os.ReadFile(cfg.CRLFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if len(crlPEM) > 0 {
			revoked, err := crl.Parse(crlPEM, caPEM)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfg.CRLFile, err)
			}
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) > 0 && revoked.Has(cs.PeerCertificates[0]) {
					return crl.ErrRevoked
				}
				return nil
			}
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if cfg.TLSTweak != nil {
		cfg.TLSTweak(c)
	}
	return c, nil
}

// Run makes count attempts interval apart (forever when loop), writes one JSON line per attempt
// to out, and reports success: every attempt OK, or with expectFail every attempt failed.
func Run(ctx context.Context, cfg Config, count int, interval time.Duration, loop, expectFail bool, out io.Writer) bool {
	good := true
	enc := json.NewEncoder(out)
	for i := 1; loop || i <= count; i++ {
		if i > 1 {
			select {
			case <-ctx.Done():
				return good
			case <-time.After(interval):
			}
		}
		r := Attempt(ctx, cfg)
		r.Attempt = i
		enc.Encode(r)
		if r.OK == expectFail {
			good = false
		}
		if ctx.Err() != nil {
			return good
		}
	}
	return good
}
