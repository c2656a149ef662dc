package serve_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"lockstep.dev/e2e/images/internal/probe"
	"lockstep.dev/e2e/images/internal/serve"
	"lockstep.dev/e2e/images/internal/testpki"
)

// syncBuffer collects the server's JSON log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	ca     *testpki.CA
	leaf   testpki.Leaf
	vol    *testpki.ProjectedVolume
	caFile string
	srv    *serve.Server
	logs   *syncBuffer
}

// start runs a server on loopback with files in a kubelet-style projected volume.
func start(t *testing.T, mutate func(*serve.Config)) *fixture {
	t.Helper()
	f := &fixture{ca: testpki.NewCA(t, "test-ca"), logs: &syncBuffer{}}
	f.leaf = f.ca.Server(t, "app.test")
	f.vol = testpki.NewProjectedVolume(t, map[string][]byte{"tls.crt": f.leaf.CertPEM, "tls.key": f.leaf.KeyPEM, "ca.crt": f.ca.PEM})
	f.caFile = testpki.WriteFile(t, "ca.crt", f.ca.PEM)
	cfg := serve.Config{
		Listen: "127.0.0.1:0", CertFile: f.vol.Path("tls.crt"), KeyFile: f.vol.Path("tls.key"),
		CAFile: f.vol.Path("ca.crt"), Reload: "watch", PollInterval: 20 * time.Millisecond,
		ClientAuth: "none", Log: slog.New(slog.NewJSONHandler(f.logs, nil)),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := serve.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f.srv = srv
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return f
}

func (f *fixture) probe(t *testing.T, mutate func(*probe.Config)) probe.Result {
	t.Helper()
	cfg := probe.Config{URL: "https://" + f.srv.Addr() + "/", CAFile: f.caFile, ServerName: "app.test", Timeout: 3 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	return probe.Attempt(context.Background(), cfg)
}

func (f *fixture) rotate(t *testing.T) testpki.Leaf {
	next := f.ca.Server(t, "app.test")
	f.vol.Update(t, map[string][]byte{"tls.crt": next.CertPEM, "tls.key": next.KeyPEM, "ca.crt": f.ca.PEM})
	return next
}

func TestWatchReloadPicksUpSwappedDataSymlink(t *testing.T) {
	f := start(t, nil)
	if r := f.probe(t, nil); !r.OK || r.ServedSerial != f.leaf.Serial {
		t.Fatalf("before rotation: %+v, want serial %s", r, f.leaf.Serial)
	}
	next := f.rotate(t)
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := f.probe(t, nil)
		if r.OK && r.ServedSerial == next.Serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s after the swap, want %s; logs:\n%s", r.ServedSerial, next.Serial, f.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(f.logs.String(), `"msg":"reloaded","serial":"`+next.Serial+`"`) {
		t.Errorf("no reloaded event with the new serial in logs:\n%s", f.logs)
	}
}

func TestStartReloadKeepsFirstCertificate(t *testing.T) {
	f := start(t, func(c *serve.Config) { c.Reload = "start" })
	f.rotate(t)
	time.Sleep(200 * time.Millisecond) // ten poll intervals, had it been watching
	if r := f.probe(t, nil); !r.OK || r.ServedSerial != f.leaf.Serial {
		t.Fatalf("got %+v, want the first serial %s", r, f.leaf.Serial)
	}
}

func TestBodyReportsServedCertificateAndPeerIdentity(t *testing.T) {
	f := start(t, func(c *serve.Config) { c.ClientAuth = "require" })
	client := f.ca.Client(t, "client-a", "spiffe://cluster.local/ns/demo/sa/client")
	certFile := testpki.WriteFile(t, "c.crt", client.CertPEM)
	keyFile := testpki.WriteFile(t, "c.key", client.KeyPEM)

	conn, err := tls.Dial("tcp", f.srv.Addr(), &tls.Config{
		ServerName: "app.test", RootCAs: poolOf(f.ca), Certificates: []tls.Certificate{mustPair(t, client)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"))
	var buf bytes.Buffer
	buf.ReadFrom(conn)
	_, body, _ := strings.Cut(buf.String(), "\r\n\r\n")
	var resp serve.Response
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if resp.Served == nil || resp.Served.Serial != f.leaf.Serial || resp.TLS != "1.3" ||
		resp.Peer == nil || resp.Peer.CN != "client-a" || len(resp.Peer.URIs) != 1 ||
		resp.Peer.URIs[0] != "spiffe://cluster.local/ns/demo/sa/client" {
		t.Fatalf("response %s", body)
	}
	if r := f.probe(t, func(c *probe.Config) { c.CertFile, c.KeyFile = certFile, keyFile }); !r.OK {
		t.Fatalf("probe with a trusted client certificate: %+v", r)
	}
}

// Under TLS 1.3 the client's handshake completes before the server judges its certificate; the
// probe must still report the rejection.
func TestTLS13RejectedClientCertificateIsAFailure(t *testing.T) {
	f := start(t, func(c *serve.Config) { c.ClientAuth = "require"; c.MinTLS = tls.VersionTLS13 })
	stranger := testpki.NewCA(t, "other-ca").Client(t, "intruder", "spiffe://elsewhere/x")

	conn, err := tls.Dial("tcp", f.srv.Addr(), &tls.Config{
		ServerName: "app.test", RootCAs: poolOf(f.ca), Certificates: []tls.Certificate{mustPair(t, stranger)},
	})
	if err != nil {
		t.Fatalf("the client-side handshake itself should succeed under TLS 1.3, got %v", err)
	}
	conn.Close()

	r := f.probe(t, func(c *probe.Config) {
		c.CertFile = testpki.WriteFile(t, "s.crt", stranger.CertPEM)
		c.KeyFile = testpki.WriteFile(t, "s.key", stranger.KeyPEM)
	})
	if r.OK || r.TLS != "" && r.Status == 200 {
		t.Fatalf("probe with an untrusted client certificate reported success: %+v", r)
	}
	if !strings.Contains(r.Error, "certificate") {
		t.Errorf("error %q does not name the certificate", r.Error)
	}
	if r := f.probe(t, nil); r.OK {
		t.Fatalf("probe without a client certificate reported success: %+v", r)
	}
	if !strings.Contains(f.logs.String(), `"msg":"handshake_error"`) {
		t.Errorf("no handshake_error logged:\n%s", f.logs)
	}
}

func TestPlaintextRefusedOnTLSPort(t *testing.T) {
	f := start(t, func(c *serve.Config) { c.PlaintextListen = "127.0.0.1:0" })
	r := f.probe(t, func(c *probe.Config) { c.Plaintext = true })
	if r.OK || r.Status != 400 {
		t.Fatalf("plain HTTP to the TLS port: %+v, want a failed attempt with status 400", r)
	}
	r = f.probe(t, func(c *probe.Config) { c.Plaintext = true; c.URL = "http://" + f.srv.PlaintextAddr() + "/healthz" })
	if !r.OK {
		t.Fatalf("plain HTTP to the plaintext listener: %+v", r)
	}
	r = f.probe(t, func(c *probe.Config) { c.URL = "https://" + f.srv.Addr() + "/healthz" })
	if !r.OK {
		t.Fatalf("healthz over TLS: %+v", r)
	}
}

func TestCBCSuitesOnlyWithFlag(t *testing.T) {
	cbcOnly := func(c *probe.Config) {
		c.TLSTweak = func(tc *tls.Config) {
			tc.MaxVersion = tls.VersionTLS12
			tc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
		}
	}
	without := start(t, nil)
	if r := without.probe(t, cbcOnly); r.OK {
		t.Fatalf("CBC-only client accepted without --cbc: %+v", r)
	}
	if r := without.probe(t, func(c *probe.Config) {
		c.TLSTweak = func(tc *tls.Config) { tc.MaxVersion = tls.VersionTLS12 }
	}); !r.OK || r.TLS != "1.2" {
		t.Fatalf("TLS 1.2 AEAD client refused: %+v", r)
	}
	with := start(t, func(c *serve.Config) { c.CBC = true })
	if r := with.probe(t, cbcOnly); !r.OK || r.TLS != "1.2" {
		t.Fatalf("CBC-only client refused with --cbc: %+v", r)
	}
}

func TestTCPOnlyAndExpectFail(t *testing.T) {
	f := start(t, nil)
	var out bytes.Buffer
	cfg := probe.Config{URL: "https://" + f.srv.Addr() + "/", TCPOnly: true, Timeout: time.Second}
	if !probe.Run(context.Background(), cfg, 2, time.Millisecond, false, false, &out) {
		t.Fatalf("tcp-only against a listening port failed:\n%s", out.String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg.URL = "https://" + closed + "/"
	if !probe.Run(context.Background(), cfg, 2, time.Millisecond, false, true, &out) {
		t.Fatalf("--expect-fail against a closed port did not succeed:\n%s", out.String())
	}
	if probe.Run(context.Background(), cfg, 1, time.Millisecond, false, false, &out) {
		t.Fatal("a refused connection counted as success")
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		for _, k := range []string{"ok", "ms"} {
			if _, ok := r[k]; !ok {
				t.Errorf("line %q has no %q", line, k)
			}
		}
	}
}

func TestMessageOnlyToVerifiedClients(t *testing.T) {
	msgFile := testpki.WriteFile(t, "message", []byte("hello over mTLS\n"))
	f := start(t, func(c *serve.Config) { c.ClientAuth = "request"; c.MessageFile = msgFile })
	client := f.ca.Client(t, "client-a", "spiffe://cluster.local/ns/demo/sa/client")
	withCert := func(c *probe.Config) {
		c.CertFile = testpki.WriteFile(t, "c.crt", client.CertPEM)
		c.KeyFile = testpki.WriteFile(t, "c.key", client.KeyPEM)
	}
	if r := f.probe(t, withCert); !r.OK || r.Message != "hello over mTLS" {
		t.Fatalf("with a client certificate: %+v, want the message", r)
	}
	if r := f.probe(t, nil); !r.OK || r.Message != "" {
		t.Fatalf("without a client certificate: %+v, want an answer without the message", r)
	}
}
