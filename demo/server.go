package demo

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownTimeout bounds how long Close waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// httpServer runs one handler on a listener until Close or until the start
// context is done.
type httpServer struct {
	srv  *http.Server
	done chan struct{}
	once sync.Once
	err  error
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, name string) *httpServer {
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("demo: server stopped", "server", name, "error", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.close()
		case <-s.done:
		}
	}()
	return s
}

func (s *httpServer) close() error {
	s.once.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.err = errors.Join(err, s.srv.Close())
		}
	})
	return s.err
}

// listen opens addr, refusing port 0 when the caller already fixed its public URL.
func listen(addr string, fixedURL bool) (net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port == "0" && fixedURL {
		return nil, errors.New("port 0 needs an empty issuer, which is then derived from the bound port")
	}
	return net.Listen("tcp", addr)
}
