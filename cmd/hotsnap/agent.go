package main

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/defaults"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "serve this node's snapshots to cluster coordinators (HTTP API), registered in etcd",
		Flags: withOutput(flagGroups([]cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag(),
			&cli.StringFlag{Name: "node-id", EnvVars: []string{"HOTSNAP_NODE_ID"}, Usage: "this node's id in the cluster"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7701", EnvVars: []string{"HOTSNAP_LISTEN"}, Usage: "address to serve the API on (port 0: any free port)"},
			&cli.StringFlag{Name: "advertise-url", EnvVars: []string{"HOTSNAP_ADVERTISE_URL"}, Usage: "URL coordinators reach this agent at (default from --listen)"},
			&cli.StringFlag{Name: "read-token-file", EnvVars: []string{"HOTSNAP_READ_TOKEN_FILE"}, Usage: "token mode: a second token that may only read (list, status, metrics)"},
			&cli.IntFlag{Name: "max-conns", Value: defaults.AgentMaxConns, Usage: "connections served at once"},
			&cli.IntFlag{Name: "max-jobs-per-client", Value: defaults.AgentMaxJobsPerClient, Usage: "jobs one client may have running at once"},
			&cli.DurationFlag{Name: "member-ttl", Value: defaults.MemberTTL, Usage: "lease of the agent's registration in etcd: a dead agent drops out after it"},
			&cli.DurationFlag{Name: "max-lock-lease", Value: defaults.MaxLockLease, Usage: "longest lock lease a coordinator may ask for"},
			&cli.StringFlag{Name: "policy", EnvVars: []string{"HOTSNAP_POLICY"}, Usage: "this node's own backup policy (as for hotsnap run; its remote in the file), run every --policy-every"},
			&cli.DurationFlag{Name: "policy-every", Value: defaults.PolicyEvery, Usage: "with --policy: the interval between runs (the first one interval after the start)"},
			&cli.StringFlag{Name: "stop-cmd", EnvVars: []string{"HOTSNAP_STOP_CMD"}, Usage: "command (sh -c) that stops this node's application before a cluster restore swaps its data"},
			&cli.StringFlag{Name: "start-cmd", EnvVars: []string{"HOTSNAP_START_CMD"}, Usage: "command (sh -c) that starts this node's application after a cluster restore"},
			&cli.DurationFlag{Name: "hook-timeout", Value: defaults.HookTimeout, Usage: "bound on each stop or start command"},
		}, captureFlags(), clusterFlags(), quiesceFlags(), remoteFlags())...),
		Action: runAgent,
	}
}

// agentConfig is the agent the flags describe, and the certificate it
// serves with (nil: plain HTTP, token mode).
func agentConfig(c *cli.Context, e *env, l *snapshot.Layout) (cluster.AgentConfig, *cluster.RunOptions, error) {
	cfg := cluster.AgentConfig{
		Layout: l, NodeID: c.String("node-id"), Cluster: c.String("cluster"),
		Lock:     lockPolicy(c),
		MaxLease: c.Duration("max-lock-lease"),
		StopCmd:  c.String("stop-cmd"), StartCmd: c.String("start-cmd"), HookTimeout: c.Duration("hook-timeout"),
		MaxJobsPerClient: c.Int("max-jobs-per-client"), Logger: e.log,
	}
	cfg.AppVersion, cfg.AppEngine, cfg.EncryptionKeyID = c.String("app-version"), c.String("app-engine"), c.String("encryption-key-id")
	cfg.Copy, cfg.Exclude, cfg.LinkMode = c.StringSlice("copy"), c.StringSlice("exclude"), c.String("link-mode")
	var err error
	if cfg.NewQuiescer, err = cluster.QuiescerOf(c.Context, l, quiesceConfig(c)); err != nil {
		return cfg, nil, err
	}
	run := &cluster.RunOptions{Listen: c.String("listen"), AdvertiseURL: c.String("advertise-url"), MemberTTL: c.Duration("member-ttl"),
		Limits: cluster.ServerLimits{MaxConns: c.Int("max-conns")}, PolicyEvery: c.Duration("policy-every")}
	files := authFiles(c)
	files.ReadTokenFile = c.String("read-token-file")
	if run.Cert, err = files.Server(&cfg); err != nil {
		return cfg, nil, err
	}
	if f := c.String("policy"); f != "" {
		if cfg.Policy, err = pipeline.Load(f); err != nil {
			return cfg, nil, err
		}
	}
	cfg.Remote, err = remoteOptions(c)
	return cfg, run, err
}

func runAgent(c *cli.Context) error {
	e, l, _, err := prologue(c, false)
	if err != nil {
		return err
	}
	switch {
	case c.String("node-id") == "":
		return usageError{errors.New("--node-id (or HOTSNAP_NODE_ID) is required")}
	case c.IsSet("remote"):
		return usageError{errors.New("the agent takes no --remote: coordinators name it per upload or download")}
	}
	cfg, run, err := agentConfig(c, e, l)
	if err != nil {
		return err
	}
	ag, err := cluster.NewAgent(cfg) // checks the config before etcd is dialled
	if err != nil {
		return err
	}
	defer ag.Close()
	if run.Agency, err = etcdFiles(c).Dial(c.Context); err != nil {
		return err
	}
	defer run.Agency.Close()
	run.Ready = func(url string) { e.AgentReady(cfg.NodeID, cfg.Cluster, url, os.Getpid()) }
	if err := ag.Run(c.Context, *run); err != nil {
		return err
	}
	e.Result(map[string]any{"node": cfg.NodeID, "cluster": cfg.Cluster, "stopped": true}, report.Line("agent %s stopped", cfg.NodeID))
	return nil
}
