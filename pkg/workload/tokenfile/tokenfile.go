// Package tokenfile keeps a file holding a valid JWT-SVID, the file Azure SDKs
// read through AZURE_FEDERATED_TOKEN_FILE.
//
// Azure SDKs re-read that file only every 5 to 10 minutes, so the file must
// always hold a token that outlives the SDK's copy of it. The writer therefore
// replaces the token when less than a minimum remainder (15 minutes by
// default) is left, and reports itself not ready when the Workload API hands
// out tokens too short-lived to keep that promise.
package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/atomicfile"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
)

// DefaultAudience is the audience Entra expects in a federated assertion.
const DefaultAudience = "api://AzureADTokenExchange"

// DefaultMinRemaining is how long the token in the file stays valid at least:
// the Azure SDKs' re-read interval (up to 10 minutes) and a margin.
const DefaultMinRemaining = 15 * time.Minute

// Fetcher fetches JWT-SVIDs; workloadapi.Client and workloadapi.JWTSource
// are Fetchers.
type Fetcher interface {
	FetchJWTSVID(ctx context.Context, params jwtsvid.Params) (*jwtsvid.SVID, error)
}

// Writer keeps one file holding a JWT-SVID.
type Writer struct {
	path  string
	fetch Fetcher
	opts  options

	mu      sync.Mutex
	expiry  time.Time // of the token in the file
	lastErr error     // of the last refresh
}

type options struct {
	audiences    []string
	subject      spiffeid.ID
	mode         os.FileMode
	minRemaining time.Duration
	retryMin     time.Duration
	retryMax     time.Duration
	logger       *slog.Logger
	now          func() time.Time
}

// Option configures a Writer.
type Option func(*options)

// WithAudiences sets the audiences asked for (default api://AzureADTokenExchange).
func WithAudiences(aud ...string) Option { return func(o *options) { o.audiences = aud } }

// WithSubject selects the SVID of one SPIFFE ID when the workload has several.
func WithSubject(id spiffeid.ID) Option { return func(o *options) { o.subject = id } }

// WithMode sets the file's permissions (default 0644, readable by an
// application container running as another user).
func WithMode(m os.FileMode) Option { return func(o *options) { o.mode = m } }

// WithMinRemaining sets how long the token in the file stays valid at least
// (default DefaultMinRemaining).
func WithMinRemaining(d time.Duration) Option { return func(o *options) { o.minRemaining = d } }

// WithRetry sets the first and the longest wait between failed refreshes
// (default 1s and 30s).
func WithRetry(first, longest time.Duration) Option {
	return func(o *options) { o.retryMin, o.retryMax = first, longest }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a Writer keeping path filled from fetch. It does no I/O.
func New(path string, fetch Fetcher, opts ...Option) *Writer {
	o := options{
		audiences:    []string{DefaultAudience},
		mode:         0o644,
		minRemaining: DefaultMinRemaining,
		retryMin:     time.Second,
		retryMax:     30 * time.Second,
		logger:       slog.New(slog.DiscardHandler),
		now:          time.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &Writer{path: path, fetch: fetch, opts: o, lastErr: errors.New("no token written yet")}
}

// TooShortError reports SVIDs whose lifetime cannot cover the minimum
// remainder; the token is still written, as the best there is.
type TooShortError struct {
	Remaining, MinRemaining time.Duration
}

func (e *TooShortError) Error() string {
	return fmt.Sprintf("the Workload API issued a JWT-SVID valid for %s, less than the %s the token file must stay valid: "+
		"give the workload's registration entry a longer JWT-SVID TTL (spire-server entry create -jwtSVIDTTL 3600, or jwtTtl: 1h on a ClusterSPIFFEID)",
		e.Remaining.Round(time.Second), e.MinRemaining)
}

// Refresh fetches a JWT-SVID and writes it when it lasts longer than the
// token in the file. It returns the expiry of the token in the file and a
// *TooShortError when that token lasts less than the minimum remainder.
func (w *Writer) Refresh(ctx context.Context) (time.Time, error) {
	expiry, err := w.refresh(ctx)
	w.mu.Lock()
	w.lastErr = err
	w.mu.Unlock()
	return expiry, err
}

func (w *Writer) refresh(ctx context.Context) (time.Time, error) {
	params := jwtsvid.Params{Audience: w.opts.audiences[0], ExtraAudiences: w.opts.audiences[1:], Subject: w.opts.subject}
	svid, err := w.fetch.FetchJWTSVID(ctx, params)
	w.mu.Lock()
	current := w.expiry
	w.mu.Unlock()
	if err != nil {
		return current, fmt.Errorf("fetch JWT-SVID for audience %v: %w", w.opts.audiences, err)
	}
	if svid.Expiry.After(current) {
		if err := atomicfile.Write(w.path, []byte(svid.Marshal()), w.opts.mode); err != nil {
			return current, err
		}
		w.mu.Lock()
		w.expiry, current = svid.Expiry, svid.Expiry
		w.mu.Unlock()
		w.opts.logger.Info("token file updated", "path", w.path, "spiffe_id", svid.ID.String(), "expires", svid.Expiry.UTC().Format(time.RFC3339))
	}
	if left := current.Sub(w.opts.now()); left < w.opts.minRemaining {
		return current, &TooShortError{Remaining: left, MinRemaining: w.opts.minRemaining}
	}
	return current, nil
}

// Ready reports whether the file holds a token valid for at least the
// minimum remainder, and if not, why.
func (w *Writer) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if left := w.expiry.Sub(w.opts.now()); left < w.opts.minRemaining {
		if w.lastErr != nil {
			return w.lastErr
		}
		return &TooShortError{Remaining: left, MinRemaining: w.opts.minRemaining}
	}
	return nil
}

// Run keeps the file current until ctx ends: it refreshes when the token in
// the file has less than the minimum remainder left, and retries with a
// growing wait while the Workload API fails or hands out short tokens.
func (w *Writer) Run(ctx context.Context) error {
	retry := w.opts.retryMin
	for {
		expiry, err := w.Refresh(ctx)
		wait := expiry.Add(-w.opts.minRemaining).Sub(w.opts.now())
		if err != nil {
			w.opts.logger.Warn("token file not refreshed", "path", w.path, "error", err, "retry_in", retry)
			wait, retry = retry, min(2*retry, w.opts.retryMax)
		} else {
			retry = w.opts.retryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// WriteEnv writes a file a POSIX shell can source: the comment, then one
// export line per variable with a value, written atomically with mode.
func WriteEnv(path, comment string, vars [][2]string, mode os.FileMode) error {
	var b strings.Builder
	for _, line := range strings.Split(comment, "\n") {
		b.WriteString("# " + line + "\n")
	}
	for _, kv := range vars {
		if kv[1] != "" {
			b.WriteString("export " + kv[0] + "=" + shellQuote(kv[1]) + "\n")
		}
	}
	return atomicfile.Write(path, []byte(b.String()), mode)
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
