package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/bff-project/bff/revocation"
)

// Config configures a Cluster.
type Config struct {
	// Bind is the gossip listen address, host:port (UDP and TCP). Required.
	Bind string
	// Advertise is the address other members reach this one at; empty means
	// Bind (which must then not be a wildcard address).
	Advertise string
	// Join lists members to join: host:port, where a DNS name may resolve to
	// several members. Empty means this is the first member.
	Join []string
	// Secret is the gossip encryption key: 16, 24 or 32 bytes. Required.
	Secret []byte
	// Name is this member's unique name; empty means hostname/advertise.
	Name string
	// Meta is this member's metadata (at most 512 bytes), e.g. its internal
	// URL; other members see it in Members.
	Meta []byte
	// JoinTimeout is how long Run keeps trying to reach a peer before it
	// declares the member ready on its own state; zero means 30 s.
	JoinTimeout time.Duration
	// PushPullInterval is the full-state sync period; zero means 15 s.
	PushPullInterval time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnReceive, when set, is told how many entries (revocations and
	// single-use values) each message or sync added (metrics).
	OnReceive func(added int)
	// OnDrop, when set, is told of every dropped message: one that does not
	// decode as entries, and every packet or stream memberlist refuses
	// (undecryptable with the cluster key, garbage, unencrypted).
	OnDrop func()
}

// Member is a live cluster member.
type Member struct {
	Name string
	Addr string
	Meta []byte
}

// Cluster is this instance's membership in the cluster.
type Cluster struct {
	cfg   Config
	list  *revocation.List
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	log   *slog.Logger
	ready atomic.Bool
	left  sync.Once
}

// New validates cfg, binds the gossip ports and starts gossiping. It does
// not join: Run does.
func New(cfg Config, list *revocation.List) (*Cluster, error) {
	switch len(cfg.Secret) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("cluster: secret must be 16, 24 or 32 bytes, not %d", len(cfg.Secret))
	}
	if list == nil {
		return nil, errors.New("cluster: revocation list is required")
	}
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind: %w", err)
	}
	advHost, advPort := host, port
	if cfg.Advertise != "" {
		if advHost, advPort, err = splitHostPort(cfg.Advertise); err != nil {
			return nil, fmt.Errorf("cluster: advertise: %w", err)
		}
	}
	if ip := net.ParseIP(advHost); ip == nil || ip.IsUnspecified() {
		return nil, errors.New("cluster: advertise (or bind) must be an IP address other members can reach")
	}
	if len(cfg.Meta) > memberlist.MetaMaxSize {
		return nil, errors.New("cluster: meta too large")
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 30 * time.Second
	}
	if cfg.PushPullInterval <= 0 {
		cfg.PushPullInterval = 15 * time.Second
	}
	c := &Cluster{cfg: cfg, list: list, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	mc := c.memberlistConfig(host, port, advHost, advPort)
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return c.ml.NumMembers() }, RetransmitMult: mc.RetransmitMult}
	c.ml, err = memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return c, nil
}

// memberlistConfig is c's memberlist configuration, bound at host:port and
// advertised at advHost:advPort. It is a function of its own so that a test
// can check the settings whose effect no test can time: gossip on, a
// crashed member's name reclaimable, encryption required both ways.
func (c *Cluster) memberlistConfig(host string, port int, advHost string, advPort int) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.cfg.Name
	if mc.Name == "" {
		h, _ := os.Hostname()
		mc.Name = h + "/" + net.JoinHostPort(advHost, strconv.Itoa(advPort))
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	mc.SecretKey = c.cfg.Secret
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.PushPullInterval = c.cfg.PushPullInterval
	mc.GossipInterval = 100 * time.Millisecond
	mc.DeadNodeReclaimTime = 10 * time.Second
	mc.Delegate = (*delegate)(c)
	mc.Logger = log.New(logWriter{log: c.log, limiter: &lineLimiter{}, onDrop: c.cfg.OnDrop}, "", 0)
	return mc
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", s)
	}
	return host, port, nil
}

// Run joins the cluster, retrying until a peer answers or JoinTimeout
// passes, and returns once the member is ready: it then holds the full
// revocation list of the peer it joined (memberlist's join is a push/pull).
func (c *Cluster) Run(ctx context.Context) error {
	defer c.ready.Store(true)
	if len(c.cfg.Join) == 0 {
		return nil
	}
	deadline := time.Now().Add(c.cfg.JoinTimeout)
	delay := 200 * time.Millisecond
	for {
		n, err := c.ml.Join(c.cfg.Join)
		// A join list may name this member too (a DNS name resolving to
		// every member): contacting only itself is not a join, and would
		// report ready without any peer's revocations.
		if n > 0 && c.ml.NumMembers() > 1 {
			c.log.Info("cluster joined", "contacted", n, "members", c.ml.NumMembers())
			return nil
		}
		if time.Now().After(deadline) {
			c.log.Warn("no cluster peer reachable; serving with the local revocation list", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// Ready reports whether Run has finished joining.
func (c *Cluster) Ready() bool { return c.ready.Load() }

// Members returns the live members, this one included, sorted by name.
func (c *Cluster) Members() []Member {
	nodes := c.ml.Members()
	out := make([]Member, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, Member{Name: n.Name, Addr: n.Address(), Meta: slices.Clone(n.Meta)})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LocalName is this member's name.
func (c *Cluster) LocalName() string { return c.ml.LocalNode().Name }

// Leave tells the others this member is going (so they stop counting on it)
// and stops gossiping. Calls after the first do nothing.
func (c *Cluster) Leave(timeout time.Duration) error {
	var err error
	c.left.Do(func() {
		err = c.ml.Leave(timeout)
		if serr := c.ml.Shutdown(); err == nil {
			err = serr
		}
	})
	return err
}
