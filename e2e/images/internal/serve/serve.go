// Package serve is `tlsapp serve`: an HTTPS server whose certificate, key and client CAs come from
// files, with the TLS policy (versions, CBC suites, client authentication, reload mode) chosen by
// flags, so e2e tests can stand up the workload shapes the operator has to cope with.
package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lockstep.dev/e2e/images/internal/crl"
)

type Config struct {
	Listen          string // TLS listener, e.g. ":8443"
	PlaintextListen string // optional plain-HTTP listener
	CertFile        string
	KeyFile         string
	CAFile          string // roots for client certificates; required unless ClientAuth is "none"
	CRLFile         string // PEM CRLs signed by those roots (the bundle's ca.crl); a revoked client certificate is refused
	Reload          string // "watch" (poll files, swap without restart) or "start" (load once)
	PollInterval    time.Duration
	MinTLS, MaxTLS  uint16
	CBC             bool   // also offer TLS 1.2 ECDHE CBC suites
	ClientAuth      string // "require", "request" (verified if given) or "none"
	// MessageFile, when set, is read on every request and answered as "message" to clients that
	// presented a verified certificate: application data that crosses mutual TLS only.
	MessageFile string
	Log         *slog.Logger
}

const handshakeTimeout = 10 * time.Second

type Server struct {
	cfg      Config
	files    files
	log      *slog.Logger
	host     string
	current  atomic.Pointer[material]
	tlsLn    *handshakeListener
	plainLn  net.Listener
	servers  []*http.Server
	conns    sync.Map // *tls.Conn -> *material it was handshaken with
	done     chan struct{}
	serveErr chan error
}

// ParseVersion reads "1.2" or "1.3".
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q: want 1.2 or 1.3", s)
}

// VersionName is "1.2", "1.3", ... for a negotiated version.
func VersionName(v uint16) string { return strings.TrimPrefix(tls.VersionName(v), "TLS ") }

var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

var cbcSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// Start loads the files, binds the listeners and serves until ctx ends; Wait returns then.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MinTLS == 0 {
		cfg.MinTLS = tls.VersionTLS12
	}
	if cfg.MaxTLS == 0 {
		cfg.MaxTLS = tls.VersionTLS13
	}
	switch {
	case cfg.Reload != "watch" && cfg.Reload != "start":
		return nil, fmt.Errorf("reload %q: want watch or start", cfg.Reload)
	case cfg.ClientAuth != "require" && cfg.ClientAuth != "request" && cfg.ClientAuth != "none":
		return nil, fmt.Errorf("client-auth %q: want require, request or none", cfg.ClientAuth)
	case cfg.ClientAuth != "none" && cfg.CAFile == "":
		return nil, fmt.Errorf("client-auth %s needs --ca", cfg.ClientAuth)
	case cfg.MinTLS > cfg.MaxTLS:
		return nil, errors.New("min TLS version above max")
	}
	s := &Server{cfg: cfg, files: files{cfg.CertFile, cfg.KeyFile, cfg.CAFile, cfg.CRLFile}, log: cfg.Log,
		done: make(chan struct{}), serveErr: make(chan error, 2)}
	s.host, _ = os.Hostname()
	m, err := s.files.load()
	if err != nil {
		return nil, err
	}
	s.current.Store(m)

	raw, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	s.tlsLn = newHandshakeListener(raw, s)
	s.serve(s.tlsLn)
	if cfg.PlaintextListen != "" {
		if s.plainLn, err = net.Listen("tcp", cfg.PlaintextListen); err != nil {
			s.tlsLn.Close()
			return nil, err
		}
		s.serve(s.plainLn)
	}
	s.log.Info("started", "listen", s.Addr(), "plaintextListen", s.PlaintextAddr(), "serial", m.serial,
		"notAfter", m.notAfter.UTC().Format(time.RFC3339), "reload", cfg.Reload,
		"minTLS", VersionName(cfg.MinTLS), "maxTLS", VersionName(cfg.MaxTLS), "cbc", cfg.CBC,
		"clientAuth", cfg.ClientAuth)
	if cfg.Reload == "watch" {
		go s.watch(ctx)
	}
	go func() {
		<-ctx.Done()
		close(s.done)
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			srv.Shutdown(shutdown)
		}
	}()
	return s, nil
}

// Addr is the TLS listener's bound address.
func (s *Server) Addr() string { return s.tlsLn.Addr().String() }

// PlaintextAddr is the plain-HTTP listener's bound address, "" when there is none.
func (s *Server) PlaintextAddr() string {
	if s.plainLn == nil {
		return ""
	}
	return s.plainLn.Addr().String()
}

// Wait blocks until the servers have stopped; a nil error is a clean shutdown.
func (s *Server) Wait() error {
	var first error
	for range s.servers {
		if err := <-s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
		}
	}
	s.log.Info("stopped")
	return first
}

type connMaterial struct{}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if m, ok := s.conns.LoadAndDelete(tc); ok {
					return context.WithValue(ctx, connMaterial{}, m)
				}
			}
			return ctx
		},
	}
	s.servers = append(s.servers, srv)
	go func() { s.serveErr <- srv.Serve(ln) }()
}

func (s *Server) tlsConfig(m *material) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{m.cert},
		MinVersion:   s.cfg.MinTLS,
		MaxVersion:   s.cfg.MaxTLS,
		CipherSuites: aeadSuites,
		NextProtos:   []string{"http/1.1"},
		ClientCAs:    m.clientCA,
	}
	if s.cfg.CBC {
		c.CipherSuites = append(append([]uint16{}, aeadSuites...), cbcSuites...)
	}
	if len(m.revoked) > 0 {
		// After the chain is verified: a client whose certificate is on a CRL fails the handshake,
		// so it never sends or reads application data.
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 && m.revoked.Has(cs.PeerCertificates[0]) {
				s.log.Warn("revoked_peer", "serial", cs.PeerCertificates[0].SerialNumber.Text(16))
				return crl.ErrRevoked
			}
			return nil
		}
	}
	switch s.cfg.ClientAuth {
	case "require":
		c.ClientAuth = tls.RequireAndVerifyClientCert
	case "request":
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c
}

// watch polls the files and swaps in new material when their content changes. A load that fails
// (e.g. a key that does not match its certificate) keeps the old material and is logged once.
func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	var lastFailed [32]byte
	var lastReadErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		certPEM, keyPEM, caPEM, crlPEM, digest, err := s.files.read()
		if err != nil {
			if err.Error() != lastReadErr {
				s.log.Warn("reload_error", "reason", err.Error())
				lastReadErr = err.Error()
			}
			continue
		}
		lastReadErr = ""
		old := s.current.Load()
		if digest == old.digest || digest == lastFailed {
			continue
		}
		m, err := parse(certPEM, keyPEM, caPEM, crlPEM, digest)
		if err != nil {
			lastFailed = digest
			s.log.Warn("reload_error", "reason", err.Error())
			continue
		}
		s.current.Store(m)
		s.log.Info("reloaded", "serial", m.serial, "previousSerial", old.serial,
			"notAfter", m.notAfter.UTC().Format(time.RFC3339))
	}
}

type servedInfo struct {
	Serial   string `json:"serial"`
	NotAfter string `json:"notAfter"`
}

type peerInfo struct {
	URIs []string `json:"uris"`
	CN   string   `json:"cn"`
}

// Response is the JSON body of GET /.
type Response struct {
	Served *servedInfo `json:"served"`
	Peer   *peerInfo   `json:"peer"`
	TLS    string      `json:"tls"`
	Host   string      `json:"host"`
	// Message is MessageFile's content, for a client that presented a verified certificate.
	Message string `json:"message,omitempty"`
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		resp := Response{TLS: "none", Host: s.host}
		if r.TLS != nil {
			resp.TLS = VersionName(r.TLS.Version)
			if m, ok := r.Context().Value(connMaterial{}).(*material); ok {
				resp.Served = &servedInfo{Serial: m.serial, NotAfter: m.notAfter.UTC().Format(time.RFC3339)}
			}
			if len(r.TLS.PeerCertificates) > 0 {
				leaf := r.TLS.PeerCertificates[0]
				p := &peerInfo{URIs: []string{}, CN: leaf.Subject.CommonName}
				for _, u := range leaf.URIs {
					p.URIs = append(p.URIs, u.String())
				}
				resp.Peer = p
				if s.cfg.MessageFile != "" {
					b, err := os.ReadFile(s.cfg.MessageFile)
					if err != nil {
						s.log.Error("message_error", "reason", err.Error())
						http.Error(w, "message unavailable", http.StatusServiceUnavailable)
						return
					}
					resp.Message = strings.TrimSpace(string(b))
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	return mux
}

// handshakeListener completes each TLS handshake before handing the connection to net/http, in
// its own goroutine, so a slow client blocks no one and every failure can be logged with its
// reason (net/http would only print it to its error log).
type handshakeListener struct {
	net.Listener
	s     *Server
	ready chan net.Conn
	once  sync.Once
	quit  chan struct{}
}

func newHandshakeListener(raw net.Listener, s *Server) *handshakeListener {
	l := &handshakeListener{Listener: raw, s: s, ready: make(chan net.Conn), quit: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.Close()
			return
		}
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(raw net.Conn) {
	m := l.s.current.Load()
	tc := tls.Server(raw, l.s.tlsConfig(m))
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		reason := err.Error()
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
			// What net/http answers too: a plain-HTTP client gets a readable refusal.
			io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			reason = "plaintext HTTP request on the TLS port"
		}
		l.s.log.Warn("handshake_error", "remote", raw.RemoteAddr().String(), "reason", reason)
		raw.Close()
		return
	}
	l.s.conns.Store(tc, m)
	select {
	case l.ready <- tc:
	case <-l.quit:
		l.s.conns.Delete(tc)
		tc.Close()
	}
}

func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"} {
		if bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.quit:
		return nil, net.ErrClosed
	}
}

func (l *handshakeListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.quit)
		err = l.Listener.Close()
	})
	return err
}
